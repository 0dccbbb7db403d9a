-- es.read_stream of a whole 1,000-event stream (bank data), rows sent to the client
\set s random(1, :streams)
SELECT * FROM es.read_stream('account-' || :s);
