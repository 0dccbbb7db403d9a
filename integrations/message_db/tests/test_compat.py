"""pg_eventsource_message_db against the real Message DB 1.3, installed from
the npm registry (@eventide/message-db) in a second database of the same
server: the same calls must give the same rows (positions, types, data,
metadata; ids, times and global positions aside) and the same errors
(SQLSTATE and message, word for word). Then the unmodified message-db-py
client (PyPI) writes and reads through both and sees the same.

Databases: ES_MDB_REAL (Message DB) and ES_MDB_OURS (the extension), both
prepared by run_tests.sh; every call runs as the role message_store, as
Message DB's clients connect.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import unittest
import uuid
from typing import Any, Callable

import psycopg
from psycopg import errors

HOST = os.environ.get("ES_TEST_PGHOST", "127.0.0.1")
PORT = os.environ.get("ES_TEST_PGPORT", "28815")
REAL = os.environ.get("ES_MDB_REAL", "mdb_real")
OURS = os.environ.get("ES_MDB_OURS", "mdb_ours")
RUN = uuid.uuid4().hex[:8]  # names of this run (the databases are reused)


def connect(db: str, **settings: str) -> psycopg.Connection:
    opts = " ".join(f"-c {k}={v}" for k, v in settings.items())
    return psycopg.connect(host=HOST, port=PORT, dbname=db, user="message_store", autocommit=True, options=opts)


class Both:
    """The same call against Message DB and against the extension."""

    def __init__(self, **settings: str) -> None:
        self.real = connect(REAL, **settings)
        self.ours = connect(OURS, **settings)

    def close(self) -> None:
        self.real.close()
        self.ours.close()

    @staticmethod
    def run(conn: psycopg.Connection, sql: str, params: Any) -> tuple[str, Any]:
        try:
            cur = conn.execute(sql, params)
            rows = cur.fetchall() if cur.description else []
            names = [d.name for d in cur.description] if cur.description else []
            return "rows", [dict(zip(names, r)) for r in rows]
        except psycopg.Error as e:
            return "error", (e.sqlstate, e.diag.message_primary)


def comparable(result: tuple[str, Any]) -> tuple[str, Any]:
    """Ids, times and global positions differ by design."""
    kind, value = result
    if kind == "error":
        return result
    return kind, [{k: v for k, v in r.items() if k not in ("id", "time", "global_position")} for r in value]


class SameCalls(unittest.TestCase):
    """Each call runs on both; the results must be equal."""

    maxDiff = None

    def setUp(self) -> None:
        self.both = Both()
        self.cat = f"testStream{RUN}x{self._testMethodName[-6:]}"

    def tearDown(self) -> None:
        self.both.close()

    def same(self, sql: str, params: Any = None, *, per_db: Callable[[str], Any] | None = None) -> tuple[str, Any]:
        """Runs on both (params from per_db(db) when they depend on the database)."""
        real = Both.run(self.both.real, sql, per_db(REAL) if per_db else params)
        ours = Both.run(self.both.ours, sql, per_db(OURS) if per_db else params)
        self.assertEqual(comparable(ours), comparable(real), sql)
        return real

    def write(self, stream: str, type_: str = "SomeType", data: str | None = '{"attribute": "some value"}',
              metadata: str | None = None, expected: int | None = None, msg_id: str | None = None) -> tuple[str, Any]:
        return self.same(
            "SELECT message_store.write_message(%s::varchar, %s::varchar, %s::varchar, %s::jsonb, %s::jsonb, %s::bigint)",
            (msg_id or str(uuid.uuid4()), stream, type_, data, metadata, expected),
        )

    def stream(self, n: int | str) -> str:
        return f"{self.cat}-{n}"

    def test_write_message_and_expected_versions(self) -> None:
        s = self.stream(1)
        self.assertEqual(self.write(s), ("rows", [{"write_message": 0}]))
        self.write(s, expected=0)
        self.write(s, expected=0)  # Wrong expected version: 0 (..., Stream Version: 1)
        self.write(s, expected=5)
        self.write(s, expected=-2)
        self.write(self.stream(2), expected=-1)  # -1: the stream must not exist
        self.write(self.stream(2), expected=-1)
        self.write(self.stream(3), expected=0)  # Stream Version: -1
        self.write(self.cat)  # a category-named stream is a stream too
        for data, metadata in [(None, None), ("null", '{"a": 1}'), ("[1, 2]", "{}"), ('"text"', "[1]"),
                               ('{"n": 1.50}', '"just text"'), ("{}", '{"correlationStreamName": "x-1"}')]:
            self.write(self.stream(4), data=data, metadata=metadata)
        self.same("SELECT * FROM message_store.get_stream_messages(%s)", (self.stream(4),))
        self.same("SELECT message_store.stream_version(%s)", (self.stream(1),))
        self.same("SELECT message_store.stream_version(%s)", (self.stream(99),))

    def test_write_message_errors(self) -> None:
        s = self.stream(1)
        dup = str(uuid.uuid4())
        self.write(s, msg_id=dup)
        self.write(s, msg_id=dup)  # the same id again, even with the same content
        self.write(self.stream(2), msg_id=dup)
        self.write(s, msg_id="not-a-uuid")
        self.same("SELECT message_store.write_message(NULL, %s, 'T', '{}')", (s,))
        self.same("SELECT message_store.write_message(%s, %s, NULL, '{}')", (str(uuid.uuid4()), s))
        self.same("SELECT message_store.write_message(%s, NULL, 'T', '{}')", (str(uuid.uuid4()),))
        self.same("SELECT * FROM message_store.get_stream_messages(%s)", (s,))

    def test_an_id_taken_by_a_concurrent_writer(self) -> None:
        """A writer whose id another transaction holds waits for it; once that
        one commits it gets the unique index's error, as in Message DB (ours
        reads nothing first: the index decides, also for this race)."""
        results = {}
        for db in (REAL, OURS):
            dup = str(uuid.uuid4())
            holder = connect(db)
            waiter = connect(db)
            try:
                holder.execute("BEGIN")
                holder.execute("SELECT message_store.write_message(%s, %s, 'T', '{}')", (dup, self.stream(1)))
                outcome: dict[str, Any] = {}

                def write() -> None:
                    outcome["r"] = Both.run(waiter, "SELECT message_store.write_message(%s, %s, 'T', '{}')",
                                            (dup, self.stream(2)))

                t = threading.Thread(target=write)
                t.start()
                time.sleep(0.5)
                self.assertTrue(t.is_alive(), f"{db}: the second writer did not wait for the first")
                holder.execute("COMMIT")
                t.join(10)
                results[db] = outcome["r"]
                # the loser wrote nothing
                self.assertEqual(Both.run(waiter, "SELECT count(*) FROM message_store.get_stream_messages(%s)",
                                          (self.stream(2),)), ("rows", [{"count": 0}]))
            finally:
                holder.close()
                waiter.close()
        self.assertEqual(results[OURS], results[REAL])
        self.assertEqual(results[OURS][0], "error")
        self.assertEqual(results[OURS][1][0], "23505")

    def test_get_stream_messages(self) -> None:
        s = self.stream(1)
        for i in range(5):
            self.write(s, type_="A" if i % 2 else "B", data=f'{{"i": {i}}}')
        q = "SELECT * FROM message_store.get_stream_messages(%s, %s, %s)"
        for position, batch in [(0, 1000), (2, 1000), (0, 2), (3, -1), (0, 0), (-5, 2), (None, None), (10, 5)]:
            self.same(q, (s, position, batch))
        self.same(q, (s, 0, -2))  # LIMIT must not be negative
        self.same("SELECT * FROM message_store.get_stream_messages(%s)", (self.cat,))  # Must be a stream name
        self.same("SELECT * FROM message_store.get_stream_messages(NULL)")
        self.same("SELECT * FROM message_store.get_stream_messages(%s)", (self.stream(404),))
        self.same("SELECT * FROM message_store.get_stream_messages(%s, 0, 10, condition => 'position >= 1')", (s,))

    def test_conditions_follow_the_setting(self) -> None:
        s = self.stream(1)
        for i in range(4):
            self.write(s, type_="A" if i % 2 else "B")
        for setting in ("on", "off", "OFF", "yes"):
            both = Both(**{"message_store.sql_condition": setting})
            try:
                for sql in ("SELECT * FROM message_store.get_stream_messages(%s, 0, 10, condition => 'messages.type = ''A''')",
                            "SELECT * FROM message_store.get_stream_messages(%s, 1, 2, condition => 'position >= 1')"):
                    real = comparable(Both.run(both.real, sql, (s,)))
                    self.assertEqual(comparable(Both.run(both.ours, sql, (s,))), real, f"{setting}: {sql}")
                real = comparable(Both.run(both.real, "SELECT * FROM message_store.get_category_messages(%s, condition => 'type = ''B''')", (self.cat,)))
                ours = comparable(Both.run(both.ours, "SELECT * FROM message_store.get_category_messages(%s, condition => 'type = ''B''')", (self.cat,)))
                self.assertEqual(ours, real, setting)
            finally:
                both.close()

    def test_get_category_messages(self) -> None:
        for n in range(3):
            for i in range(2):
                self.write(self.stream(n), data=f'{{"n": {n}, "i": {i}}}')
        q = "SELECT * FROM message_store.get_category_messages(%s, %s, %s)"
        self.same(q, (self.cat, 1, 1000))
        self.same(q, (self.cat, 1, 2))
        self.same(q, (self.cat, 1, -1))
        self.same(q, (self.cat, None, None))
        self.same(q, (self.cat, 1, -3))
        self.same("SELECT * FROM message_store.get_category_messages(%s)", (self.stream(1),))  # Must be a category
        self.same("SELECT * FROM message_store.get_category_messages(NULL)")

        # from the global position of the 3rd message, in each database
        def third(db: str) -> tuple[str, int, int]:
            conn = self.both.real if db == REAL else self.both.ours
            rows = conn.execute("SELECT global_position FROM message_store.get_category_messages(%s)", (self.cat,)).fetchall()
            return (self.cat, rows[2][0], 1000)

        self.same(q, per_db=third)

    def test_correlation(self) -> None:
        corr = f"corr{RUN}"
        for n in range(3):
            self.write(self.stream(n))
            self.write(self.stream(n), metadata=f'{{"correlationStreamName": "{corr}-{n}"}}')
        q = "SELECT * FROM message_store.get_category_messages(%s, 1, 10, correlation => %s)"
        self.same(q, (self.cat, corr))
        self.same(q, (self.cat, f"{corr}-1"))  # Correlation must be a category
        self.same("SELECT * FROM message_store.get_category_messages(%s, 1, 10, %s, 0, 2)", (self.cat, corr))

    def test_consumer_groups(self) -> None:
        for n in range(10):
            self.write(f"{self.cat}-a{n}+x")
            self.write(f"{self.cat}-b{n}")
            self.write(f"{self.cat}-b{n}+{n}")
        q = "SELECT * FROM message_store.get_category_messages(%s, 1, 1000, NULL, %s, %s)"
        for member, size in [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3), (4, 7)]:
            self.same(q, (self.cat, member, size))
        for member, size in [(0, None), (None, 1), (0, 0), (-1, 1), (1, 1), (2, 1), (0, 40000)]:
            self.same(q, (self.cat, member, size))

    def test_get_last_stream_message(self) -> None:
        s = self.stream(1)
        for t in ("SomeType", "SomeType", "SomeOtherType"):
            self.write(s, type_=t)
        self.same("SELECT * FROM message_store.get_last_stream_message(%s)", (s,))
        self.same("SELECT * FROM message_store.get_last_stream_message(%s, 'SomeType')", (s,))
        self.same("SELECT * FROM message_store.get_last_stream_message(%s, 'NoType')", (s,))
        self.same("SELECT * FROM message_store.get_last_stream_message(%s)", (self.stream(404),))

    def test_the_messages_view(self) -> None:
        s = self.stream(1)
        self.write(s, metadata='{"m": 1}')
        self.write(s, data=None)
        self.same(
            "SELECT stream_name, position, type, data, metadata FROM message_store.messages"
            " WHERE stream_name = %s ORDER BY global_position",
            (s,),
        )

    def test_helpers(self) -> None:
        for name in ["someStream", "someStream-123", "someStream-123+abc-x", "someStream-", "someStream-+x", "", "héllo", None]:
            self.same(
                "SELECT message_store.category(%s::varchar), message_store.is_category(%s::varchar),"
                " message_store.id(%s::varchar), message_store.cardinal_id(%s::varchar),"
                " message_store.hash_64(%s::varchar), message_store.acquire_lock(%s::varchar)",
                (name,) * 6,
            )
        self.same("SELECT message_store.message_store_version()")
        # the documented rule: the first 8 bytes of the md5 digest, big-endian, signed
        for v in ("123", "abc", "account"):
            got = self.both.ours.execute("SELECT message_store.hash_64(%s)", (v,)).fetchone()[0]
            self.assertEqual(got, int.from_bytes(hashlib.md5(v.encode()).digest()[:8], "big", signed=True))


class MessageDbPyClient(unittest.TestCase):
    """The unmodified message-db-py client against both databases."""

    def scenario(self, db: str) -> dict[str, Any]:
        from message_db.client import MessageDB

        client = MessageDB(dbname=db, user="message_store", host=HOST, port=int(PORT))
        cat = f"pyClient{RUN}"
        out: dict[str, Any] = {}
        out["first"] = client.write(f"{cat}-1", "Opened", {"owner": "Ada"})
        out["second"] = client.write(f"{cat}-1", "Deposited", {"amount": 10}, {"user": "u1"}, expected_version=0)
        try:
            client.write(f"{cat}-1", "Deposited", {"amount": 5}, expected_version=0)
        except ValueError as e:
            out["conflict"] = str(e)
        try:
            client.write(f"{cat}-2", "Opened", {"owner": "Bob"}, expected_version=1)
        except ValueError as e:
            out["conflict_new"] = str(e)
        out["batch"] = client.write_batch(f"{cat}-2", [("Opened", {"owner": "Bob"}), ("Deposited", {"amount": 3}, {"m": 1})])
        for n in range(6):
            client.write(f"{cat}-{n + 10}", "Touched", {"n": n})

        def strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{k: v for k, v in r.items() if k not in ("id", "time", "global_position")} for r in rows]

        out["stream"] = strip(client.read_stream(f"{cat}-1"))
        out["stream_from_1"] = strip(client.read_stream(f"{cat}-1", position=1))
        out["category"] = strip(client.read_category(cat))
        members = [strip(client.read_category(cat, consumer_group_member=m, consumer_group_size=2)) for m in range(2)]
        out["members"] = members
        last = client.read_last_message(f"{cat}-2")
        out["last"] = {k: v for k, v in last.items() if k not in ("id", "time", "global_position")}
        out["last_empty"] = client.read_last_message(f"{cat}-404")
        everything = client.read("$all", no_of_messages=100000)
        out["all_mine"] = [r["stream_name"] for r in everything if r["stream_name"].startswith(cat)]
        return out

    def test_the_client_sees_the_same_through_both(self) -> None:
        real = self.scenario(REAL)
        ours = self.scenario(OURS)
        self.assertEqual(ours.keys(), real.keys())
        for k in real:
            if k in ("conflict", "conflict_new"):
                # the client's message names the stream, which differs per run
                continue
            self.assertEqual(ours[k], real[k], k)
        cat = f"pyClient{RUN}"
        self.assertEqual(ours["conflict"], real["conflict"].replace(cat, cat))
        self.assertEqual(ours["conflict"], f"P0001-ERROR:  Wrong expected version: 0 (Stream: {cat}-1, Stream Version: 1)")
        self.assertEqual(ours["conflict_new"], f"P0001-ERROR:  Wrong expected version: 1 (Stream: {cat}-2, Stream Version: -1)")
        self.assertEqual((ours["first"], ours["second"], ours["batch"]), (0, 1, 1))
        # consumer group members: disjoint, together the whole category
        self.assertEqual(sorted(map(str, ours["members"][0] + ours["members"][1])), sorted(map(str, ours["category"])))


if __name__ == "__main__":
    unittest.main()
