-- es.stream_version of a random stream (the read before an append with an expected version)
\set s random(1, 1000)
SELECT es.stream_version('acct-' || :s);
