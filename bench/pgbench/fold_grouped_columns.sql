-- every account's state in one query: es.fold's column form over rows in
-- (stream_id, version) order (the index), no row formed per event
SELECT count(f) FROM (SELECT stream_id, es.fold(stream_id, stream_type, version, event_type, data, metadata, schema_version) AS f
                        FROM (SELECT * FROM es.events ORDER BY stream_id, version) e GROUP BY stream_id) s;
