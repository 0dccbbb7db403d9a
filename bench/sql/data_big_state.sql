-- Database es_big: an aggregate whose state grows with every event (a list of
-- entries, about 100 bytes each), the shape issue "fast where users live" asks to
-- make cheap. Streams (snapshot_every 100):
--   ledger-s, -m, -l: 10, 1,010 and 10,010 events: es.load folds 10 events onto
--     nothing, onto a snapshot of 1,000 entries (about 100 KB) and of 10,000 (1 MB);
--   snapl-s, -m, -l: 99, 1,099 and 10,099 events: the next append takes a snapshot
--     (about 10 KB, 110 KB, 1 MB); snapl-n: 10,050 events: the next one does not.
\set reducers '{"Posted": [{"add": "balance", "from": "$.amount"}, {"append": "entries", "from": {"type": "$event_type", "amount": "$.amount", "note": "$.note", "time": "$recorded_at"}}]}'
SELECT es.define_aggregate('ledger', reducers => :'reducers', snapshot_every => 100);
SELECT es.define_aggregate('snapl', reducers => :'reducers', snapshot_every => 100);


CREATE FUNCTION pg_temp.fill(sid text, n int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    done int := 0;
    k int;
BEGIN
    WHILE done < n LOOP
        k := least(100, n - done);
        PERFORM es.append_events(sid,
            (SELECT jsonb_agg(jsonb_build_object('type', 'Posted',
                     'data', jsonb_build_object('amount', 12.50, 'note', 'invoice ' || (done + i) || ' of the month, paid')))
               FROM generate_series(1, k) i));
        done := done + k;
    END LOOP;
END $$;
SELECT pg_temp.fill('ledger-s', 10), pg_temp.fill('ledger-m', 1010), pg_temp.fill('ledger-l', 10010);
SELECT pg_temp.fill('snapl-s', 99), pg_temp.fill('snapl-m', 1099), pg_temp.fill('snapl-l', 10099),
       pg_temp.fill('snapl-n', 10050);
VACUUM ANALYZE;
