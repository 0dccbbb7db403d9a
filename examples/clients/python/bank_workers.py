#!/usr/bin/env python3
"""Several workers withdraw from one account at once through the bank's SQL
functions (examples/bank.sql), retrying when they lose a race (SQLSTATE 40001),
while a listener prints every append as it commits (LISTEN es_events).

Run:  bash examples/clients/python/run.sh      (installs psycopg 3 when missing)
Needs a database with examples/bank.sql loaded: `bash scripts/run.sh` makes es_demo.
Connection: PGHOST, PGPORT, PGUSER, PGDATABASE (default 127.0.0.1:28815, postgres, es_demo).
Options: --workers N (8), --operations N per worker (12), --initial AMOUNT (100.00).
Exit code 0 only if the final balance is never negative and equals the opening
balance plus the accepted deposits minus the accepted withdrawals.
"""

import argparse
import json
import os
import random
import sys
import threading
import time
from decimal import Decimal

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg import errors


# The lowest balance the account ever had, replaying its events in order.
LOWEST = """SELECT min(running)::text FROM (SELECT sum(CASE event_type WHEN 'AccountOpened' THEN (data->>'initialBalance')::numeric WHEN 'MoneyDeposited' THEN (data->>'amount')::numeric WHEN 'MoneyWithdrawn' THEN -(data->>'amount')::numeric ELSE 0 END) OVER (ORDER BY version) AS running FROM es.read_stream(%s)) r"""


def conninfo():
    return make_conninfo(
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=os.environ.get("PGPORT", "28815"),
        user=os.environ.get("PGUSER", "postgres"),
        dbname=os.environ.get("PGDATABASE", "es_demo"),
        application_name="bank-python",
    )


def connect():
    return psycopg.connect(conninfo(), autocommit=True)


class Listener(threading.Thread):
    """Prints each committed append that touched our account."""

    def __init__(self, stream_id):
        super().__init__(daemon=True)
        self.stream_id = stream_id
        self.conn = connect()
        self.conn.execute("LISTEN es_events")
        self.seen = 0
        self.events = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self):
        while not self.stop.is_set():
            for n in self.conn.notifies(timeout=0.2):
                p = json.loads(n.payload)
                if self.stream_id not in p.get("streams", []):
                    continue
                with self.lock:
                    self.seen += 1
                    self.events += p["events"]
                print(f"  notify: committed {p['events']} event(s) {','.join(p['event_types'])} "
                      f"on {self.stream_id}", flush=True)

    def wait_for(self, transactions, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.seen >= transactions:
                    break
            time.sleep(0.05)
        self.stop.set()
        self.join()
        self.conn.close()
        return self.seen


def worker(n, account, operations, barrier, totals, lock, failures):
    rng = random.Random(n)
    accepted_w = accepted_d = Decimal("0")
    n_w = n_d = rejected = retries = 0
    try:
        with connect() as conn:
            barrier.wait()
            for i in range(operations):
                deposit = i % 4 == 3
                amount = Decimal("2.00") if deposit else Decimal("1.25") * (1 + (n + i) % 4)
                fn = "bank.deposit" if deposit else "bank.withdraw"
                for attempt in range(1000):
                    try:
                        # one statement in autocommit mode: one transaction per command
                        conn.execute(f"SELECT version, balance FROM {fn}(%s, %s)", (account, amount))
                    except errors.SerializationFailure:
                        # another worker appended since our load: nothing was written; run it again
                        retries += 1
                        time.sleep(rng.uniform(0, 0.002 * min(attempt + 1, 10)))
                        continue
                    except errors.CheckViolation:
                        rejected += 1  # insufficient funds: the rule held
                        break
                    if deposit:
                        accepted_d += amount
                        n_d += 1
                    else:
                        accepted_w += amount
                        n_w += 1
                    break
                else:
                    raise RuntimeError(f"worker {n}: gave up after 1000 serialization failures")
    except Exception as e:  # reported by main
        failures.append(f"worker {n}: {type(e).__name__}: {e}")
        barrier.abort()
    with lock:
        totals["withdrawn"] += accepted_w
        totals["deposited"] += accepted_d
        totals["withdrawals"] += n_w
        totals["deposits"] += n_d
        totals["rejected"] += rejected
        totals["retries"] += retries


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--operations", type=int, default=12)
    ap.add_argument("--initial", type=Decimal, default=Decimal("100.00"))
    args = ap.parse_args()

    with connect() as conn:
        if conn.execute("SELECT to_regnamespace('bank') IS NOT NULL").fetchone()[0] is not True:
            print(f"database {conn.info.dbname} has no schema bank: load examples/bank.sql first "
                  "(bash scripts/run.sh does, into es_demo)", file=sys.stderr)
            return 2
        account = f"py-{os.getpid()}-{int(time.time() * 1000)}"
        stream_id = f"account-{account}"
        listener = Listener(stream_id)  # LISTENs now; notifications queue until it reads them
        conn.execute("SELECT bank.open_account(%s, %s, %s)", (account, "Python workers", args.initial))
        print(f"opened {account} with {args.initial}; {args.workers} workers x {args.operations} operations "
              f"(every 4th a deposit of 2.00, the others withdrawals of 1.25 to 5.00)", flush=True)
        listener.start()

        totals = dict(withdrawn=Decimal(0), deposited=Decimal(0), withdrawals=0, deposits=0, rejected=0, retries=0)
        lock, failures = threading.Lock(), []
        barrier = threading.Barrier(args.workers)
        threads = [threading.Thread(target=worker, args=(n, account, args.operations, barrier, totals, lock, failures))
                   for n in range(args.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            print("\n".join(failures), file=sys.stderr)
            return 1

        commands = 1 + totals["withdrawals"] + totals["deposits"]
        notified = listener.wait_for(commands)
        version, balance = conn.execute(
            "SELECT version, (state->>'balance')::numeric FROM es.load(%s)", (stream_id,)).fetchone()
        projected = conn.execute(
            "SELECT balance FROM bank.account_balances WHERE account_id = %s", (account,)).fetchone()
        projected = projected[0] if projected else None
        # the balance after every event, not only the last one
        lowest = Decimal(conn.execute(LOWEST, (stream_id,)).fetchone()[0])

    expected = args.initial + totals["deposited"] - totals["withdrawn"]
    print(f"accepted: {totals['withdrawals']} withdrawals ({totals['withdrawn']}), "
          f"{totals['deposits']} deposits ({totals['deposited']}); rejected for insufficient funds: "
          f"{totals['rejected']}; retries after 40001: {totals['retries']}")
    print(f"notifications: {notified} of {commands} committed commands")
    print(f"lowest balance over the {version} versions: {lowest}")
    print(f"final balance: {balance} (expected {args.initial} + {totals['deposited']} - {totals['withdrawn']} "
          f"= {expected}; read model: {projected}; version {version})")
    print(f"RESULT client=python account={account} balance={balance} withdrawn={totals['withdrawn']} "
          f"deposited={totals['deposited']} accepted={commands - 1} rejected={totals['rejected']} "
          f"retries={totals['retries']} notifications={notified}")
    problems = []
    if lowest < 0:
        problems.append(f"the balance went down to {lowest}")
    if balance != expected:
        problems.append(f"the balance {balance} is not {expected}")
    if projected != balance:
        problems.append(f"bank.account_balances says {projected}")
    if version != commands:
        problems.append(f"the stream has {version} events, not {commands}")
    if notified != commands:
        problems.append(f"{notified} notifications for {commands} commits")
    if problems:
        print("FAILED: " + "; ".join(problems), file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
