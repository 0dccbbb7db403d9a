-- es.load of a ledger stream (-D sid=ledger-s|m|l): its newest snapshot and 10 events after it
SELECT version FROM es.load(:sid);
