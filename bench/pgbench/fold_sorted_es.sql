-- native reducers fed rows already in (stream_id, version) order by the index:
-- no per-group sort (PostgreSQL 15 sorts each group for an ORDER BY inside an aggregate)
SELECT count(f) FROM (SELECT stream_id, es.fold(e) AS f FROM (SELECT * FROM es.events ORDER BY stream_id, version) e GROUP BY stream_id) s;
