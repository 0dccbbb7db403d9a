-- the same fold written in plpgsql, as a plain aggregate
SELECT count(f) FROM (SELECT stream_id, pl.bank_fold_agg(e ORDER BY version) AS f FROM es.events e GROUP BY stream_id) s;
