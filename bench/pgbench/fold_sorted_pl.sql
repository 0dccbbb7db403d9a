-- the plpgsql fold fed the same ordered rows
SELECT count(f) FROM (SELECT stream_id, pl.bank_fold_agg(e) AS f FROM (SELECT * FROM es.events ORDER BY stream_id, version) e GROUP BY stream_id) s;
