-- native reducers: every account's state in one query (as in the SQL API)
SELECT count(f) FROM (SELECT stream_id, es.fold(e ORDER BY version) AS f FROM es.events e GROUP BY stream_id) s;
