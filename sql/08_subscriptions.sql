-- Subscriptions: named consumers that poll the global order from a stored
-- checkpoint and acknowledge what they have processed (at-least-once), alone
-- or as a consumer group that splits the streams among its members.
--
-- Plain SQL and PL/pgSQL, SECURITY INVOKER: a caller acts with its own rights
-- (polling needs SELECT on es.events, like es.read_all). The two tables are
-- open to PUBLIC, and row-level security keeps every role to the
-- subscriptions of roles it belongs to; nobody reaches them without USAGE on
-- schema es, which the extension grants to no one.

CREATE TABLE es.subscriptions (
    consumer     text        NOT NULL PRIMARY KEY
                 CHECK (pg_catalog.char_length(consumer) BETWEEN 1 AND 200),
    -- NULL: every type; otherwise a non-empty set, stored sorted and distinct
    event_types  text[]
                 CHECK (event_types IS NULL OR (pg_catalog.cardinality(event_types) > 0
                        AND pg_catalog.array_ndims(event_types) = 1
                        AND pg_catalog.array_position(event_types, NULL) IS NULL
                        AND pg_catalog.array_position(event_types, '') IS NULL)),
    stream_types text[]
                 CHECK (stream_types IS NULL OR (pg_catalog.cardinality(stream_types) > 0
                        AND pg_catalog.array_ndims(stream_types) = 1
                        AND pg_catalog.array_position(stream_types, NULL) IS NULL
                        AND pg_catalog.array_position(stream_types, '') IS NULL)),
    -- the checkpoint: every matching event at or below it has been processed
    position     bigint      NOT NULL DEFAULT 0 CHECK (position >= 0),
    owner        regrole     NOT NULL DEFAULT current_user::regrole,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- the target of subscription_members' key: a member row carries its
    -- subscription's owner
    CONSTRAINT subscriptions_consumer_owner_key UNIQUE (consumer, owner)
);
COMMENT ON TABLE es.subscriptions IS
    'One row per consumer: its filters and checkpoint (position). Written by es.subscribe, es.ack, es.unsubscribe.';

-- A consumer group's member checkpoints, per group size: regrouping to
-- another size starts from the subscription's position, which member acks
-- raise to the lowest of a complete group's checkpoints.
CREATE TABLE es.subscription_members (
    consumer   text        NOT NULL,
    group_size integer     NOT NULL CHECK (group_size >= 1),
    member     integer     NOT NULL CHECK (member >= 0 AND member < group_size),
    position   bigint      NOT NULL CHECK (position >= 0),
    owner      regrole     NOT NULL DEFAULT current_user::regrole,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, group_size, member),
    -- A member row belongs to its subscription's owner: with the policy
    -- below, nobody can put a row under another role's consumer (it would
    -- hide from that owner and make its es.ack fail). The check runs as the
    -- table owner, past row-level security.
    CONSTRAINT subscription_members_subscription_fkey FOREIGN KEY (consumer, owner)
        REFERENCES es.subscriptions (consumer, owner) ON DELETE CASCADE
);
COMMENT ON TABLE es.subscription_members IS
    'Checkpoint of member m of a consumer group of size n; written by es.ack(consumer, position, member, size).';

SELECT pg_catalog.pg_extension_config_dump('es.subscriptions', '');
SELECT pg_catalog.pg_extension_config_dump('es.subscription_members', '');

-- A role sees and changes only the subscriptions of roles whose rights it
-- has (its own, and those of roles it is a member of). The table owner and
-- superusers are not subject to this.
ALTER TABLE es.subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE es.subscription_members ENABLE ROW LEVEL SECURITY;
CREATE POLICY subscriptions_by_owner ON es.subscriptions
    USING (pg_catalog.pg_has_role(owner, 'USAGE'))
    WITH CHECK (pg_catalog.pg_has_role(owner, 'USAGE'));
CREATE POLICY subscription_members_by_owner ON es.subscription_members
    USING (pg_catalog.pg_has_role(owner, 'USAGE'))
    WITH CHECK (pg_catalog.pg_has_role(owner, 'USAGE'));

-- A row's filters and owner never change once made (es.subscribe compares
-- the filters); checkpoints may be moved by hand (to replay, say), so
-- position stays updatable. The CHECK constraints hold direct inserts to
-- what es.subscribe would accept.
GRANT SELECT, INSERT, DELETE ON es.subscriptions, es.subscription_members TO PUBLIC;
GRANT UPDATE (position, updated_at) ON es.subscriptions, es.subscription_members TO PUBLIC;

-- ---------------------------------------------------------------------
-- Argument checks.

CREATE FUNCTION es._check_consumer(consumer text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF consumer IS NULL THEN
        RAISE EXCEPTION 'consumer must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF consumer = '' THEN
        RAISE EXCEPTION 'consumer must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF char_length(consumer) > 200 THEN
        RAISE EXCEPTION 'consumer is % characters long; at most 200 are allowed', char_length(consumer)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    RETURN consumer;
END
$$;

-- NULL means "every type"; otherwise the set of types, sorted and without
-- repeats, so that subscribing again with the same set in another order is
-- recognised as the same subscription.
CREATE FUNCTION es._check_types(arg text, types text[]) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF types IS NULL THEN
        RETURN NULL;
    END IF;
    IF cardinality(types) = 0 THEN
        RAISE EXCEPTION '% must not be an empty array', arg
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass NULL to match every type.';
    END IF;
    IF array_ndims(types) <> 1 THEN
        RAISE EXCEPTION '% must be a one-dimensional array', arg USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF array_position(types, NULL) IS NOT NULL THEN
        RAISE EXCEPTION '% must not contain NULL', arg USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF array_position(types, '') IS NOT NULL THEN
        RAISE EXCEPTION '% must not contain an empty string', arg USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN ARRAY(SELECT DISTINCT t COLLATE "C" FROM unnest(types) t ORDER BY 1);
END
$$;

-- A checkpoint must lie below the read horizon: a position no reader can
-- have been handed yet would skip the events that commit below it later.
CREATE FUNCTION es._check_position(arg text, pos bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    horizon bigint;
BEGIN
    IF pos IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', arg USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pos < 0 THEN
        RAISE EXCEPTION '% must not be negative, got %', arg, pos USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the horizon es.poll and es.read_all hand out below (not lower than any
    -- they handed out before)
    horizon := es._next_read_horizon();
    IF pos >= horizon THEN
        RAISE EXCEPTION '% % is at or above the read horizon %: no reader has been handed it yet', arg, pos, horizon
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use the global_position of an event es.poll or es.read_all returned (es.read_horizon() - 1 means "everything so far").';
    END IF;
    RETURN pos;
END
$$;

CREATE FUNCTION es._check_member(member integer, size integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF member IS NULL OR size IS NULL THEN
        RAISE EXCEPTION 'member and size must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF size < 1 THEN
        RAISE EXCEPTION 'size must be at least 1, got %', size USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF member < 0 OR member >= size THEN
        RAISE EXCEPTION 'member must be between 0 and % for a group of size %, got %', size - 1, size, member
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

CREATE FUNCTION es._check_max_count(max_count integer) RETURNS integer
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF max_count IS NULL OR max_count <= 0 THEN
        RAISE EXCEPTION 'max_count must be a positive number of events, got %', coalesce(max_count::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN max_count;
END
$$;

-- ---------------------------------------------------------------------
-- The events a subscription (or one member of its group) is due, gap-free
-- exactly as es.read_all: below a horizon the caller took before this
-- query's snapshot (es._next_read_horizon()).
-- A stream belongs to one member of a group of size n (its stream_id's hash
-- modulo n), so each stream's events stay in order within one member.
CREATE FUNCTION es._subscription_events(
    after_position bigint,
    horizon        bigint,
    max_count      integer,
    event_types    text[],
    stream_types   text[],
    member         integer,
    size           integer
) RETURNS SETOF es.events
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT e.* FROM es.events e
    WHERE e.global_position > after_position
      AND e.global_position < horizon
      AND (event_types IS NULL OR e.event_type = ANY (event_types))
      AND (stream_types IS NULL OR e.stream_type = ANY (stream_types))
      AND (size IS NULL OR (pg_catalog.hashtext(e.stream_id) & 2147483647) % size = member)
    ORDER BY e.global_position
    LIMIT max_count;
END;

-- ---------------------------------------------------------------------
-- The API.

CREATE FUNCTION es.subscribe(
    consumer      text,
    event_types   text[] DEFAULT NULL,
    stream_types  text[] DEFAULT NULL,
    from_position bigint DEFAULT 0
) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c   constant text   := es._check_consumer(subscribe.consumer);
    et  constant text[] := es._check_types('event_types', subscribe.event_types);
    st  constant text[] := es._check_types('stream_types', subscribe.stream_types);
    pos constant bigint := es._check_position('from_position', subscribe.from_position);
    cur es.subscriptions%ROWTYPE;
BEGIN
    INSERT INTO es.subscriptions (consumer, event_types, stream_types, position)
    VALUES (c, et, st, pos)
    ON CONFLICT ON CONSTRAINT subscriptions_pkey DO NOTHING;
    IF FOUND THEN
        RETURN;
    END IF;
    -- It exists. The same filters: a service restarting, keep its checkpoint.
    SELECT * INTO cur FROM es.subscriptions sub WHERE sub.consumer = c;
    IF NOT FOUND THEN
        -- hidden by row-level security: another role's
        RAISE EXCEPTION 'consumer "%" is already taken by a role whose rights you do not have', c
            USING ERRCODE = 'duplicate_object', HINT = 'Choose another consumer name.';
    END IF;
    IF cur.event_types IS DISTINCT FROM et OR cur.stream_types IS DISTINCT FROM st THEN
        RAISE EXCEPTION 'consumer "%" is already subscribed with other filters (event_types %, stream_types %)',
                c, coalesce(cur.event_types::text, 'NULL'), coalesce(cur.stream_types::text, 'NULL')
            USING ERRCODE = 'duplicate_object',
                  HINT = 'To change its filters, call es.unsubscribe first; that drops its checkpoint.';
    END IF;
END
$$;

COMMENT ON FUNCTION es.subscribe(text, text[], text[], bigint) IS
    'Creates a subscription; its checkpoint starts at from_position. Subscribing again with the same filters does nothing (the checkpoint is kept).';

CREATE FUNCTION es.poll(consumer text, max_count integer DEFAULT 100) RETURNS SETOF es.events
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
-- plan each poll for its own filters: a generic plan could not use the type indexes
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    -- before the scan's snapshot (a VOLATILE function's statements each take one)
    h   constant bigint  := es._next_read_horizon();
    c   constant text    := es._check_consumer(poll.consumer);
    n   constant integer := es._check_max_count(poll.max_count);
    cur es.subscriptions%ROWTYPE;
BEGIN
    SELECT * INTO cur FROM es.subscriptions sub WHERE sub.consumer = c;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'consumer "%" does not exist', c
            USING ERRCODE = 'undefined_object', HINT = 'Create it with es.subscribe.';
    END IF;
    IF NOT es._upcasting() THEN
        RETURN QUERY SELECT * FROM es._subscription_events(cur.position, h, n, cur.event_types, cur.stream_types, NULL, NULL);
    ELSE
        -- upcast (sql/03_evolution.sql); the filter names the types as read
        RETURN QUERY
            SELECT s.global_position, s.stream_id, s.stream_type, s.version,
                   es._upcast_type(s.event_type, s.schema_version),
                   es._upcast_data(s.event_type, s.schema_version, s.data, s.metadata),
                   s.metadata, s.event_id, s.recorded_at,
                   es._upcast_version(s.event_type, s.schema_version)
              FROM es._subscription_events(cur.position, h, n, es._stored_types(cur.event_types),
                                           cur.stream_types, NULL, NULL) s;
    END IF;
END
$$;

COMMENT ON FUNCTION es.poll(text, integer) IS
    'The subscription''s next events after its checkpoint, in global order, never skipping one that commits later. Does not move the checkpoint: call es.ack.';

CREATE FUNCTION es.poll(consumer text, max_count integer, member integer, size integer) RETURNS SETOF es.events
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    -- before the scan's snapshot (a VOLATILE function's statements each take one)
    h   constant bigint  := es._next_read_horizon();
    c   constant text    := es._check_consumer(poll.consumer);
    n   constant integer := es._check_max_count(poll.max_count);
    cur es.subscriptions%ROWTYPE;
    member_position bigint;
BEGIN
    PERFORM es._check_member(poll.member, poll.size);
    SELECT * INTO cur FROM es.subscriptions sub WHERE sub.consumer = c;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'consumer "%" does not exist', c
            USING ERRCODE = 'undefined_object', HINT = 'Create it with es.subscribe.';
    END IF;
    SELECT m.position INTO member_position FROM es.subscription_members m
     WHERE m.consumer = c AND m.group_size = poll.size AND m.member = poll.member;
    -- A member with no checkpoint yet starts at the subscription's; one whose
    -- checkpoint is older than the subscription's (left from an earlier
    -- grouping, or the subscription was acked as a whole) starts at the latter.
    IF NOT es._upcasting() THEN
        RETURN QUERY SELECT * FROM es._subscription_events(GREATEST(cur.position, member_position), h, n,
                                                           cur.event_types, cur.stream_types, poll.member, poll.size);
    ELSE
        RETURN QUERY
            SELECT s.global_position, s.stream_id, s.stream_type, s.version,
                   es._upcast_type(s.event_type, s.schema_version),
                   es._upcast_data(s.event_type, s.schema_version, s.data, s.metadata),
                   s.metadata, s.event_id, s.recorded_at,
                   es._upcast_version(s.event_type, s.schema_version)
              FROM es._subscription_events(GREATEST(cur.position, member_position), h, n,
                                           es._stored_types(cur.event_types), cur.stream_types,
                                           poll.member, poll.size) s;
    END IF;
END
$$;

COMMENT ON FUNCTION es.poll(text, integer, integer, integer) IS
    'Consumer group: the next events of the streams that belong to member (0 .. size-1) of a group of size, after that member''s checkpoint.';

CREATE FUNCTION es.ack(consumer text, global_position bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c   constant text   := es._check_consumer(ack.consumer);
    pos constant bigint := es._check_position('global_position', ack.global_position);
BEGIN
    -- Forward only: a concurrent ack re-checks the condition on the newer row.
    UPDATE es.subscriptions sub SET position = pos, updated_at = now()
     WHERE sub.consumer = c AND sub.position < pos;
    IF NOT FOUND THEN
        PERFORM FROM es.subscriptions sub WHERE sub.consumer = c;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'consumer "%" does not exist', c
                USING ERRCODE = 'undefined_object', HINT = 'Create it with es.subscribe.';
        END IF;
    END IF;
END
$$;

COMMENT ON FUNCTION es.ack(text, bigint) IS
    'Moves the subscription''s checkpoint forward to global_position (never back): events up to it are processed.';

CREATE FUNCTION es.ack(consumer text, global_position bigint, member integer, size integer) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c   constant text   := es._check_consumer(ack.consumer);
    pos constant bigint := es._check_position('global_position', ack.global_position);
    cur es.subscriptions%ROWTYPE;
BEGIN
    PERFORM es._check_member(ack.member, ack.size);
    SELECT * INTO cur FROM es.subscriptions sub WHERE sub.consumer = c;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'consumer "%" does not exist', c
            USING ERRCODE = 'undefined_object', HINT = 'Create it with es.subscribe.';
    END IF;
    INSERT INTO es.subscription_members AS m (consumer, group_size, member, position, owner)
    VALUES (c, ack.size, ack.member, GREATEST(pos, cur.position), cur.owner)
    ON CONFLICT ON CONSTRAINT subscription_members_pkey DO UPDATE
       SET position = EXCLUDED.position, updated_at = now()
     WHERE m.position < EXCLUDED.position;
    -- Raise the subscription's checkpoint to the group's low-water mark once
    -- every member has one. Members ack concurrently: whoever finds the row
    -- locked leaves it to the next ack rather than wait (the mark may lag, it
    -- never overtakes a member, since member checkpoints only grow).
    IF pos > cur.position THEN
        PERFORM FROM es.subscriptions sub WHERE sub.consumer = c FOR NO KEY UPDATE SKIP LOCKED;
        IF FOUND THEN
            UPDATE es.subscriptions sub SET position = g.low, updated_at = now()
              FROM (SELECT min(m.position) AS low, count(*) AS members
                      FROM es.subscription_members m
                     WHERE m.consumer = c AND m.group_size = ack.size) g
             WHERE sub.consumer = c AND g.members = ack.size AND sub.position < g.low;
        END IF;
    END IF;
END
$$;

COMMENT ON FUNCTION es.ack(text, bigint, integer, integer) IS
    'Consumer group: moves member''s checkpoint forward; once all members of the group have one, the subscription''s follows their minimum.';

CREATE FUNCTION es.unsubscribe(consumer text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c constant text := es._check_consumer(unsubscribe.consumer);
BEGIN
    DELETE FROM es.subscriptions sub WHERE sub.consumer = c;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'consumer "%" does not exist', c
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;

COMMENT ON FUNCTION es.unsubscribe(text) IS
    'Deletes the subscription with its checkpoints (group members included).';

-- How many matching events after a checkpoint es.poll could hand out now,
-- for es.subscription_status; NULL for a caller who may not read es.events.
-- PL/pgSQL, so that the count is planned only when it runs (the planner
-- evaluates es.read_horizon() while estimating, which a CASE cannot stop).
CREATE FUNCTION es._subscription_lag(after_position bigint, event_types text[], stream_types text[])
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT has_table_privilege('es.events', 'SELECT') THEN
        RETURN NULL;
    END IF;
    RETURN (SELECT count(*) FROM es.events e
             WHERE e.global_position > after_position
               AND e.global_position < es.read_horizon()
               AND (event_types IS NULL OR e.event_type = ANY (event_types))
               AND (stream_types IS NULL OR e.stream_type = ANY (stream_types)));
END
$$;

-- lag costs as much as the consumer is behind. The view runs with its
-- owner's rights (security_invoker views need PostgreSQL 15), so it applies
-- the row-level security rule itself (functions in it run as the caller), and
-- is a security barrier so that no caller-supplied function sees rows before
-- that rule.
CREATE VIEW es.subscription_status WITH (security_barrier) AS
SELECT s.consumer, s.owner, s.event_types, s.stream_types, s.position,
       es._subscription_lag(s.position, s.event_types, s.stream_types) AS lag,
       s.created_at, s.updated_at
  FROM es.subscriptions s
 WHERE pg_catalog.pg_has_role(s.owner, 'USAGE');

COMMENT ON VIEW es.subscription_status IS
    'Each visible subscription with its checkpoint and lag (matching events after it that es.poll can hand out now).';

GRANT SELECT ON es.subscription_status TO PUBLIC;
