"""The eventsourcing library's own test cases (shipped in its package, run
unmodified) against eventsourcing_pg_eventsource.

Each test gets a fresh database with the extension (es.events is append-only,
so tables cannot be emptied between tests), used by a role that is only an
es writer. Connection: ES_TEST_PG{HOST,PORT} (a superuser's, trust auth).

Known and skipped, because a store with sparse positions cannot meet them:
the assertions that notification ids are exactly 1, 2, 3 (listed in KNOWN);
TestNotificationIdsWithGaps checks the rest of what they check about ids.
"""

from __future__ import annotations

import os
import unittest
from typing import ClassVar
from unittest import TestCase

import psycopg
from psycopg import sql

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.tests.application import ApplicationTestCase, ExampleApplicationTestCase
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    InfrastructureFactoryTestCase,
    NonInterleavingNotificationIDsBaseCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)
from eventsourcing.tests.projection import EventSourcedProjectionTestCase
from eventsourcing.utils import Environment, get_topic

MODULE = "eventsourcing_pg_eventsource"
HOST = os.environ.get("ES_TEST_PGHOST", "127.0.0.1")
PORT = os.environ.get("ES_TEST_PGPORT", "28815")
DB = "es_eventsourcing_lib"
ROLE = "es_eventsourcing_app"
PG = {
    "POSTGRES_DBNAME": DB,
    "POSTGRES_HOST": HOST,
    "POSTGRES_PORT": PORT,
    "POSTGRES_USER": ROLE,
    "POSTGRES_PASSWORD": "not-checked",  # trust auth on the test cluster
}

# test -> why it cannot pass against a store whose notification ids are
# global positions (sparse, not 1, 2, 3)
KNOWN = {
    "test_insert_select (ApplicationRecorderTestCase)": "asserts notification ids [1, 2] and [3]",
    "test_save_returns_recording_event (ApplicationTestCase)": "asserts notification ids 1, 2, 3, 4",
}


def fresh_database() -> None:
    """A new database with the extension; the app role may write events and
    create its tracking table."""
    with psycopg.connect(host=HOST, port=PORT, user="postgres", dbname="postgres", autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))
        if not c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone():
            c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(ROLE)))
        c.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DB), sql.Identifier(ROLE)))
    with psycopg.connect(host=HOST, port=PORT, user="postgres", dbname=DB, autocommit=True) as c:
        c.execute("CREATE EXTENSION pg_eventsource")
        c.execute("SELECT es.grant_writer(%s)", (ROLE,))


def factory() -> InfrastructureFactory:
    return InfrastructureFactory.construct(Environment("TestCase", {"PERSISTENCE_MODULE": MODULE, **PG}))


class WithDB(TestCase):
    def setUp(self) -> None:
        fresh_database()
        self.factory = factory()
        super().setUp()

    def tearDown(self) -> None:
        self.factory.close()
        super().tearDown()


class TestAggregateRecorder(WithDB, AggregateRecorderTestCase):
    def create_recorder(self):
        return self.factory.aggregate_recorder()


class TestApplicationRecorder(WithDB, ApplicationRecorderTestCase):
    EXPECT_CONTIGUOUS_NOTIFICATION_IDS = False

    def create_recorder(self):
        return self.factory.application_recorder()

    @unittest.skip(KNOWN["test_insert_select (ApplicationRecorderTestCase)"])
    def test_insert_select(self) -> None:
        pass

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestNotificationIdsWithGaps(WithDB):
    """What test_insert_select checks about notification ids, without
    assuming they are 1, 2, 3: the ids insert_events returns are the ids
    select_notifications and max_notification_id report, in order, and
    start, stop, inclusive_of_start, limit and topics select by them."""

    def test_ids_returned_are_the_ids_read(self) -> None:
        from uuid import uuid4

        from eventsourcing.persistence import StoredEvent

        rec = self.factory.application_recorder()
        self.assertIsNone(rec.max_notification_id())
        self.assertEqual(rec.select_notifications(None, 10), [])
        a, b = uuid4(), uuid4()
        ids = list(rec.insert_events([StoredEvent(a, 1, "topic1", b"state1"), StoredEvent(a, 2, "topic2", b"state2")]))
        ids += list(rec.insert_events([StoredEvent(b, 1, "topic3", b"state3")]))
        self.assertEqual(len(ids), 3)
        self.assertTrue(all(i >= 1 for i in ids))
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(set(ids)), 3)
        n1, n2, n3 = ids

        def seen(*args, **kwargs) -> list[tuple[int, str]]:
            return [(n.id, n.topic) for n in rec.select_notifications(*args, **kwargs)]

        self.assertEqual(seen(None, 10), [(n1, "topic1"), (n2, "topic2"), (n3, "topic3")])
        self.assertEqual(seen(n1, 10), [(n1, "topic1"), (n2, "topic2"), (n3, "topic3")])
        self.assertEqual(seen(n2, 10), [(n2, "topic2"), (n3, "topic3")])
        self.assertEqual(seen(n2, 10, inclusive_of_start=False), [(n3, "topic3")])
        self.assertEqual(seen(n3, 10, inclusive_of_start=False), [])
        self.assertEqual(seen(None, 10, stop=n2), [(n1, "topic1"), (n2, "topic2")])
        self.assertEqual(seen(n1, 1), [(n1, "topic1")])
        self.assertEqual(seen(None, 10, topics=["topic1", "topic3"]), [(n1, "topic1"), (n3, "topic3")])
        self.assertEqual(seen(n2, 10, topics=["topic1"]), [])
        self.assertEqual(rec.max_notification_id(), n3)
        got = rec.select_notifications(n2, 1)[0]
        self.assertEqual((got.originator_id, got.originator_version, got.state), (a, 2, b"state2"))


class TestTrackingRecorder(WithDB, TrackingRecorderTestCase):
    def create_recorder(self):
        return self.factory.tracking_recorder()


class TestProcessRecorder(WithDB, ProcessRecorderTestCase):
    def create_recorder(self):
        return self.factory.process_recorder()


class TestNonInterleaving(WithDB, NonInterleavingNotificationIDsBaseCase):
    insert_num = 100

    def create_recorder(self):
        return self.factory.application_recorder()


class TestFactory(InfrastructureFactoryTestCase):
    def setUp(self) -> None:
        fresh_database()
        self.env = Environment("TestCase", {"PERSISTENCE_MODULE": MODULE, **PG})
        super().setUp()
        fc = type(self.factory)
        self._classes = (
            fc.aggregate_recorder_class,
            fc.application_recorder_class,
            fc.tracking_recorder_class,
            fc.process_recorder_class,
        )

    def expected_factory_class(self):
        import eventsourcing_pg_eventsource

        return eventsourcing_pg_eventsource.PgEventSourceFactory

    def expected_aggregate_recorder_class(self):
        import eventsourcing_pg_eventsource

        return eventsourcing_pg_eventsource.PgEventSourceAggregateRecorder

    def expected_application_recorder_class(self):
        import eventsourcing_pg_eventsource

        return eventsourcing_pg_eventsource.PgEventSourceApplicationRecorder

    def expected_tracking_recorder_class(self):
        return self._classes[2]

    def tracking_recorder_subclass(self):
        return type("TrackingRecorderSubclass", (self._classes[2],), {})

    def expected_process_recorder_class(self):
        import eventsourcing_pg_eventsource

        return eventsourcing_pg_eventsource.PgEventSourceProcessRecorder


class WithEnviron(TestCase):
    def setUp(self) -> None:
        fresh_database()
        self._saved = {k: os.environ.get(k) for k in ("PERSISTENCE_MODULE", *PG)}
        os.environ["PERSISTENCE_MODULE"] = MODULE
        os.environ.update(PG)
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class TestApplication(WithEnviron, ApplicationTestCase):
    @unittest.skip(KNOWN["test_save_returns_recording_event (ApplicationTestCase)"])
    def test_save_returns_recording_event(self) -> None:
        pass


class TestExampleApplication(WithEnviron, ExampleApplicationTestCase):
    expected_factory_topic = "eventsourcing_pg_eventsource:PgEventSourceFactory"


class TestEventSourcedProjection(EventSourcedProjectionTestCase):
    env: ClassVar[dict[str, str]] = {"PERSISTENCE_MODULE": MODULE, **PG}

    def setUp(self) -> None:
        fresh_database()
        super().setUp()


class TestFactoryTopic(TestCase):
    def test_the_module_resolves_to_its_factory(self) -> None:
        fresh_database()
        f = factory()
        try:
            self.assertEqual(get_topic(type(f)), "eventsourcing_pg_eventsource:PgEventSourceFactory")
        finally:
            f.close()


del AggregateRecorderTestCase, ApplicationRecorderTestCase, TrackingRecorderTestCase, ProcessRecorderTestCase
del NonInterleavingNotificationIDsBaseCase, InfrastructureFactoryTestCase, ApplicationTestCase
del ExampleApplicationTestCase, EventSourcedProjectionTestCase

if __name__ == "__main__":
    unittest.main()
