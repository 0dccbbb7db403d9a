-- the same paging, events as stored (raw => true)
\if :global_position >= :maxpos
\set global_position 0
\endif
SELECT * FROM es.read_all(:global_position, 1000, raw => true) \aset
