--
-- read: es.read_stream, es.read_all (paging and filters), es.stream_version,
-- es.read_horizon and es.horizon.
--
\set SHOW_CONTEXT never
\set VERBOSITY default

-- Streams of their own, so the output does not depend on earlier tests.
SELECT es.append_events('ticket-1', '[
    {"type": "Opened",   "data": {"title": "printer on fire"}},
    {"type": "Assigned", "data": {"to": "ann"}},
    {"type": "Comment",  "data": {"text": "on it"}, "metadata": {"by": "ann"}},
    {"type": "Closed",   "data": {}}
]');
SELECT es.append_event('ticket-2', 'Opened', '{"title": "no coffee"}');
SELECT es.append_event('board-1', 'Created', '{"name": "ops"}');
SELECT es.append_event('ticket-2', 'Assigned', '{"to": "bob"}');
SELECT es.append_event('board-1', 'TicketPinned', '{"ticket": "ticket-1"}');

-- ---------------------------------------------------------------------
-- es.read_stream: one stream in version order.
SELECT stream_id, version, event_type, data, metadata FROM es.read_stream('ticket-1');
-- from_version
SELECT version, event_type FROM es.read_stream('ticket-1', 3);
-- from_version and max_count
SELECT version, event_type FROM es.read_stream('ticket-1', 2, 2);
SELECT version, event_type FROM es.read_stream('ticket-1', max_count => 1);
SELECT version, event_type FROM es.read_stream('ticket-1', from_version => 4, max_count => 10);
-- NULL from_version means 1, NULL max_count means all
SELECT count(*) FROM es.read_stream('ticket-1', NULL, NULL);
-- past the end, max_count 0, an unknown stream: no rows
SELECT count(*) FROM es.read_stream('ticket-1', 5);
SELECT count(*) FROM es.read_stream('ticket-1', 1, 0);
SELECT count(*) FROM es.read_stream('ticket-999');
-- every column of es.events comes back
SELECT stream_id, stream_type, version, event_type,
       global_position IS NOT NULL AS has_position, event_id IS NOT NULL AS has_id,
       recorded_at IS NOT NULL AS has_time
  FROM es.read_stream('ticket-2');

-- es.stream_version
SELECT es.stream_version('ticket-1') AS ticket_1, es.stream_version('ticket-2') AS ticket_2,
       es.stream_version('board-1') AS board_1, es.stream_version('ticket-999') AS unknown;

-- ---------------------------------------------------------------------
-- es.read_all hands out an event once every transaction that could still
-- write below it has ended. Another session of the cluster (any database)
-- may hold the horizon back for a moment: wait until it has passed every
-- event written so far (at most 60 s).
DO $$
BEGIN
    FOR i IN 1..600 LOOP
        EXIT WHEN es.read_horizon() > (SELECT max(global_position) FROM es.events);
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SELECT es.read_horizon() > (SELECT max(global_position) FROM es.events) AS horizon_past_all_events;

-- Every committed event, in global order, which here is append order.
SELECT count(*) = (SELECT count(*) FROM es.events) AS read_all_has_every_event
  FROM es.read_all(0, 100000);
SELECT stream_id, version, event_type
  FROM es.read_all(0, 100000) WHERE stream_id IN ('ticket-1', 'ticket-2', 'board-1');
SELECT bool_and(global_position > prev) AS positions_increase
  FROM (SELECT r.global_position, lag(r.global_position) OVER (ORDER BY r.n) AS prev
          FROM es.read_all(0, 100000) WITH ORDINALITY AS r(global_position, stream_id, stream_type,
               version, event_type, data, metadata, event_id, recorded_at, n)) x
 WHERE prev IS NOT NULL;
-- default max_count is 1000; NULL after_position means 0
SELECT count(*) = least(1000, (SELECT count(*) FROM es.events)) AS default_page
  FROM es.read_all();
SELECT count(*) = (SELECT count(*) FROM es.events) AS null_after_position
  FROM es.read_all(NULL, 100000);

-- Paging: start after the last event before ticket-1, then pass the last
-- position of each page as after_position.
SELECT max(global_position) AS before_tickets FROM es.events
 WHERE global_position < (SELECT min(global_position) FROM es.events WHERE stream_id = 'ticket-1') \gset
SELECT stream_id, version, event_type FROM es.read_all(:before_tickets, 3);
SELECT max(global_position) AS page_end FROM es.read_all(:before_tickets, 3) \gset
SELECT stream_id, version, event_type FROM es.read_all(:page_end, 3);
SELECT max(global_position) AS page_end FROM es.read_all(:page_end, 3) \gset
SELECT stream_id, version, event_type FROM es.read_all(:page_end, 3);
SELECT max(global_position) AS page_end FROM es.read_all(:page_end, 3) \gset
SELECT count(*) AS after_last_page FROM es.read_all(:page_end, 3);
-- paging through everything 2 at a time sees each event exactly once, in order
DO $$
DECLARE
    after bigint := 0;
    seen bigint := 0;
    n int;
    last_pos bigint;
BEGIN
    LOOP
        SELECT count(*), max(global_position) INTO n, last_pos FROM es.read_all(after, 2);
        EXIT WHEN n = 0;
        IF last_pos <= after THEN
            RAISE EXCEPTION 'page did not move forward';
        END IF;
        seen := seen + n;
        after := last_pos;
    END LOOP;
    RAISE NOTICE 'paged every event exactly once: %', seen = (SELECT count(*) FROM es.events);
END
$$;

-- Filters: by event type, by stream type, both.
SELECT stream_id, version, event_type
  FROM es.read_all(:before_tickets, 100, event_types => ARRAY['Opened', 'Created']);
SELECT stream_id, version, event_type
  FROM es.read_all(:before_tickets, 100, stream_types => ARRAY['board']);
SELECT stream_id, version, event_type
  FROM es.read_all(:before_tickets, 100, ARRAY['Assigned'], ARRAY['ticket']);
SELECT count(*) FROM es.read_all(0, 100, ARRAY['NoSuchType']);
SELECT count(*) FROM es.read_all(0, 100, stream_types => ARRAY['nosuchtype']);
-- filters combine with paging
SELECT stream_id, version, event_type
  FROM es.read_all(:before_tickets, 1, stream_types => ARRAY['ticket']);

-- ---------------------------------------------------------------------
-- An event is not handed out while its transaction runs, not even to that
-- transaction: a reader paging by position never skips one that commits later.
BEGIN;
SELECT es.append_event('ticket-3', 'Opened', '{"title": "pending"}');
SELECT count(*) AS visible_in_table FROM es.events WHERE stream_id = 'ticket-3';
SELECT count(*) AS handed_out FROM es.read_all(0, 100000) WHERE stream_id = 'ticket-3';
SELECT es.read_horizon() <= (SELECT global_position FROM es.events WHERE stream_id = 'ticket-3')
       AS held_back;
-- es.horizon() names what holds it: this very transaction, which has appended
SELECT h.held_by, h.holder_pid = pg_backend_pid() AS this_session,
       h.holder_xid = pg_current_xact_id() AS this_transaction,
       h.holder_database = current_database() AS this_database,
       h.held_back_events >= 1 AS counts_own_event,
       es.read_horizon() <= h.horizon_position AS query_horizon_not_above
  FROM es.horizon() h;
COMMIT;
DO $$
BEGIN
    FOR i IN 1..600 LOOP
        EXIT WHEN es.read_horizon() > (SELECT max(global_position) FROM es.events);
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SELECT stream_id, version, event_type FROM es.read_all(0, 100000) WHERE stream_id = 'ticket-3';
-- the event landed after every position handed out before
SELECT (SELECT global_position FROM es.events WHERE stream_id = 'ticket-3') > :page_end
       AS after_earlier_pages;

-- ---------------------------------------------------------------------
-- Horizon functions return sane values.
SELECT es.read_horizon() > 0 AS positive,
       es.read_horizon() > (SELECT max(global_position) FROM es.events) AS past_all_events;
SELECT h.horizon_position > 0 AS positive,
       h.held_back_events = 0 AS nothing_held_back,
       h.held_by IS DISTINCT FROM 'appending' OR h.holder_pid IS NOT NULL AS appenders_have_a_pid,
       h.holder_pid IS DISTINCT FROM pg_backend_pid() AS not_this_session
  FROM es.horizon() h;
SELECT count(*) AS horizon_rows FROM es.horizon();
