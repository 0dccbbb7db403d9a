-- the bare SQL aggregate over the same rows and the columns the reducers read
SELECT sum((data->>'amount')::numeric), count(event_type) FROM es.events WHERE stream_id = 'long-1';
