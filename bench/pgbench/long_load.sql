-- es.load of a 200,000-event stream with no snapshot (reducers: add, inc)
SELECT version FROM es.load('long-1');
