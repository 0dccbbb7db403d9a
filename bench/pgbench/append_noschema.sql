-- the same 10-property event, of a type with no schema
\set s random(1, 1000)
SELECT es.append_event('acct-' || :s, 'Unchecked', '{"account": "acct-17", "amount": 12.50, "currency": "EUR", "note": "salary", "channel": "web", "reference": "0191a3b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b", "booked_at": "2026-12-06T10:15:00Z", "category": "income", "tags": ["monthly", "payroll"], "counterparty": {"name": "ACME Ltd", "iban": "DE89370400440532013000"}}');
