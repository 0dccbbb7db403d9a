-- the same paging with a plain SELECT ... ORDER BY ... LIMIT
\if :global_position >= :maxpos
\set global_position 0
\endif
SELECT * FROM es.events WHERE global_position > :global_position ORDER BY global_position LIMIT 1000 \aset
