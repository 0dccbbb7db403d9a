-- es.fold's column form over an ordered subquery (rows in version order whatever the plan)
SELECT es.fold(stream_id, stream_type, version, event_type, data, metadata, schema_version)
  FROM (SELECT * FROM es.events WHERE stream_id = 'long-1' ORDER BY version) e;
