-- Message DB's write_message to a random stream among 1,000 of one category,
-- no expected version (run against Message DB itself and against
-- pg_eventsource_message_db: the same call)
\set s random(1, 1000)
SELECT message_store.write_message(gen_random_uuid()::varchar, 'account-' || :s, 'Deposited',
                                   '{"amount": 12.50, "currency": "EUR", "note": "salary"}');
