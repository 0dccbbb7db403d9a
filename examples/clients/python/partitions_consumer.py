#!/usr/bin/env python3
"""Follows every logical partition of a pg_eventsource router into a read model, exactly once.

The router (examples/partitions.sql, `bash scripts/run.sh partitions`) spreads the
bank's accounts over logical partitions; each partition has its own order of
positions, and there is no order across them. So this consumer keeps one checkpoint
per logical partition, in its own database next to its read model, and for each
page of `es.read_all(partition, checkpoint, page)` it applies the events and moves
that partition's checkpoint in ONE local transaction: a crash between pages, or in
the middle of one, neither loses nor repeats an event (the page is read again from
the checkpoint that committed). A stream lives in one partition and es.read_all hands
out its events in version order, so every account is applied in order.

The read model (schema `consumer` in the read-model database, created when missing):
  consumer.accounts     one row per account: owner, balance, open or closed, version
  consumer.handled      one row per event applied (its id is the primary key: a
                        repeat would fail the page's transaction, not pass silently)
  consumer.checkpoints  one row per logical partition: the last position applied

Run:  target/examples/python-venv/bin/python examples/clients/python/partitions_consumer.py \
          [--router DSN] [--read-model DSN] [--until-caught-up] [--page N] [--poll SECONDS]
(`bash examples/clients/python/run.sh --help` makes that venv, with psycopg 3, once.)
DSNs: --router or ES_ROUTER_DSN (default: PGHOST, PGPORT, PGUSER, dbname es_router),
--read-model or ES_READ_MODEL_DSN (default: the same server, dbname es_consumer; the
database must exist). Without --until-caught-up it follows the partitions, polling
every --poll seconds when a pass over all of them found nothing. (Notifications,
LISTEN es_events, are sent in each partition database, not on the router: a consumer
that wants them instead of polling listens on every partition database.)
--crash-after-pages N (for tests): after N committed pages, apply the next page and
kill this process (SIGKILL) before it commits.
Prints a line per page and, at the end, "RESULT handled=... pages=... accounts=...".
"""

import argparse
import os
import signal
import sys
import time

import psycopg
from psycopg.conninfo import make_conninfo

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS consumer;
CREATE TABLE IF NOT EXISTS consumer.checkpoints (
    partition  integer     PRIMARY KEY,
    position   bigint      NOT NULL DEFAULT 0,
    events     bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS consumer.accounts (
    stream_id  text          PRIMARY KEY,
    account_id text          NOT NULL,
    owner      text          NOT NULL,
    balance    numeric(20,2) NOT NULL,
    is_active  boolean       NOT NULL,
    version    bigint        NOT NULL,
    partition  integer       NOT NULL,
    updated_at timestamptz   NOT NULL
);
CREATE TABLE IF NOT EXISTS consumer.handled (
    event_id        uuid        PRIMARY KEY,
    partition       integer     NOT NULL,
    global_position bigint      NOT NULL,
    stream_id       text        NOT NULL,
    version         bigint      NOT NULL,
    handled_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (partition, global_position),
    UNIQUE (stream_id, version)
);
"""

# One page of one logical partition; amounts as numeric (Decimal), never floats.
READ_PAGE = """
SELECT global_position, stream_id, version, event_type, event_id, recorded_at,
       COALESCE(data->>'amount', data->>'initialBalance')::numeric AS amount,
       data->>'accountId' AS account_id, data->>'owner' AS owner
  FROM es.read_all(%s::integer, %s::bigint, %s::integer, stream_types => ARRAY['account'])
"""


class OutOfOrder(Exception):
    """An event that does not follow its account's last applied version."""


def default_dsn(dbname):
    return make_conninfo(
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=os.environ.get("PGPORT", "28815"),
        user=os.environ.get("PGUSER", "postgres"),
        dbname=dbname,
    )


def connect(dsn):
    # autocommit: router reads are single statements; the read model's
    # transactions are explicit (conn.transaction()). PL/Proxy says NOTICE
    # when it replaces a connection after a remote error: not worth a line.
    return psycopg.connect(dsn, autocommit=True, application_name="partitions-consumer",
                           options="-c client_min_messages=warning")


def apply_event(cur, partition, ev):
    """Applies one event to the read model, inside the page's transaction."""
    position, stream_id, version, event_type, event_id, recorded_at, amount, account_id, owner = ev
    cur.execute("INSERT INTO consumer.handled (event_id, partition, global_position, stream_id, version) "
                "VALUES (%s, %s, %s, %s, %s)", (event_id, partition, position, stream_id, version))
    if event_type == "AccountOpened":
        if version != 1:
            raise OutOfOrder(f"{stream_id}: AccountOpened at version {version}")
        cur.execute("INSERT INTO consumer.accounts "
                    "(stream_id, account_id, owner, balance, is_active, version, partition, updated_at) "
                    "VALUES (%s, %s, %s, %s, true, 1, %s, %s)",
                    (stream_id, account_id, owner, amount, partition, recorded_at))
        return
    # Money events move the balance; AccountClosed closes; the store's own
    # markers ($EventsRedacted, ...) only advance the version.
    delta = 0
    if event_type in ("MoneyDeposited", "MoneyWithdrawn"):
        if amount is None:
            raise ValueError(f"{stream_id} v{version}: {event_type} without an amount")
        delta = amount if event_type == "MoneyDeposited" else -amount
    cur.execute("UPDATE consumer.accounts SET balance = balance + %s, is_active = is_active AND %s, "
                "version = %s, updated_at = %s WHERE stream_id = %s AND version = %s",
                (delta, event_type != "AccountClosed", version, recorded_at, stream_id, version - 1))
    if cur.rowcount != 1:
        have = cur.execute("SELECT version FROM consumer.accounts WHERE stream_id = %s", (stream_id,)).fetchone()
        raise OutOfOrder(f"{stream_id}: version {version} arrived, the read model is at "
                         f"{have[0] if have else 'nothing'}")


class Consumer:
    def __init__(self, router, read_model, page, crash_after_pages):
        self.router = router
        self.rm = read_model
        self.page = page
        self.crash_after_pages = crash_after_pages
        self.pages = 0
        self.handled = 0
        self.checkpoints = {}

    def setup(self):
        self.partitions = [r[0] for r in self.router.execute("SELECT partition FROM es.partitions() ORDER BY 1")]
        if not self.partitions:
            raise SystemExit("the router has no partitions: run es.configure_partitions first")
        n = len(self.partitions)
        with self.rm.transaction():
            self.rm.execute(SCHEMA)
            # checkpoints are positions of the partitions of one router: a
            # read model built from a router with another count is not this one's
            other = self.rm.execute("SELECT count(*) FROM consumer.checkpoints WHERE partition >= %s", (n,)).fetchone()[0]
            if other:
                raise SystemExit(f"the read model has checkpoints of partitions this router ({n} partitions) "
                                 "does not have: it follows another router")
            self.rm.execute("INSERT INTO consumer.checkpoints (partition) SELECT generate_series(0, %s - 1) "
                            "ON CONFLICT (partition) DO NOTHING", (n,))
        self.checkpoints = dict(self.rm.execute("SELECT partition, position FROM consumer.checkpoints").fetchall())
        before = self.rm.execute("SELECT count(*) FROM consumer.handled").fetchone()[0]
        started = sum(1 for v in self.checkpoints.values() if v)
        print(f"following {n} logical partitions; {before} event(s) handled before, "
              f"{started} partition(s) resume from a checkpoint", flush=True)

    def consume_page(self, p):
        """Reads one page of partition p and applies it; returns how many events it had."""
        after = self.checkpoints[p]
        # Read outside the local transaction: a transaction held open in this
        # cluster while reading would hold the partitions' read horizon back.
        rows = self.router.execute(READ_PAGE, (p, after, self.page)).fetchall()
        if not rows:
            return 0
        last = rows[-1][0]
        crash = self.crash_after_pages is not None and self.pages >= self.crash_after_pages
        moved = None
        with self.rm.transaction():
            # The checkpoint row, locked. If another instance of this consumer
            # got here first and moved it, this page is dropped and read
            # again from there.
            stored = self.rm.execute("SELECT position FROM consumer.checkpoints WHERE partition = %s FOR UPDATE",
                                     (p,)).fetchone()[0]
            if stored != after:
                moved = stored
                raise psycopg.Rollback()  # leaves the block, rolling back
            with self.rm.cursor() as cur:
                for ev in rows:
                    apply_event(cur, p, ev)
            self.rm.execute("UPDATE consumer.checkpoints SET position = %s, events = events + %s, updated_at = now() "
                            "WHERE partition = %s", (last, len(rows), p))
            if crash:
                print(f"crash: page {self.pages + 1} (partition {p}, {len(rows)} event(s)) applied but not "
                      f"committed; killing this process (SIGKILL) after {self.handled} event(s) in "
                      f"{self.pages} committed page(s)", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
        if moved is not None:
            print(f"partition {p:2}: another consumer moved the checkpoint to {moved}; reading on from there",
                  flush=True)
            self.checkpoints[p] = moved
            return len(rows)  # not caught up: read this partition again
        # committed: the page is handled, the checkpoint moved with it
        self.checkpoints[p] = last
        self.pages += 1
        self.handled += len(rows)
        streams = {}
        for ev in rows:
            lo, _ = streams.get(ev[1], (ev[2], ev[2]))
            streams[ev[1]] = (lo, ev[2])
        print(f"partition {p:2}: {len(rows):3} event(s), "
              + ", ".join(f"{s} v{lo}" + (f"-{hi}" if hi != lo else "") for s, (lo, hi) in streams.items())
              + f"; checkpoint {after} -> {last}", flush=True)
        return len(rows)

    def run(self, until_caught_up, poll):
        # One page of every partition per pass, so that a busy partition does
        # not starve the others; caught up after a pass that found nothing.
        while True:
            if sum(self.consume_page(p) for p in self.partitions) == 0:
                if until_caught_up:
                    return
                time.sleep(poll)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--router", default=os.environ.get("ES_ROUTER_DSN") or default_dsn("es_router"),
                    help="libpq connection string of the router database")
    ap.add_argument("--read-model", default=os.environ.get("ES_READ_MODEL_DSN") or default_dsn("es_consumer"),
                    help="libpq connection string of the read model's database (it must exist)")
    ap.add_argument("--page", type=int, default=100, help="events per es.read_all call (100)")
    ap.add_argument("--poll", type=float, default=0.5, help="seconds between passes that found nothing (0.5)")
    ap.add_argument("--until-caught-up", action="store_true",
                    help="stop after a pass over every partition that found nothing")
    ap.add_argument("--crash-after-pages", type=int, default=None, metavar="N",
                    help="for tests: after N committed pages, apply the next one and SIGKILL this process")
    args = ap.parse_args()
    if args.page < 1:
        ap.error("--page must be at least 1")

    def stop(signum, frame):
        raise KeyboardInterrupt
    # a service manager's SIGTERM ends it like Ctrl-C: the summary still prints
    signal.signal(signal.SIGTERM, stop)

    with connect(args.router) as router, connect(args.read_model) as rm:
        c = Consumer(router, rm, args.page, args.crash_after_pages)
        c.setup()
        try:
            c.run(args.until_caught_up, args.poll)
        except KeyboardInterrupt:
            print("stopped: the page in progress, if any, was rolled back", flush=True)
        accounts = rm.execute("SELECT count(*) FROM consumer.accounts").fetchone()[0]
        total = rm.execute("SELECT count(*) FROM consumer.handled").fetchone()[0]
    print(f"RESULT handled={c.handled} pages={c.pages} total_handled={total} accounts={accounts} "
          f"partitions={len(c.partitions)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
