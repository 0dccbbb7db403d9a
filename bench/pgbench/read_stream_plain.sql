-- the same rows with a plain SELECT ... ORDER BY
\set s random(1, :streams)
SELECT * FROM es.events WHERE stream_id = 'account-' || :s ORDER BY version;
