-- es.load of the bank benchmark's account of 10,000 events (1,000 snapshots; read only)
SELECT version FROM es.load('account-old');
