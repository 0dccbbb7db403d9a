-- bank.deposit on one account (-D acct=old|young), rolled back so the account does not age
BEGIN;
SELECT version FROM bank.deposit(:acct, 1.00);
ROLLBACK;
