-- the bank example's command as shipped: load, decide, append, in one SQL call
\set a random(1, 1000)
SELECT version FROM bank.deposit('b' || :a, 1.00);
