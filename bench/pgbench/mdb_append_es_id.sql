-- es.append_event of the same event with a random (v4) id given by the
-- caller, as Message DB's clients give one (es generates UUIDv7 otherwise)
\set s random(1, 1000)
SELECT es.append_event('account-' || :s, 'Deposited', '{"amount": 12.50, "currency": "EUR", "note": "salary"}',
                       event_id => gen_random_uuid());
