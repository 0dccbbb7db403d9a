-- the same paging with 0.2.0's es.read_all body (bl.read_all_020)
\if :global_position >= :maxpos
\set global_position 0
\endif
SELECT * FROM bl.read_all_020(:global_position, 1000) \aset
