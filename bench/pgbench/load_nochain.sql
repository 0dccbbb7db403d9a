-- es.load of a 100-event stream written in the newest shape (snapshots off)
SELECT * FROM es.load('plain-1');
