-- es.fold of the same stream's rows, as the docs write it
SELECT es.fold(e ORDER BY version) FROM es.events e WHERE stream_id = 'long-1';
