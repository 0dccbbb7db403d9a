-- fold_sorted_*.sql with count(e) in place of the fold
SELECT count(f) FROM (SELECT stream_id, count(e) AS f FROM (SELECT * FROM es.events ORDER BY stream_id, version) e GROUP BY stream_id) s;
