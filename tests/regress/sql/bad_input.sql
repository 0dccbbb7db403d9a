--
-- bad_input: every kind of bad argument fails with its own SQLSTATE and a
-- message saying what is wrong, and writes nothing.
--
\set SHOW_CONTEXT never
\set VERBOSITY default

-- A stream that exists, and the counts every failure below must leave alone.
SELECT es.append_event('bad-1', 'Created', '{}');
CREATE TEMP TABLE baseline AS
SELECT (SELECT count(*) FROM es.events) AS events, (SELECT count(*) FROM es.streams) AS streams;
-- Run after each call: events and streams written since the baseline.
\set written 'SELECT (SELECT count(*) FROM es.events) - events AS events_written, (SELECT count(*) FROM es.streams) - streams AS streams_created FROM baseline'
-- After a call that did write: move the baseline up.
\set rebase 'UPDATE baseline SET events = (SELECT count(*) FROM es.events), streams = (SELECT count(*) FROM es.streams)'
:written;

-- ---------------------------------------------------------------------
-- es.append_event
-- NULL stream_id, event_type, data: 22004
SELECT es.append_event(NULL, 'Created', '{}');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_event('bad-2', NULL, '{}');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_event('bad-2', 'Created', NULL);
\echo :LAST_ERROR_SQLSTATE
:written;
-- empty stream_id, event_type, stream_type: 22023
SELECT es.append_event('', 'Created', '{}');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_event('bad-2', '', '{}');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_event('bad-2', 'Created', '{}', stream_type => '');
\echo :LAST_ERROR_SQLSTATE
:written;
-- stream_id over 1000 bytes: 22001 (bytes, not characters: 334 x '€' is 1002 bytes)
SELECT es.append_event(repeat('x', 1001), 'Created', '{}');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_event(repeat('€', 334), 'Created', '{}');
\echo :LAST_ERROR_SQLSTATE
:written;
-- metadata that is not a JSON object: 22023
SELECT es.append_event('bad-2', 'Created', '{}', metadata => '[]');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_event('bad-2', 'Created', '{}', metadata => '"note"');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_event('bad-2', 'Created', '{}', metadata => 'null');
\echo :LAST_ERROR_SQLSTATE
:written;
-- negative expected_version: 22023
SELECT es.append_event('bad-1', 'Touched', '{}', -1);
\echo :LAST_ERROR_SQLSTATE
:written;
-- data larger than es.max_event_size: 54000
SHOW es.max_event_size;
SET es.max_event_size = '1kB';
SHOW es.max_event_size;
SELECT es.append_event('bad-1', 'Big', jsonb_build_object('blob', repeat('x', 2000)));
\echo :LAST_ERROR_SQLSTATE
:written;
-- under the limit is fine
SELECT es.append_event('bad-1', 'Small', jsonb_build_object('blob', repeat('x', 500)));
:written;
:rebase;
SELECT es.append_events('bad-1', jsonb_build_array(
    jsonb_build_object('type', 'Small', 'data', '{}'::jsonb),
    jsonb_build_object('type', 'Big', 'data', jsonb_build_object('blob', repeat('x', 2000)))));
\echo :LAST_ERROR_SQLSTATE
:written;
RESET es.max_event_size;
SHOW es.max_event_size;
SELECT es.append_event('bad-1', 'Big', jsonb_build_object('blob', repeat('x', 2000)));
:written;
:rebase;

-- ---------------------------------------------------------------------
-- es.append_events
-- NULL stream_id or events: 22004
SELECT es.append_events(NULL, '[{"type": "Created", "data": {}}]');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_events('bad-2', NULL);
\echo :LAST_ERROR_SQLSTATE
:written;
-- empty stream_id or stream_type, too long stream_id, negative expected_version
SELECT es.append_events('', '[{"type": "Created", "data": {}}]');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_events('bad-2', '[{"type": "Created", "data": {}}]', stream_type => '');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_events(repeat('x', 1001), '[{"type": "Created", "data": {}}]');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_events('bad-1', '[{"type": "Touched", "data": {}}]', -5);
\echo :LAST_ERROR_SQLSTATE
:written;
-- malformed events arrays: 22023, naming the element
SELECT es.append_events('bad-2', '{"type": "Created", "data": {}}');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_events('bad-2', '"Created"');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_events('bad-2', '[]');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_events('bad-2', '[{"type": "Created", "data": {}}, 42]');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_events('bad-2', '[{"type": "Created", "data": {}}, ["Created", {}]]');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_events('bad-2', '[{"type": "Created", "data": {}}, {"data": {}}]');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_events('bad-2', '[{"type": 7, "data": {}}]');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_events('bad-2', '[{"type": null, "data": {}}]');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_events('bad-2', '[{"type": "", "data": {}}]');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_events('bad-2', '[{"type": "Created", "data": {}}, {"type": "Renamed"}]');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_events('bad-2', '[{"type": "Created", "data": {}, "metadata": [1]}]');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_events('bad-2', '[{"type": "Created", "data": {}, "metadata": "x"}]');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_events('bad-2', '[{"type": "Created", "data": {}, "id": "not-a-uuid"}]');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_events('bad-2', '[{"type": "Created", "data": {}, "id": 12345}]');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_events('bad-2', '[{"type": "Created", "data": {}, "id": "0190a5b0-0000-7000-8000-00000000000"}]');
\echo :LAST_ERROR_SQLSTATE
:written;
-- hyphens where a UUID has none: PostgreSQL's uuid type rejects these too
SELECT es.append_events('bad-2', '[{"type": "Created", "data": {}, "id": "----0190a5b000007000800000000000000f"}]');
\echo :LAST_ERROR_SQLSTATE
:written;
SELECT es.append_events('bad-2', '[{"type": "Created", "data": {}, "id": "0-190a5b000007000800000000000000f"}]');
\echo :LAST_ERROR_SQLSTATE
:written;
-- the stream named in those calls was never created
SELECT es.stream_version('bad-2');

-- ---------------------------------------------------------------------
-- Reads: NULL stream_id 22004, empty 22023.
SELECT * FROM es.read_stream(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM es.read_stream('');
\echo :LAST_ERROR_SQLSTATE
SELECT es.stream_version(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT es.stream_version('');
\echo :LAST_ERROR_SQLSTATE
-- also when the stream id is not a constant
SELECT s, es.stream_version(s) FROM (VALUES (''::text)) v(s);
\echo :LAST_ERROR_SQLSTATE
SELECT r.* FROM (VALUES (NULL::text)) v(s), es.read_stream(v.s) r;
\echo :LAST_ERROR_SQLSTATE

-- After all that, the store holds exactly what the successful calls wrote.
SELECT stream_id, version, event_type, length(data::text) AS data_length
  FROM es.events WHERE stream_id LIKE 'bad-%' ORDER BY stream_id, version;
