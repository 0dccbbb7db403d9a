-- es.load of the 150-event stream (also 50 events past its newest snapshot)
SELECT * FROM es.load('acct-short');
