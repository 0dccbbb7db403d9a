-- es.fold's column form over the same rows, as the docs write it for one stream
SELECT es.fold(stream_id, stream_type, version, event_type, data, metadata, schema_version)
  FROM es.events WHERE stream_id = 'long-1';
