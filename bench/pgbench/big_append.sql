-- one append to a snapl stream (-D sid=snapl-...), rolled back so the stream stays
-- where it is: on snapl-s, -m, -l it takes a snapshot, on snapl-n it does not
BEGIN;
SELECT es.append_event(:sid, 'Posted', '{"amount": 12.50, "note": "invoice 0 of the month, paid"}');
ROLLBACK;
