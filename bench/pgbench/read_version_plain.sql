-- the same read as a plain SELECT on es.streams
\set s random(1, 1000)
SELECT version FROM es.streams WHERE stream_id = 'acct-' || :s;
