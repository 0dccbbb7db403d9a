-- What the store holds and what its 0.1.0 read API answers, as text: run
-- before and after ALTER EXTENSION pg_eventsource UPDATE, the two outputs
-- must be equal (scripts/test_upgrade.sh diffs them). Only what 0.1.0 had:
-- es.streams is listed without the column 0.2.0 adds, events without the one
-- 0.3.0 adds.
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
SET search_path = public, pg_catalog;

\echo == counts
SELECT (SELECT count(*) FROM es.events) AS events, (SELECT count(*) FROM es.streams) AS streams,
       (SELECT count(*) FROM es.snapshots) AS snapshots, (SELECT count(*) FROM es.aggregates) AS aggregates,
       (SELECT count(*) FROM es.position_base) AS position_bases;

\echo == es.read_all hands out every event (nothing is held back)
SELECT (SELECT count(*) FROM es.read_all(0, 1000000)) = (SELECT count(*) FROM es.events) AS all_read;

\echo == events (es.read_all, in global order)
SELECT global_position, stream_id, stream_type, version, event_type, data, metadata, event_id, recorded_at
  FROM es.read_all(0, 1000000);

\echo == filtered es.read_all: event types, stream types, paging
SELECT global_position, stream_id, version FROM es.read_all(0, 1000000, event_types => ARRAY['AccountClosed', 'ItemAdded']);
SELECT global_position, stream_id, version FROM es.read_all(0, 1000000, stream_types => ARRAY['shop_order', 'log']);
SELECT global_position, stream_id, version
  FROM es.read_all((SELECT global_position FROM es.events ORDER BY global_position OFFSET 10 LIMIT 1), 5);

\echo == streams (0.1.0 columns) and es.stream_version
SELECT s.stream_id, s.stream_type, s.version, s.created_at, s.updated_at,
       es.stream_version(s.stream_id) AS stream_version
  FROM es.streams s ORDER BY s.stream_id COLLATE "C";

\echo == es.read_stream of every stream, from version 2, at most 3
SELECT r.global_position, r.stream_id, r.stream_type, r.version, r.event_type, r.data, r.metadata, r.event_id, r.recorded_at
  FROM es.streams s, es.read_stream(s.stream_id, 2, 3) r ORDER BY r.stream_id COLLATE "C", r.version;

\echo == aggregates and snapshots
SELECT stream_type, fold::regprocedure AS fold, reducers, initial_state, snapshot_every, revision, defined_at
  FROM es.aggregates ORDER BY stream_type;
SELECT * FROM es.snapshots ORDER BY stream_id COLLATE "C", revision, version;

\echo == es.load of every stream with an aggregate, now and at every version
SELECT l.* FROM es.streams s JOIN es.aggregates a USING (stream_type), es.load(s.stream_id) l
 ORDER BY l.stream_id COLLATE "C";
SELECT l.* FROM es.streams s JOIN es.aggregates a USING (stream_type),
       generate_series(1, s.version) v, es.load(s.stream_id, v) l
 ORDER BY l.stream_id COLLATE "C", l.version;

\echo == es.load_at: as of each event's recorded_at
SELECT e.stream_id, e.version, l.version AS loaded_version, l.state
  FROM es.events e JOIN es.aggregates a USING (stream_type), es.load_at(e.stream_id, e.recorded_at) l
 ORDER BY e.stream_id COLLATE "C", e.version;

\echo == es.fold per stream
SELECT e.stream_id, es.fold(e ORDER BY e.version) AS state
  FROM es.events e JOIN es.aggregates a USING (stream_type)
 GROUP BY e.stream_id ORDER BY e.stream_id COLLATE "C";

\echo == position base
SELECT system_identifier = es._system_identifier() AS this_cluster, xid_offset, restored_foreign, recorded_at
  FROM es.position_base ORDER BY system_identifier;
