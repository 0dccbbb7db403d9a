-- es.load of the 100,050-event stream (snapshot_every 100: 50 events past its newest snapshot)
SELECT * FROM es.load('acct-long');
