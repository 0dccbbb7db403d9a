-- es.load of a random account of the bank example (read only: the same
-- draws give the same work, so two builds compare exactly)
\set a random(1, 1000)
SELECT version FROM es.load('account-b' || :a);
