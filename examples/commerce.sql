-- Commerce: users, orders and payments, with an order-status state machine,
-- correlation and causation ids, queries over the store, and a subscription
-- that a shipping service outside the database polls.
-- Run: bash scripts/run.sh commerce   (or psql -X -v ON_ERROR_STOP=1 -f examples/commerce.sql in any database)
--
-- Streams and events:
--   user-<id>     UserCreated {userId, email, name}, UserUpdated {userId, changes}, UserDeleted {userId}
--   order-<id>    OrderCreated {orderId, userId, items: [{sku, quantity, price, amount}], total, currency},
--                 OrderStatusChanged {orderId, from, to, reason?, paymentId?}
--   payment-<id>  PaymentProcessed {paymentId, orderId, amount, currency, method}
-- Order status: placed -> paid -> shipped -> delivered; placed or paid -> cancelled
-- (the table commerce.order_transitions). An order becomes paid only through
-- commerce.pay_order, which appends the payment and the status change in one
-- transaction.
--
-- Every event's metadata carries
--   correlation_id  the conversation it belongs to: one checkout (order, payment,
--                   shipping, delivery) shares one, so its events are found together;
--   causation_id    the event (or request) that directly caused it.
--
-- Errors raised by the commands (catch them by SQLSTATE):
--   22004 null_value_not_allowed           an argument is NULL
--   22023 invalid_parameter_value          malformed input: email, items, amounts, an unknown status,
--                                          setting 'paid' by hand, a payment that does not match the total
--   P0002 no_data_found                    no such user or order
--   23505 unique_violation                 the user, order or payment id exists; the email is taken
--   55000 object_not_in_prerequisite_state the user is deleted; an order status change the rules forbid
--   40001 serialization_failure            a concurrent command changed the stream: run it again

\set ON_ERROR_STOP 1
\set QUIET 1
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_eventsource;
RESET client_min_messages;
\o /dev/null

\echo '=== 1. Aggregates: user, order, payment (native reducers)'
SELECT es.define_aggregate('user', reducers => $json${
    "UserCreated": [{"set": "userId", "from": "$.userId"}, {"set": "email", "from": "$.email"},
                    {"set": "name", "from": "$.name"}, {"set": "status", "value": "active"}],
    "UserUpdated": [{"merge": "", "from": "$.changes"}],
    "UserDeleted": [{"set": "status", "value": "deleted"}, {"set": "deletedAt", "from": "$recorded_at"}]
  }$json$);

SELECT es.define_aggregate('order', reducers => $json${
    "OrderCreated":       [{"set": "orderId", "from": "$.orderId"}, {"set": "userId", "from": "$.userId"},
                           {"set": "items", "from": "$.items"}, {"set": "total", "from": "$.total"},
                           {"set": "currency", "from": "$.currency"}, {"set": "status", "value": "placed"},
                           {"set": "placedAt", "from": "$recorded_at"},
                           {"set": "correlationId", "from": "$metadata.correlation_id"}],
    "OrderStatusChanged": [{"set": "status", "from": "$.to"}, {"set": "paymentId", "from": "$.paymentId"},
                           {"append": "history", "from": "$"}],
    "*":                  [{"set": "lastEventId", "from": "$event_id"}]
  }$json$);

SELECT es.define_aggregate('payment', reducers => $json${
    "PaymentProcessed": [{"merge": "", "from": "$"}, {"set": "processedAt", "from": "$recorded_at"}]
  }$json$);

\echo '=== 2. Commands: schema commerce'
CREATE SCHEMA commerce;

-- Allowed order status changes.
CREATE TABLE commerce.order_transitions (
    from_status text NOT NULL,
    to_status   text NOT NULL,
    PRIMARY KEY (from_status, to_status)
);
INSERT INTO commerce.order_transitions VALUES
    ('placed', 'paid'), ('placed', 'cancelled'),
    ('paid', 'shipped'), ('paid', 'cancelled'),
    ('shipped', 'delivered');

CREATE FUNCTION commerce.check_id(kind text, id text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION '% id must not be NULL', kind USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- A length test and a character class rather than '^[...]{1,100}$': the
    -- regex engine builds a state per repetition of a bounded repeat, on every
    -- call (about 40% of this function's cost in the bank benchmark).
    IF length(id) NOT BETWEEN 1 AND 100 OR id ~ '[^A-Za-z0-9_.-]' THEN
        RAISE EXCEPTION 'invalid % id "%"', kind, id
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'An id is 1 to 100 letters, digits, "_", "." or "-".';
    END IF;
    RETURN kind || '-' || id;
END
$$;

-- Metadata for an event: the caller's, plus correlation and causation ids.
-- A new conversation (no correlation id given) starts with a fresh one, and
-- its first event is caused by the request itself.
CREATE FUNCTION commerce.event_metadata(metadata jsonb, correlation_id uuid, causation_id uuid) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m   constant jsonb := COALESCE(metadata, '{}');
    cid uuid;
BEGIN
    IF jsonb_typeof(m) <> 'object' THEN
        RAISE EXCEPTION 'metadata must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    cid := COALESCE(correlation_id, (m->>'correlation_id')::uuid, gen_random_uuid());
    RETURN m || jsonb_build_object('correlation_id', cid,
                                   'causation_id', COALESCE(causation_id, (m->>'causation_id')::uuid, cid));
END
$$;

CREATE FUNCTION commerce.check_email(email text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF email IS NULL THEN
        RAISE EXCEPTION 'email must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' THEN
        RAISE EXCEPTION '"%" is not an email address', email USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN lower(email);
END
$$;

-- The user read model, kept inline: its unique index is what makes a taken
-- email fail the append even when two transactions race for it.
CREATE TABLE commerce.users (
    user_id    text        PRIMARY KEY,
    email      text        NOT NULL,
    name       text        NOT NULL,
    status     text        NOT NULL CHECK (status IN ('active', 'deleted')),
    version    bigint      NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_active_email ON commerce.users (email) WHERE status = 'active';

CREATE FUNCTION commerce.project_user(e es.events) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    CASE e.event_type
        WHEN 'UserCreated' THEN
            INSERT INTO commerce.users
            VALUES (e.data->>'userId', e.data->>'email', e.data->>'name', 'active', e.version, e.recorded_at);
        WHEN 'UserUpdated' THEN
            UPDATE commerce.users u
               SET email = COALESCE(e.data->'changes'->>'email', u.email),
                   name = COALESCE(e.data->'changes'->>'name', u.name),
                   version = e.version, updated_at = e.recorded_at
             WHERE u.user_id = e.data->>'userId';
        WHEN 'UserDeleted' THEN
            UPDATE commerce.users u SET status = 'deleted', version = e.version, updated_at = e.recorded_at
             WHERE u.user_id = e.data->>'userId';
        ELSE NULL;
    END CASE;
END
$$;

CREATE FUNCTION commerce.reset_users() RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    DELETE FROM commerce.users;
END;

SELECT es.create_projection('commerce_users', 'commerce.project_user(es.events)', 'inline',
                            stream_types => ARRAY['user'], reset => 'commerce.reset_users()');

CREATE FUNCTION commerce.email_must_be_free(email text, user_id text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    holder text;
BEGIN
    SELECT u.user_id INTO holder FROM commerce.users u
     WHERE u.email = email_must_be_free.email AND u.status = 'active'
       AND u.user_id IS DISTINCT FROM email_must_be_free.user_id;
    IF FOUND THEN
        RAISE EXCEPTION 'email % is taken by user "%"', email, holder USING ERRCODE = 'unique_violation';
    END IF;
END
$$;

-- A user's state for a command: P0002 when unknown, 55000 when deleted.
CREATE FUNCTION commerce.load_user(user_id text, OUT stream_id text, OUT version bigint, OUT state jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT l.stream_id, l.version, l.state INTO stream_id, version, state
      FROM es.load(commerce.check_id('user', load_user.user_id)) l;
    IF version = 0 THEN
        RAISE EXCEPTION 'user "%" does not exist', user_id USING ERRCODE = 'no_data_found';
    END IF;
    IF state->>'status' = 'deleted' THEN
        RAISE EXCEPTION 'user "%" is deleted', user_id USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END
$$;

CREATE FUNCTION commerce.create_user(user_id text, email text, name text, metadata jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sid constant text := commerce.check_id('user', create_user.user_id);
    em  constant text := commerce.check_email(create_user.email);
BEGIN
    IF name IS NULL OR btrim(name) = '' THEN
        RAISE EXCEPTION 'name must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF es.stream_version(sid) > 0 THEN
        RAISE EXCEPTION 'user "%" already exists', user_id USING ERRCODE = 'unique_violation';
    END IF;
    PERFORM commerce.email_must_be_free(em, NULL);
    RETURN es.append_event(sid, 'UserCreated',
                           jsonb_build_object('userId', user_id, 'email', em, 'name', btrim(name)),
                           expected_version => 0,
                           metadata => commerce.event_metadata(create_user.metadata, NULL, NULL),
                           stream_type => 'user');
END
$$;

-- changes: {"name": ..., "email": ...}, one or both.
CREATE FUNCTION commerce.update_user(user_id text, changes jsonb, metadata jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u   record := commerce.load_user(update_user.user_id);
    c   jsonb;
    bad text;
BEGIN
    IF changes IS NULL OR jsonb_typeof(changes) <> 'object' OR changes = '{}' THEN
        RAISE EXCEPTION 'changes must be a JSON object with "name" and/or "email"'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(k, ', ') INTO bad FROM jsonb_object_keys(changes) k WHERE k NOT IN ('name', 'email');
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'cannot change %: only name and email can be changed', bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    c := changes;
    IF c ? 'email' THEN
        c := jsonb_set(c, '{email}', to_jsonb(commerce.check_email(c->>'email')));
        PERFORM commerce.email_must_be_free(c->>'email', update_user.user_id);
    END IF;
    IF c ? 'name' AND (jsonb_typeof(c->'name') <> 'string' OR btrim(c->>'name') = '') THEN
        RAISE EXCEPTION 'name must be a non-empty string' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN es.append_event(u.stream_id, 'UserUpdated',
                           jsonb_build_object('userId', user_id, 'changes', c),
                           expected_version => u.version,
                           metadata => commerce.event_metadata(update_user.metadata, NULL, NULL));
END
$$;

CREATE FUNCTION commerce.delete_user(user_id text, metadata jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u record := commerce.load_user(delete_user.user_id);
BEGIN
    RETURN es.append_event(u.stream_id, 'UserDeleted', jsonb_build_object('userId', user_id),
                           expected_version => u.version,
                           metadata => commerce.event_metadata(delete_user.metadata, NULL, NULL));
END
$$;

-- An order's state for a command: P0002 when unknown.
CREATE FUNCTION commerce.load_order(order_id text, OUT stream_id text, OUT version bigint, OUT state jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT l.stream_id, l.version, l.state INTO stream_id, version, state
      FROM es.load(commerce.check_id('order', load_order.order_id)) l;
    IF version = 0 THEN
        RAISE EXCEPTION 'order "%" does not exist', order_id USING ERRCODE = 'no_data_found';
    END IF;
END
$$;

-- items: [{"sku": text, "quantity": positive integer, "price": amount}, ...]
CREATE FUNCTION commerce.place_order(order_id text, user_id text, items jsonb, metadata jsonb DEFAULT NULL,
                                     OUT version bigint, OUT total numeric, OUT correlation_id uuid)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sid   constant text := commerce.check_id('order', place_order.order_id);
    lines jsonb := '[]';
    item  jsonb;
    i     integer := 0;
    qty   numeric;
    price numeric;
    meta  jsonb;
BEGIN
    PERFORM commerce.load_user(place_order.user_id);
    IF items IS NULL OR jsonb_typeof(items) <> 'array' OR jsonb_array_length(items) = 0 THEN
        RAISE EXCEPTION 'items must be a non-empty JSON array of {"sku", "quantity", "price"}'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    total := 0;
    FOR item IN SELECT * FROM jsonb_array_elements(items) LOOP
        IF jsonb_typeof(item) <> 'object' OR jsonb_typeof(item->'sku') IS DISTINCT FROM 'string'
           OR item->>'sku' = '' OR jsonb_typeof(item->'quantity') IS DISTINCT FROM 'number'
           OR jsonb_typeof(item->'price') IS DISTINCT FROM 'number' THEN
            RAISE EXCEPTION 'items[%] must be {"sku": text, "quantity": number, "price": number}', i
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        qty := (item->>'quantity')::numeric;
        price := (item->>'price')::numeric;
        IF qty <= 0 OR qty <> trunc(qty) THEN
            RAISE EXCEPTION 'items[%]: quantity must be a positive whole number, got %', i, qty
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF price < 0 OR price <> round(price, 2) THEN
            RAISE EXCEPTION 'items[%]: price must be at least 0 with at most 2 decimals, got %', i, price
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        lines := lines || jsonb_build_object('sku', item->>'sku', 'quantity', qty,
                                             'price', round(price, 2), 'amount', round(qty * price, 2));
        total := total + round(qty * price, 2);
        i := i + 1;
    END LOOP;
    IF es.stream_version(sid) > 0 THEN
        RAISE EXCEPTION 'order "%" already exists', order_id USING ERRCODE = 'unique_violation';
    END IF;
    meta := commerce.event_metadata(place_order.metadata, NULL, NULL);
    correlation_id := (meta->>'correlation_id')::uuid;
    version := es.append_event(sid, 'OrderCreated',
                               jsonb_build_object('orderId', order_id, 'userId', user_id, 'items', lines,
                                                  'total', total, 'currency', 'EUR'),
                               expected_version => 0, metadata => meta, stream_type => 'order');
END
$$;

-- The one place where an order's status changes: checks the transition,
-- appends OrderStatusChanged in the order's conversation, caused by
-- `cause` (default: the order's previous event).
CREATE FUNCTION commerce.transition(order_id text, to_status text, extra jsonb, cause uuid, metadata jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o       record := commerce.load_order(transition.order_id);
    cur_status constant text := o.state->>'status';
    allowed text;
BEGIN
    IF to_status IS NULL THEN
        RAISE EXCEPTION 'status must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT FROM commerce.order_transitions t
                    WHERE transition.to_status IN (t.from_status, t.to_status)) THEN
        RAISE EXCEPTION 'unknown order status "%"', to_status
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Statuses: placed, paid, shipped, delivered, cancelled.';
    END IF;
    IF NOT EXISTS (SELECT FROM commerce.order_transitions t
                    WHERE t.from_status = cur_status AND t.to_status = transition.to_status) THEN
        SELECT string_agg(t.to_status, ', ' ORDER BY t.to_status) INTO allowed
          FROM commerce.order_transitions t WHERE t.from_status = cur_status;
        RAISE EXCEPTION 'order "%" is %: it cannot become %', order_id, cur_status, to_status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = CASE WHEN allowed IS NULL THEN format('A %s order is final.', cur_status)
                              ELSE format('From %s it can become: %s.', cur_status, allowed) END;
    END IF;
    RETURN es.append_event(o.stream_id, 'OrderStatusChanged',
                           jsonb_build_object('orderId', order_id, 'from', cur_status, 'to', to_status)
                               || COALESCE(extra, '{}'),
                           expected_version => o.version,
                           metadata => commerce.event_metadata(transition.metadata,
                                                               (o.state->>'correlationId')::uuid,
                                                               COALESCE(cause, (o.state->>'lastEventId')::uuid)));
END
$$;

-- Ship, deliver or cancel. 'paid' comes only from commerce.pay_order.
-- caused_by: the event that led to this change (say, the one a consumer
-- reacted to); default: the order's previous event.
CREATE FUNCTION commerce.change_order_status(order_id text, new_status text, reason text DEFAULT NULL,
                                             caused_by uuid DEFAULT NULL, metadata jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF new_status = 'paid' THEN
        RAISE EXCEPTION 'an order becomes paid only with its payment'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Call commerce.pay_order.';
    END IF;
    RETURN commerce.transition(order_id, new_status,
                               CASE WHEN reason IS NULL THEN NULL ELSE jsonb_build_object('reason', reason) END,
                               caused_by, metadata);
END
$$;

-- Payment and status change, in one transaction, on two streams: both or neither.
CREATE FUNCTION commerce.pay_order(order_id text, payment_id text, amount numeric, method text,
                                   metadata jsonb DEFAULT NULL)
RETURNS TABLE (payment_version bigint, order_version bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    psid constant text := commerce.check_id('payment', pay_order.payment_id);
    o    record := commerce.load_order(pay_order.order_id);
    pay_event constant uuid := gen_random_uuid();
BEGIN
    IF amount IS NULL OR method IS NULL THEN
        RAISE EXCEPTION 'amount and method must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF o.state->>'status' <> 'placed' THEN
        RAISE EXCEPTION 'order "%" is %: only a placed order can be paid', order_id, o.state->>'status'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF amount <> (o.state->>'total')::numeric THEN
        RAISE EXCEPTION 'a payment of % does not match the total % of order "%"', amount, o.state->>'total', order_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF es.stream_version(psid) > 0 THEN
        RAISE EXCEPTION 'payment "%" already exists', payment_id USING ERRCODE = 'unique_violation';
    END IF;
    payment_version := es.append_event(psid, 'PaymentProcessed',
        jsonb_build_object('paymentId', payment_id, 'orderId', order_id, 'amount', round(amount, 2),
                           'currency', o.state->>'currency', 'method', method),
        expected_version => 0,
        metadata => commerce.event_metadata(pay_order.metadata, (o.state->>'correlationId')::uuid,
                                            (o.state->>'lastEventId')::uuid),
        event_id => pay_event, stream_type => 'payment');
    order_version := commerce.transition(order_id, 'paid', jsonb_build_object('paymentId', payment_id),
                                         pay_event, pay_order.metadata);
    RETURN NEXT;
END
$$;

-- Place and pay in one go: one transaction, one correlation id.
CREATE FUNCTION commerce.checkout(order_id text, user_id text, items jsonb, payment_id text, method text,
                                  metadata jsonb DEFAULT NULL,
                                  OUT total numeric, OUT correlation_id uuid, OUT order_version bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT p.total, p.correlation_id INTO total, correlation_id
      FROM commerce.place_order(order_id, user_id, items, metadata) p;
    SELECT p.order_version INTO order_version
      FROM commerce.pay_order(order_id, payment_id, total, method, metadata) p;
END
$$;

\echo '=== 3. Read models: users (inline, above), every order''s state (the built-in materializer)'
SELECT es.materialize_aggregate('order', 'commerce.orders');

\echo '=== 4. A subscription for the shipping service (it ships paid orders)'
SELECT es.subscribe('shipping', event_types => ARRAY['OrderStatusChanged'], stream_types => ARRAY['order']);

\o
\echo '=== 5. Users'
SELECT commerce.create_user('ada', 'ada@example.com', 'Ada Lovelace') AS ada,
       commerce.create_user('grace', 'Grace@Example.com', 'Grace Hopper') AS grace,
       commerce.create_user('linus', 'linus@example.com', 'Linus') AS linus;
SELECT commerce.update_user('ada', '{"name": "Ada King", "email": "countess@example.com"}') AS ada_version;
SELECT commerce.delete_user('linus') AS linus_version;
SELECT user_id, email, name, status, version FROM commerce.users ORDER BY user_id;
SELECT version, state FROM es.load('user-ada');

-- (a helper for this demo: runs a command and reports how it ended)
CREATE FUNCTION pg_temp.attempt(command text, OUT outcome text, OUT code text, OUT message text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE command;
    outcome := 'accepted';
EXCEPTION WHEN OTHERS THEN
    outcome := 'rejected';
    code := SQLSTATE;
    message := SQLERRM;
    GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
END
$$;
SELECT c.command, r.* FROM (VALUES
    ($$commerce.create_user('ada', 'ada2@example.com', 'Ada')$$),
    ($$commerce.create_user('ada2', 'COUNTESS@example.com', 'Ada II')$$),
    ($$commerce.create_user('bob', 'bob-at-example', 'Bob')$$),
    ($$commerce.update_user('linus', '{"name": "Linus T"}')$$),
    ($$commerce.update_user('ada', '{"password": "x"}')$$),
    ($$commerce.delete_user('nobody')$$)
) c(command), LATERAL pg_temp.attempt('SELECT ' || c.command) r;

-- everything after this point is "since :t0"
SELECT now() AS t0 \gset

\echo '=== 6. Checkouts: order and payment in one transaction, one correlation id'
SELECT total, correlation_id AS checkout_1001, order_version
  FROM commerce.checkout('1001', 'ada', '[{"sku": "pen", "quantity": 3, "price": 1.10},
                                          {"sku": "notebook", "quantity": 1, "price": 4.99}]',
                         '9001', 'card', '{"user": "ada", "channel": "web"}') \gset
\echo checkout of order 1001: total :total, correlation id :checkout_1001
SELECT * FROM commerce.place_order('1002', 'grace', '[{"sku": "compiler", "quantity": 1, "price": 99.00}]');
SELECT commerce.change_order_status('1002', 'cancelled', 'changed her mind') AS order_1002_version;
SELECT total, correlation_id, order_version
  FROM commerce.checkout('1003', 'grace', '[{"sku": "bug", "quantity": 1, "price": 0.01},
                                            {"sku": "moth", "quantity": 2, "price": 12.50}]', '9003', 'paypal');

\echo '=== 7. The order rules'
SELECT c.command, r.* FROM (VALUES
    ($$commerce.change_order_status('1001', 'delivered')$$),
    ($$commerce.change_order_status('1002', 'shipped')$$),
    ($$commerce.change_order_status('1003', 'paid')$$),
    ($$commerce.change_order_status('1003', 'lost')$$),
    ($$commerce.pay_order('1002', '9002', 99.00, 'card')$$),
    ($$commerce.pay_order('1003', '9013', 25.01, 'card')$$),
    ($$commerce.place_order('1004', 'linus', '[{"sku": "kernel", "quantity": 1, "price": 0}]')$$),
    ($$commerce.place_order('1004', 'ada', '[]')$$),
    ($$commerce.place_order('1004', 'ada', '[{"sku": "pen", "quantity": 0.5, "price": 1}]')$$),
    ($$commerce.place_order('1001', 'ada', '[{"sku": "pen", "quantity": 1, "price": 1}]')$$),
    ($$commerce.place_order('1004', 'nobody', '[{"sku": "pen", "quantity": 1, "price": 1}]')$$)
) c(command), LATERAL pg_temp.attempt('SELECT ' || c.command) r;
SELECT version, total FROM commerce.place_order('1004', 'ada', '[{"sku": "ink", "quantity": 2, "price": 3.50}]');
SELECT * FROM pg_temp.attempt($$SELECT commerce.pay_order('1004', '9004', 7.01, 'card')$$);

\echo '=== 8. The shipping service polls its subscription, ships each paid order and acks, in one transaction'
-- What a consumer outside the database runs in a loop (after each NOTIFY es_events,
-- or every few seconds): poll, act, ack, commit. A crash before the commit
-- leaves the checkpoint where it was, and the batch is polled again.
-- (es.poll, like es.read_all, hands out an event only once no older transaction
-- anywhere in the cluster can still commit before it; so that this demo ships both
-- orders in one batch even on a busy cluster, wait until that is so, at most 10 s)
DO $$
BEGIN
    FOR i IN 1..200 LOOP
        EXIT WHEN es.read_horizon() > (SELECT max(global_position) FROM es.events);
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;
BEGIN;
CREATE TEMP TABLE shipping_batch ON COMMIT DROP AS SELECT * FROM es.poll('shipping', 100);
SELECT stream_id, data->>'from' AS "from", data->>'to' AS "to" FROM shipping_batch ORDER BY global_position;
SELECT b.data->>'orderId' AS shipped_order,
       commerce.change_order_status(b.data->>'orderId', 'shipped', 'parcel handed to the carrier',
                                    caused_by => b.event_id, metadata => '{"user": "shipping-service"}') AS version
  FROM shipping_batch b WHERE b.data->>'to' = 'paid' ORDER BY b.global_position;
WITH acked AS (SELECT es.ack('shipping', max(global_position)) FROM shipping_batch HAVING count(*) > 0)
SELECT (SELECT count(*) FROM shipping_batch) AS events_acked FROM acked;
COMMIT;
\echo 'the next poll brings the changes the consumer made itself: it acks them and ships nothing'
SELECT string_agg(stream_id || ' ' || (data->>'to'), ', ' ORDER BY global_position) AS polled,
       max(global_position) AS last_polled
  FROM es.poll('shipping', 100) \gset
\echo polled: :polled
SELECT es.ack('shipping', :last_polled) \gset
SELECT commerce.change_order_status('1001', 'delivered') AS order_1001_version;
SELECT c.command, r.* FROM (VALUES
    ($$commerce.change_order_status('1003', 'cancelled')$$),
    ($$commerce.change_order_status('1001', 'cancelled')$$)
) c(command), LATERAL pg_temp.attempt('SELECT ' || c.command) r;
SELECT commerce.change_order_status('1003', 'delivered') AS order_1003_version;
SELECT stream_id, version, state->>'status' AS status, state->>'total' AS total, state->>'paymentId' AS payment
  FROM commerce.orders ORDER BY stream_id;

\echo '=== 9. Queries: one checkout''s events by correlation id, with what caused each'
WITH RECURSIVE checkout AS (
    SELECT * FROM es.events WHERE metadata->>'correlation_id' = :'checkout_1001'
), chain AS (
    SELECT c.*, 0 AS depth FROM checkout c
     WHERE NOT EXISTS (SELECT FROM checkout p WHERE p.event_id::text = c.metadata->>'causation_id')
    UNION ALL
    SELECT c.*, chain.depth + 1 FROM checkout c JOIN chain ON c.metadata->>'causation_id' = chain.event_id::text
)
SELECT repeat('  ', depth) || event_type || coalesce(' -> ' || (data->>'to'), '') AS caused_by_the_line_above,
       stream_id, version, metadata->>'user' AS "user"
  FROM chain ORDER BY global_position;

\echo 'every event of a type (OrderStatusChanged), in global order'
SELECT stream_id, version, data->>'from' AS "from", data->>'to' AS "to", data->>'reason' AS reason
  FROM es.read_all(0, 1000, event_types => ARRAY['OrderStatusChanged']);
\echo 'every event of an aggregate type (user)'
SELECT stream_id, version, event_type, data FROM es.read_all(0, 1000, stream_types => ARRAY['user']);
\echo 'events since t0 (before the first checkout), by type'
SELECT event_type, count(*) FROM es.events WHERE recorded_at > :'t0' GROUP BY event_type ORDER BY event_type;

\echo '=== 10. The subscription and the store'
SELECT consumer, lag FROM es.subscription_status;
SELECT jsonb_pretty(es.stats() - 'horizon' - 'last_position' - 'aggregates') AS stats;
