"""The Python eventsourcing library's own performance tests, and the same
recorders' reads, for its stock PostgreSQL module and for
eventsourcing_pg_eventsource, on one server (bench/run.sh, scenario
`eventsourcing`).

Writes: the `test_performance` methods the library ships
(`AggregateRecorderTestCase`, `ApplicationRecorderTestCase`,
`ProcessRecorderTestCase`: 100 single-event inserts, "N us per insert") and
`ApplicationRecorderTestCase.test_concurrent_throughput` (4 threads, jobs of
50 events, "Rate: N inserts per second"), run unmodified; their printed
figures are parsed. Reads (the library has no read performance test):
`select_events` of a 100-event aggregate, and paging `select_notifications`
500 at a time through 20,000 events.

Prints one CSV line per figure: side,metric,value,unit.
Usage: python eventsourcing_bench.py HOST PORT [ROUNDS]
"""

from __future__ import annotations

import contextlib
import io
import re
import statistics
import sys
import time
import unittest
from uuid import uuid4

import psycopg
from psycopg import sql

from eventsourcing.persistence import InfrastructureFactory, StoredEvent
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    ProcessRecorderTestCase,
)
from eventsourcing.utils import Environment

HOST, PORT = sys.argv[1], sys.argv[2]
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 1
SIDES = {"stock": "eventsourcing.postgres", "ours": "eventsourcing_pg_eventsource"}


def fresh_database(side: str) -> str:
    db = f"bench_eventsourcing_{side}"
    with psycopg.connect(host=HOST, port=PORT, user="postgres", dbname="postgres", autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    if side == "ours":
        with psycopg.connect(host=HOST, port=PORT, user="postgres", dbname=db, autocommit=True) as c:
            c.execute("CREATE EXTENSION pg_eventsource")
    return db


def factory(side: str, db: str) -> InfrastructureFactory:
    return InfrastructureFactory.construct(
        Environment(
            "bench",
            {
                "PERSISTENCE_MODULE": SIDES[side],
                "POSTGRES_DBNAME": db,
                "POSTGRES_HOST": HOST,
                "POSTGRES_PORT": PORT,
                "POSTGRES_USER": "postgres",
                "POSTGRES_PASSWORD": "not-checked",
            },
        )
    )


def run_library_test(case: type, method: str, make: str, side: str) -> str:
    """Runs one of the library's test methods unmodified, with recorders of
    `side`; returns what it printed."""
    holder: dict[str, InfrastructureFactory] = {}

    class Case(case):  # type: ignore[misc, valid-type]
        def setUp(self) -> None:
            holder["f"] = factory(side, fresh_database(side))
            super().setUp()

        def tearDown(self) -> None:
            super().tearDown()
            holder["f"].close()

        def create_recorder(self):  # noqa: ANN202
            return getattr(holder["f"], make)()

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(Case(method))
    if not result.wasSuccessful():
        raise SystemExit(f"{side} {case.__name__}.{method} failed: {result.errors or result.failures}")
    return out.getvalue()


def per_insert(text: str) -> float:
    return float(re.search(r"([0-9.]+) μs per insert", text).group(1))  # type: ignore[union-attr]


def reads(side: str) -> dict[str, float]:
    f = factory(side, fresh_database(side))
    try:
        rec = f.application_recorder()
        oid = uuid4()
        rec.insert_events([StoredEvent(oid, v + 1, "bench.Topic", b'{"amount":10,"note":"salary"}') for v in range(100)])
        for _ in range(200):  # 20,000 events in all, 100 per aggregate
            o = uuid4()
            rec.insert_events([StoredEvent(o, v + 1, "bench.Topic", b'{"amount":1}') for v in range(99)])
        times = []
        for _ in range(300):
            t = time.perf_counter()
            rec.select_events(oid)
            times.append(time.perf_counter() - t)
        t = time.perf_counter()
        start, n = 0, 0
        while True:
            page = rec.select_notifications(start, 500, inclusive_of_start=False)
            if not page:
                break
            n += len(page)
            start = page[-1].id
        paging = n / (time.perf_counter() - t)
        return {"select_events_us": statistics.median(times) * 1e6, "notifications_per_s": paging}
    finally:
        f.close()


def main() -> None:
    for _ in range(ROUNDS):
        for side in SIDES:
            agg = per_insert(run_library_test(AggregateRecorderTestCase, "test_performance", "aggregate_recorder", side))
            app = per_insert(run_library_test(ApplicationRecorderTestCase, "test_performance", "application_recorder", side))
            proc = per_insert(run_library_test(ProcessRecorderTestCase, "test_performance", "process_recorder", side))
            rate = float(
                re.search(  # type: ignore[union-attr]
                    r"Rate: ([0-9.]+) inserts per second",
                    run_library_test(ApplicationRecorderTestCase, "test_concurrent_throughput", "application_recorder", side),
                ).group(1)
            )
            r = reads(side)
            print(f"{side},aggregate_insert,{agg:.1f},us", flush=True)
            print(f"{side},application_insert,{app:.1f},us", flush=True)
            print(f"{side},process_insert,{proc:.1f},us", flush=True)
            print(f"{side},concurrent_throughput,{rate:.0f},inserts/s", flush=True)
            print(f"{side},select_events_100,{r['select_events_us']:.1f},us", flush=True)
            print(f"{side},select_notifications,{r['notifications_per_s']:.0f},events/s", flush=True)


main()
