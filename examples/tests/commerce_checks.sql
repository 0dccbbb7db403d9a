-- Checks of examples/commerce.sql, run by scripts/test_examples.sh in the
-- database where commerce.sql has just run.
\ir lib.sql

-- Users: aggregate and inline read model
SELECT pg_temp.check_eq('users: the read model after create, update, delete',
    (SELECT jsonb_agg(jsonb_build_array(user_id, email, name, status, version) ORDER BY user_id) FROM commerce.users),
    '[["ada", "countess@example.com", "Ada King", "active", 2],
      ["grace", "grace@example.com", "Grace Hopper", "active", 1],
      ["linus", "linus@example.com", "Linus", "deleted", 2]]'::jsonb);
SELECT pg_temp.check_eq('users: ada''s aggregate merged the update',
                        jsonb_build_object('name', state->'name', 'email', state->'email', 'status', state->'status'),
                        '{"name": "Ada King", "email": "countess@example.com", "status": "active"}'::jsonb)
  FROM es.load('user-ada');
SELECT pg_temp.check('users: the read model equals every user''s loaded state',
                     bool_and(u.email = l.state->>'email' AND u.name = l.state->>'name'
                              AND u.status = l.state->>'status' AND u.version = l.version)
                     AND count(*) = (SELECT count(*) FROM es.streams WHERE stream_type = 'user'))
  FROM commerce.users u CROSS JOIN LATERAL es.load('user-' || u.user_id) l;
SELECT pg_temp.rejects('create an existing user', $$SELECT commerce.create_user('ada', 'x@example.com', 'X')$$, '23505');
SELECT pg_temp.rejects('create a user with a taken email (any case)', $$SELECT commerce.create_user('x', 'Countess@Example.com', 'X')$$, '23505');
SELECT pg_temp.rejects('change email to a taken one', $$SELECT commerce.update_user('grace', '{"email": "countess@example.com"}')$$, '23505');
SELECT pg_temp.rejects('a taken email appended around the commands fails in the inline read model',
                       $$SELECT es.append_event('user-x', 'UserCreated', '{"userId": "x", "email": "countess@example.com", "name": "X"}', 0)$$, '23505');
SELECT pg_temp.check('a deleted user''s email is free again',
                     (SELECT commerce.create_user('linus2', 'linus@example.com', 'Linus II')) = 1);
SELECT pg_temp.rejects('create a user with a malformed email', $$SELECT commerce.create_user('x', 'x@', 'X')$$, '22023');
SELECT pg_temp.rejects('create a user with an empty name', $$SELECT commerce.create_user('x', 'x@example.com', '')$$, '22023');
SELECT pg_temp.rejects('update a deleted user', $$SELECT commerce.update_user('linus', '{"name": "L"}')$$, '55000');
SELECT pg_temp.rejects('delete a deleted user', $$SELECT commerce.delete_user('linus')$$, '55000');
SELECT pg_temp.rejects('update an unknown user', $$SELECT commerce.update_user('nobody', '{"name": "N"}')$$, 'P0002');
SELECT pg_temp.rejects('update a field that cannot change', $$SELECT commerce.update_user('ada', '{"status": "admin"}')$$, '22023');

-- Orders and payments as the demo left them
SELECT pg_temp.check_eq('orders: status, total, payment',
    (SELECT jsonb_agg(jsonb_build_array(stream_id, version, state->'status', state->'total', state->'paymentId') ORDER BY stream_id)
       FROM commerce.orders),
    '[["order-1001", 4, "delivered", 8.29, "9001"], ["order-1002", 2, "cancelled", 99.00, null],
      ["order-1003", 4, "delivered", 25.01, "9003"], ["order-1004", 1, "placed", 7.00, null]]'::jsonb);
SELECT pg_temp.check('orders: the materialized states equal es.load',
                     bool_and(o.state = l.state AND o.version = l.version)
                     AND count(*) = (SELECT count(*) FROM es.streams WHERE stream_type = 'order'))
  FROM commerce.orders o CROSS JOIN LATERAL es.load(o.stream_id) l;
SELECT pg_temp.check('orders: each total is the sum of quantity x price of its items',
                     bool_and((data->>'total')::numeric =
                              (SELECT sum((i->>'quantity')::numeric * (i->>'price')::numeric) FROM jsonb_array_elements(data->'items') i)))
  FROM es.events WHERE event_type = 'OrderCreated';
SELECT pg_temp.check_eq('payments: one per paid order, for its total, and the paid status names it',
    (SELECT jsonb_agg(jsonb_build_array(p.data->'orderId', p.data->'amount', s.data->'paymentId') ORDER BY p.stream_id)
       FROM es.events p
       JOIN es.events s ON s.event_type = 'OrderStatusChanged' AND s.data->>'to' = 'paid'
                       AND s.data->>'orderId' = p.data->>'orderId'
      WHERE p.event_type = 'PaymentProcessed'),
    '[["1001", 8.29, "9001"], ["1003", 25.01, "9003"]]'::jsonb);

-- The status rules, over every status change in the store: each starts
-- where the previous one ended, and is one of the allowed moves.
SELECT pg_temp.check('order status: every change follows placed -> paid -> shipped -> delivered, or -> cancelled before shipping',
                     count(*) > 0 AND bool_and(ok), string_agg(stream_id || '@' || version, ', ') FILTER (WHERE NOT ok))
  FROM (SELECT stream_id, version,
               data->>'from' = COALESCE(lag(data->>'to') OVER w, 'placed')
               AND (data->>'from', data->>'to') IN (('placed', 'paid'), ('placed', 'cancelled'), ('paid', 'shipped'),
                                                    ('paid', 'cancelled'), ('shipped', 'delivered')) AS ok
          FROM es.events WHERE event_type = 'OrderStatusChanged'
        WINDOW w AS (PARTITION BY stream_id ORDER BY version)) t;

-- The rules, one command at a time, on a new order
SELECT pg_temp.check_eq('place order 2001', (SELECT total FROM commerce.place_order('2001', 'grace', '[{"sku": "a", "quantity": 2, "price": 0.15}]')), 0.30);
SELECT pg_temp.rejects('placed -> shipped', $$SELECT commerce.change_order_status('2001', 'shipped')$$, '55000');
SELECT pg_temp.rejects('placed -> delivered', $$SELECT commerce.change_order_status('2001', 'delivered')$$, '55000');
SELECT pg_temp.rejects('placed -> paid by hand', $$SELECT commerce.change_order_status('2001', 'paid')$$, '22023');
SELECT pg_temp.rejects('an unknown status', $$SELECT commerce.change_order_status('2001', 'lost')$$, '22023');
SELECT pg_temp.rejects('a NULL status', $$SELECT commerce.change_order_status('2001', NULL)$$, '22004');
SELECT pg_temp.rejects('a payment that is not the total', $$SELECT commerce.pay_order('2001', '8001', 0.31, 'card')$$, '22023');
SELECT pg_temp.rejects('a payment id in use', $$SELECT commerce.pay_order('2001', '9001', 0.30, 'card')$$, '23505');
SELECT pg_temp.check_eq('placed -> paid with its payment', (SELECT to_jsonb(p) FROM commerce.pay_order('2001', '8001', 0.30, 'card') p),
                        '{"payment_version": 1, "order_version": 2}'::jsonb);
SELECT pg_temp.rejects('paid -> paid again', $$SELECT commerce.pay_order('2001', '8002', 0.30, 'card')$$, '55000');
SELECT pg_temp.rejects('paid -> delivered', $$SELECT commerce.change_order_status('2001', 'delivered')$$, '55000');
SELECT pg_temp.rejects('paid -> placed', $$SELECT commerce.change_order_status('2001', 'placed')$$, '55000');
SELECT pg_temp.check_eq('paid -> shipped', commerce.change_order_status('2001', 'shipped'), 3::bigint);
SELECT pg_temp.rejects('shipped -> cancelled', $$SELECT commerce.change_order_status('2001', 'cancelled')$$, '55000');
SELECT pg_temp.check_eq('shipped -> delivered', commerce.change_order_status('2001', 'delivered'), 4::bigint);
SELECT pg_temp.rejects('delivered -> cancelled', $$SELECT commerce.change_order_status('2001', 'cancelled')$$, '55000');
SELECT pg_temp.check_eq('place order 2002 and cancel it',
                        (SELECT version FROM commerce.place_order('2002', 'ada', '[{"sku": "b", "quantity": 1, "price": 1}]'))
                        + commerce.change_order_status('2002', 'cancelled'), 3::bigint);
SELECT pg_temp.rejects('cancelled -> paid', $$SELECT commerce.pay_order('2002', '8003', 1, 'card')$$, '55000');
SELECT pg_temp.rejects('cancelled -> shipped', $$SELECT commerce.change_order_status('2002', 'shipped')$$, '55000');
SELECT pg_temp.rejects('an order for a deleted user', $$SELECT commerce.place_order('2003', 'linus', '[{"sku": "b", "quantity": 1, "price": 1}]')$$, '55000');
SELECT pg_temp.rejects('an order for an unknown user', $$SELECT commerce.place_order('2003', 'nobody', '[{"sku": "b", "quantity": 1, "price": 1}]')$$, 'P0002');
SELECT pg_temp.rejects('an order without items', $$SELECT commerce.place_order('2003', 'ada', '[]')$$, '22023');
SELECT pg_temp.rejects('an item with a negative price', $$SELECT commerce.place_order('2003', 'ada', '[{"sku": "b", "quantity": 1, "price": -1}]')$$, '22023');
SELECT pg_temp.rejects('an existing order id', $$SELECT commerce.place_order('2001', 'ada', '[{"sku": "b", "quantity": 1, "price": 1}]')$$, '23505');
SELECT pg_temp.rejects('status of an unknown order', $$SELECT commerce.change_order_status('9999', 'shipped')$$, 'P0002');
SELECT pg_temp.rejects('a checkout whose payment fails writes no order',
                       $$SELECT commerce.checkout('2004', 'ada', '[{"sku": "b", "quantity": 1, "price": 1}]', '9003', 'card')$$, '23505');

-- Correlation and causation: checkout 1001 is five events, each caused by the one before
SELECT (state->>'correlationId') AS cid FROM es.load('order-1001') \gset
SELECT pg_temp.check_eq('correlation: checkout 1001''s events, found by its correlation id',
    (SELECT jsonb_agg(jsonb_build_array(stream_id, version, event_type) ORDER BY global_position)
       FROM es.events WHERE metadata->>'correlation_id' = :'cid'),
    '[["order-1001", 1, "OrderCreated"], ["payment-9001", 1, "PaymentProcessed"], ["order-1001", 2, "OrderStatusChanged"],
      ["order-1001", 3, "OrderStatusChanged"], ["order-1001", 4, "OrderStatusChanged"]]'::jsonb);
SELECT pg_temp.check('causation: the first event is caused by the request, each next one by the event before it',
                     count(*) = 5 AND bool_and(ok), string_agg(stream_id || '@' || version, ', ') FILTER (WHERE NOT ok))
  FROM (SELECT stream_id, version,
               metadata->>'causation_id' = COALESCE((lag(event_id) OVER (ORDER BY global_position))::text, :'cid') AS ok
          FROM es.events WHERE metadata->>'correlation_id' = :'cid') t;
SELECT pg_temp.check_eq('correlation: every checkout has its own id, shared by all its events',
    (SELECT jsonb_object_agg(o, n) FROM (
        SELECT COALESCE(data->>'orderId', 'none') AS o, count(DISTINCT metadata->>'correlation_id') AS n
          FROM es.events WHERE stream_type IN ('order', 'payment') GROUP BY 1) x),
    '{"1001": 1, "1002": 1, "1003": 1, "1004": 1, "2001": 1, "2002": 1}'::jsonb);
SELECT pg_temp.check_eq('correlation: no two orders share one',
                        (SELECT count(DISTINCT metadata->>'correlation_id') FROM es.events WHERE event_type = 'OrderCreated'),
                        (SELECT count(*) FROM es.events WHERE event_type = 'OrderCreated'));
SELECT pg_temp.check_eq('metadata: the caller''s fields are kept next to the ids',
                        (SELECT metadata->>'channel' FROM es.events WHERE stream_id = 'order-1001' AND version = 1), 'web');

-- Queries over the store (es.read_all is gap-free: wait until it may show everything)
SELECT pg_temp.wait_horizon();
SELECT pg_temp.check_eq('query: every event of a type, in global order',
    (SELECT array_agg(global_position) FROM es.read_all(0, 1000, event_types => ARRAY['OrderStatusChanged'])),
    (SELECT array_agg(global_position ORDER BY global_position) FROM es.events WHERE event_type = 'OrderStatusChanged'));
SELECT pg_temp.check_eq('query: every event of an aggregate type, in global order',
    (SELECT array_agg(event_type) FROM es.read_all(0, 1000, stream_types => ARRAY['user'])),
    (SELECT array_agg(event_type ORDER BY global_position) FROM es.events WHERE stream_type = 'user'));
SELECT pg_temp.check_eq('query: since a time (the first checkout) gives exactly the later events',
    (SELECT count(*) FROM es.events
      WHERE recorded_at >= (SELECT recorded_at FROM es.events WHERE stream_id = 'order-1001' AND version = 1)),
    (SELECT count(*) FROM es.events WHERE global_position >= (SELECT global_position FROM es.events WHERE stream_id = 'order-1001' AND version = 1)));

-- The subscription: the demo acked up to its own 'shipped' changes
SELECT pg_temp.check_eq('subscription: the shipping consumer shipped exactly the paid orders, each caused by its paid event',
    (SELECT jsonb_agg(jsonb_build_array(s.stream_id, s.metadata->>'user', s.metadata->>'causation_id' = p.event_id::text)
                      ORDER BY s.stream_id)
       FROM es.events s JOIN es.events p ON p.stream_id = s.stream_id AND p.event_type = 'OrderStatusChanged' AND p.data->>'to' = 'paid'
      WHERE s.event_type = 'OrderStatusChanged' AND s.data->>'to' = 'shipped' AND s.stream_id IN ('order-1001', 'order-1003')),
    '[["order-1001", "shipping-service", true], ["order-1003", "shipping-service", true]]'::jsonb);
SELECT pg_temp.check_eq('subscription: the next poll starts after the acked checkpoint',
    (SELECT jsonb_agg(jsonb_build_array(stream_id, data->'to')) FROM es.poll('shipping', 100)),
    (SELECT jsonb_agg(jsonb_build_array(stream_id, data->'to') ORDER BY global_position) FROM es.events
      WHERE event_type = 'OrderStatusChanged'
        AND global_position > (SELECT max(global_position) FROM es.events WHERE data->>'to' = 'shipped' AND stream_id IN ('order-1001', 'order-1003'))));
SELECT es.subscribe('audit', event_types => ARRAY['PaymentProcessed']) \gset
SELECT pg_temp.check_eq('subscription: a new consumer polls from the start, filtered',
    (SELECT array_agg(stream_id) FROM es.poll('audit', 10)), ARRAY['payment-9001', 'payment-9003', 'payment-8001']);
SELECT es.ack('audit', (SELECT global_position FROM es.events WHERE stream_id = 'payment-9003')) \gset
SELECT pg_temp.check_eq('subscription: after an ack, the poll resumes after it',
    (SELECT array_agg(stream_id) FROM es.poll('audit', 10)), ARRAY['payment-8001']);
SELECT es.ack('audit', (SELECT global_position FROM es.events WHERE stream_id = 'payment-9001')) \gset
SELECT pg_temp.check_eq('subscription: an ack never moves the checkpoint back',
    (SELECT array_agg(stream_id) FROM es.poll('audit', 10)), ARRAY['payment-8001']);
SELECT es.unsubscribe('audit') \gset
SELECT pg_temp.rejects('subscription: polling an unknown consumer', $$SELECT * FROM es.poll('audit', 10)$$, '42704');

SELECT pg_temp.check_search_paths('commerce');
SELECT pg_temp.check('es.verify(): the store is consistent (versions, stream rows, order, snapshots, materialized rows)',
                     count(*) = 0, string_agg(check_name || ' ' || object || ': ' || detail, '; '))
  FROM es.verify();
