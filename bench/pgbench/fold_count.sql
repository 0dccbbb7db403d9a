-- the same query with count(e) in place of the fold: what scanning, sorting and
-- building the whole-row value e cost before any fold runs
SELECT count(f) FROM (SELECT stream_id, count(e ORDER BY version) AS f FROM es.events e GROUP BY stream_id) s;
