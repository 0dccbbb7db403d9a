-- Change data capture: es.events inserts published for logical decoding
-- (a PostgreSQL subscriber, pgoutput consumers such as Debezium, wal2json).
-- Logical decoding hands out committed transactions only, each once, in
-- commit order: events of one stream arrive in version order (appends to a
-- stream commit one after another), and a consumer checkpoints by LSN, never
-- by global_position (a transaction that took its positions early and
-- committed late arrives after events with higher positions).
--
-- Only inserts are published: the deliberate changes of sql/12_lifecycle.sql
-- (deletes, redactions, archiving) are not replayed downstream; their
-- markers ("$StreamDeleted", "$EventsRedacted") are events and are.
--
-- The caller's own rights: creating a publication of es.events takes what
-- PostgreSQL asks for it (CREATE on the database and ownership of the table:
-- the extension's owner or a superuser).
CREATE FUNCTION es.create_publication(name text DEFAULT 'es_events') RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p pg_catalog.pg_publication;
    tables text[];
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF name = '' OR pg_catalog.length(name) > 63 THEN
        RAISE EXCEPTION 'invalid publication name "%"', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A publication name is 1 to 63 characters.';
    END IF;
    SELECT * INTO p FROM pg_catalog.pg_publication x WHERE x.pubname = create_publication.name;
    IF FOUND THEN
        SELECT pg_catalog.array_agg(pg_catalog.format('%I.%I', t.schemaname, t.tablename) ORDER BY 1)
          INTO tables
          FROM pg_catalog.pg_publication_tables t WHERE t.pubname = create_publication.name;
        -- the same publication again: nothing to do
        IF tables = ARRAY['es.events'] AND NOT p.puballtables AND p.pubinsert
           AND NOT (p.pubupdate OR p.pubdelete OR p.pubtruncate) THEN
            RAISE NOTICE 'publication "%" already publishes the inserts of es.events', name;
            RETURN;
        END IF;
        RAISE EXCEPTION 'publication "%" already exists and publishes something else', name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Choose another name, or drop that publication first.';
    END IF;
    EXECUTE pg_catalog.format('CREATE PUBLICATION %I FOR TABLE es.events WITH (publish = %L)',
                              name, 'insert');
END
$$;

COMMENT ON FUNCTION es.create_publication(text) IS
    'Publishes every committed event (es.events inserts) for logical decoding: CREATE SUBSCRIPTION, pgoutput (Debezium), wal2json. Delivery is in commit order; checkpoint by LSN, not global_position.';
-- Publishing every event is the owner's decision (PostgreSQL would refuse
-- others anyway: they do not own es.events).
REVOKE ALL ON FUNCTION es.create_publication(text) FROM PUBLIC;
