-- page through the whole store 1,000 events at a time, starting over at the
-- end (-D global_position=0 -D maxpos=<last position>); \aset keeps the last
-- row's global_position for the next page
\if :global_position >= :maxpos
\set global_position 0
\endif
SELECT * FROM es.read_all(:global_position, 1000) \aset
