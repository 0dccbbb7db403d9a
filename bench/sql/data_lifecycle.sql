-- The lifecycle scenarios' data (bench/run.sh, sc_retention, sc_redact), made
-- afresh each round (they remove and rewrite it). :streams streams of type
-- ret with :per events each, an aggregate with a snapshot every 100 events;
-- one 10,000-event stream red-1 whose events carry an email; and the same
-- rows in plain tables (the baselines: a bare DELETE, a bare UPDATE).
SELECT es.define_aggregate('ret', reducers => '{"Deposited": [{"add": "balance", "from": "$.amount"}, {"inc": "n"}]}',
                           snapshot_every => 100)
 WHERE NOT EXISTS (SELECT FROM es.aggregates WHERE stream_type = 'ret');
SELECT count(es.append_events('ret-' || s,
           (SELECT jsonb_agg(jsonb_build_object('type', 'Deposited', 'data', jsonb_build_object('amount', g)))
              FROM generate_series(1, :per) g)))
  FROM generate_series(1, :streams) s;
SELECT count(es.append_events('red-1',
           (SELECT jsonb_agg(jsonb_build_object('type', 'Deposited',
                                                'data', jsonb_build_object('amount', g, 'email', 'someone@example.com')))
              FROM generate_series(1, 10000) g)));
DROP TABLE IF EXISTS bench_ret, bench_red;
CREATE TABLE bench_ret AS SELECT * FROM es.events WHERE stream_type = 'ret';
CREATE UNIQUE INDEX ON bench_ret (stream_id, version);
CREATE TABLE bench_red AS SELECT * FROM es.events WHERE stream_id = 'red-1';
CREATE UNIQUE INDEX ON bench_red (stream_id, version);
VACUUM ANALYZE;
