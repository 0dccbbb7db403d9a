-- pg_eventsource_message_db: Message DB 1.3's SQL API (schema message_store)
-- over pg_eventsource's events, so that Message DB's clients (Eventide,
-- message-db-py, ...) work unchanged. Same names, signatures, 0-based
-- positions (-1: no stream), error messages and SQLSTATEs; what differs is
-- underneath: no category lock (each stream's own row lock decides), global
-- positions that never skip a late committer, one store shared with SQL users.
--
-- Mapping: a stream name is an es stream id, its category (the part before
-- the first '-') the stream's type; position = version - 1; type =
-- event_type; id = event_id; time = recorded_at in UTC. A NULL metadata is
-- stored as {}, metadata that is not a non-empty object as
-- {"$messageDbMetadata": <it>}, a NULL data as JSON null with
-- "$messageDbNullData" in the metadata: each reads back as it was written.
\echo Use "CREATE EXTENSION pg_eventsource_message_db" to load this file. \quit

CREATE SCHEMA message_store;
COMMENT ON SCHEMA message_store IS 'Message DB 1.3 compatible functions over pg_eventsource (extension pg_eventsource_message_db)';

CREATE TYPE message_store.message AS (
    id              varchar,
    stream_name     varchar,
    type            varchar,
    position        bigint,
    global_position bigint,
    data            varchar,
    metadata        varchar,
    time            timestamp
);

CREATE FUNCTION message_store.message_store_version() RETURNS varchar
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
RETURN '1.3.0';

-- The first 8 bytes of the md5 digest, big-endian, as a signed bigint.
CREATE FUNCTION message_store.hash_64(value varchar) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN ('x' || pg_catalog.left(pg_catalog.md5(value), 16))::bit(64)::bigint;

CREATE FUNCTION message_store.category(stream_name varchar) RETURNS varchar
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.split_part(stream_name, '-', 1);

-- True without a '-', and for NULL (as Message DB's does).
CREATE FUNCTION message_store.is_category(stream_name varchar) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.strpos(stream_name, '-') = 0 OR stream_name IS NULL;

CREATE FUNCTION message_store.id(stream_name varchar) RETURNS varchar
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN pg_catalog.strpos(stream_name, '-') = 0 THEN NULL
            ELSE pg_catalog.substr(stream_name, pg_catalog.strpos(stream_name, '-') + 1) END;

CREATE FUNCTION message_store.cardinal_id(stream_name varchar) RETURNS varchar
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.split_part(message_store.id(stream_name), '+', 1);

-- Message DB serialises the writers of a category with this lock; the
-- compatibility layer's writes do not take it (each stream's row lock in
-- es.streams decides), but clients that call it get the same lock and key.
CREATE FUNCTION message_store.acquire_lock(stream_name varchar) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    _key constant bigint := message_store.hash_64(message_store.category(stream_name));
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(_key);
    RETURN _key;
END
$$;

-- Message DB's metadata and data from the stored ones (see the mapping above).
CREATE FUNCTION message_store._metadata(stored jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN stored - '$messageDbNullData' = '{}'::jsonb THEN NULL
            WHEN stored ? '$messageDbMetadata' THEN stored -> '$messageDbMetadata'
            ELSE stored - '$messageDbNullData' END;

CREATE FUNCTION message_store._data(stored jsonb, metadata jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN metadata ? '$messageDbNullData' THEN NULL ELSE stored END;

-- The stream's last position; NULL when it has no messages.
CREATE FUNCTION message_store.stream_version(stream_name varchar) RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN (SELECT e.version - 1 FROM es.events e WHERE e.stream_id = stream_name ORDER BY e.version DESC LIMIT 1);

-- The events as Message DB's messages (the mapping above, in one place),
-- with the columns the reads filter on by index (_version, _category).
CREATE VIEW message_store._events AS
SELECT e.global_position,
       e.version - 1 AS position,
       (e.recorded_at AT TIME ZONE 'utc') AS time,
       e.stream_id AS stream_name,
       e.event_type AS type,
       message_store._data(e.data, e.metadata) AS data,
       message_store._metadata(e.metadata) AS metadata,
       e.event_id AS id,
       e.version AS _version,
       e.stream_type AS _category
  FROM es.events e;

-- Message DB's messages table. Readers see events below the read horizon
-- only: a message that commits later never appears behind one already read
-- (global positions are not in commit order).
CREATE VIEW message_store.messages AS
SELECT m.global_position, m.position, m.time, m.stream_name, m.type, m.data, m.metadata, m.id
  FROM message_store._events m
 WHERE m.global_position < es.read_horizon();

-- Message DB's checks in its order and words (the expected version, the id,
-- the NOT NULL columns), an id already taken refused even for the same
-- message (pg_eventsource would take it as a retry), the mapping of metadata
-- and NULL data above, and the append: one call, in Rust.
--
-- A SQL-standard body (RETURN ...) with no SET clause, unlike the other
-- functions here: its one call (schema-qualified) is resolved to a function
-- when this script runs, not when it is called, so a caller's search_path
-- cannot change what it calls; and without a SET clause
-- PostgreSQL inlines it into the caller's statement. That saves a PL/pgSQL
-- call and a search_path change per message: 281,000 -> 259,000
-- instructions per write_message (bench/results/2026-12-07-planless-append.md).
CREATE FUNCTION message_store.write_message(
    id               varchar,
    stream_name      varchar,
    "type"           varchar,
    data             jsonb,
    metadata         jsonb DEFAULT NULL,
    expected_version bigint DEFAULT NULL
) RETURNS bigint
LANGUAGE sql VOLATILE
RETURN es._append_message(id, stream_name, "type", data, metadata, expected_version);

-- The select list every read returns, over a subquery named "messages" with
-- Message DB's columns (conditions name them, plain or as messages.<column>);
-- `source` filters message_store._events e.
CREATE FUNCTION message_store._select(source text) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
RETURN 'SELECT messages.id::varchar, messages.stream_name::varchar, messages.type::varchar,
               messages.position::bigint, messages.global_position::bigint, messages.data::varchar,
               messages.metadata::varchar, messages.time::timestamp
          FROM (SELECT e.global_position, e.position, e.time, e.stream_name, e.type, e.data, e.metadata, e.id
                  FROM message_store._events e WHERE ' || source || ') AS messages WHERE true';

-- The end every read's command shares: Message DB's SQL condition (only when
-- message_store.sql_condition allows it, as Message DB reads the setting),
-- the order, and the batch size (-1: all; $3).
CREATE FUNCTION message_store._finish(command text, condition varchar, order_by text, batch_size bigint)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF condition IS NOT NULL THEN
        IF pg_catalog.current_setting('message_store.sql_condition', true) IS NULL
           OR pg_catalog.current_setting('message_store.sql_condition', true) = 'off' THEN
            RAISE EXCEPTION 'Retrieval with SQL condition is not activated';
        END IF;
        -- raw SQL, as in Message DB: it runs with the caller's rights
        command := command || pg_catalog.format(' AND (%s)', condition);
    END IF;
    command := command || ' ORDER BY messages.' || order_by;
    IF batch_size <> -1 THEN
        command := command || ' LIMIT $3';
    END IF;
    RETURN command;
END
$$;

CREATE FUNCTION message_store.get_stream_messages(
    stream_name varchar,
    "position"  bigint  DEFAULT 0,
    batch_size  bigint  DEFAULT 1000,
    condition   varchar DEFAULT NULL
) RETURNS SETOF message_store.message
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    _command text;
BEGIN
    IF message_store.is_category(get_stream_messages.stream_name) THEN
        RAISE EXCEPTION 'Must be a stream name: %', get_stream_messages.stream_name;
    END IF;
    "position" := COALESCE("position", 0);
    batch_size := COALESCE(batch_size, 1000);
    _command := message_store._finish(message_store._select('e.stream_name = $1 AND e._version >= $2 + 1'),
                                      condition, 'position', batch_size);
    RETURN QUERY EXECUTE _command USING get_stream_messages.stream_name, "position", batch_size;
END
$$;

CREATE FUNCTION message_store.get_category_messages(
    category              varchar,
    "position"            bigint  DEFAULT 1,
    batch_size            bigint  DEFAULT 1000,
    correlation           varchar DEFAULT NULL,
    consumer_group_member bigint  DEFAULT NULL,
    consumer_group_size   bigint  DEFAULT NULL,
    condition             varchar DEFAULT NULL
) RETURNS SETOF message_store.message
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- taken before the query's snapshot: positions below it are final
    _horizon constant bigint := es.read_horizon();
    _command text;
BEGIN
    IF NOT message_store.is_category(get_category_messages.category) THEN
        RAISE EXCEPTION 'Must be a category: %', get_category_messages.category;
    END IF;
    "position" := COALESCE("position", 1);
    batch_size := COALESCE(batch_size, 1000);
    _command := message_store._select('e._category = $1 AND e.global_position >= $2 AND e.global_position < $7');
    IF correlation IS NOT NULL THEN
        IF pg_catalog.strpos(correlation, '-') > 0 THEN
            RAISE EXCEPTION 'Correlation must be a category (Correlation: %)', correlation;
        END IF;
        _command := _command || ' AND message_store.category(messages.metadata->>''correlationStreamName'') = $4';
    END IF;
    IF (consumer_group_member IS NOT NULL) <> (consumer_group_size IS NOT NULL) THEN
        RAISE EXCEPTION 'Consumer group member and size must be specified (Consumer Group Member: %, Consumer Group Size: %)',
            consumer_group_member, consumer_group_size;
    END IF;
    IF consumer_group_member IS NOT NULL THEN
        IF consumer_group_size < 1 THEN
            RAISE EXCEPTION 'Consumer group size must not be less than 1 (Consumer Group Member: %, Consumer Group Size: %)',
                consumer_group_member, consumer_group_size;
        END IF;
        IF consumer_group_member < 0 THEN
            RAISE EXCEPTION 'Consumer group member must not be less than 0 (Consumer Group Member: %, Consumer Group Size: %)',
                consumer_group_member, consumer_group_size;
        END IF;
        IF consumer_group_member >= consumer_group_size THEN
            RAISE EXCEPTION 'Consumer group member must be less than the group size (Consumer Group Member: %, Consumer Group Size: %)',
                consumer_group_member, consumer_group_size;
        END IF;
        _command := _command || ' AND pg_catalog.mod(@ message_store.hash_64(message_store.cardinal_id(messages.stream_name)), $6) = $5';
    END IF;
    _command := message_store._finish(_command, condition, 'global_position', batch_size);
    -- the group size is a smallint in Message DB (a larger one fails the same way)
    RETURN QUERY EXECUTE _command USING get_category_messages.category, "position", batch_size, correlation,
        consumer_group_member, consumer_group_size::smallint, _horizon;
END
$$;

CREATE FUNCTION message_store.get_last_stream_message(stream_name varchar, "type" varchar DEFAULT NULL)
RETURNS SETOF message_store.message
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE message_store._select('e.stream_name = $1 AND ($2 IS NULL OR e.type = $2)')
        || ' ORDER BY messages.position DESC LIMIT 1'
        USING get_last_stream_message.stream_name, get_last_stream_message."type";
END
$$;

-- What a client role needs: write (es.grant_writer) and the schema.
CREATE FUNCTION message_store.grant_client(role regrole) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM es.grant_writer(role);
    EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA message_store TO %s', role);
    EXECUTE pg_catalog.format('GRANT SELECT ON message_store.messages, message_store._events TO %s', role);
END
$$;
REVOKE ALL ON FUNCTION message_store.grant_client(regrole) FROM PUBLIC;
