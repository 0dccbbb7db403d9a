-- es.read_all paging through 100,000 events that all need an upcaster
-- (-D global_position=0 -D maxpos=<last position>)
\if :global_position >= :maxpos
\set global_position 0
\endif
SELECT * FROM es.read_all(:global_position, 1000) \aset
