-- every account's state in one query: es.fold's column form without ORDER
-- BY, as a user writes it (PostgreSQL reads the table once and hashes the
-- groups; the fold puts each stream's events in version order itself)
SELECT count(f) FROM (SELECT stream_id, es.fold(stream_id, stream_type, version, event_type, data, metadata, schema_version) AS f
                        FROM es.events GROUP BY stream_id) s;
