-- es.load of a 100-event stream whose events all need a two-step upcast chain (snapshots off)
SELECT * FROM es.load('chain-1');
