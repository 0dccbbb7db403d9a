"""A persistence module for the Python ``eventsourcing`` library (9.5) that keeps
an application's events and snapshots in pg_eventsource.

Select it as any persistence module::

    PERSISTENCE_MODULE=eventsourcing_pg_eventsource
    POSTGRES_DBNAME=app POSTGRES_HOST=127.0.0.1 POSTGRES_PORT=5432
    POSTGRES_USER=app POSTGRES_PASSWORD=...

The database needs ``CREATE EXTENSION pg_eventsource`` and the user
``es.grant_writer``. Everything else (the pool, the settings, the tracking
table, subscriptions) is the library's own PostgreSQL module; only where events
are written and read from changes:

* each aggregate is a stream ``<table>-<originator id>`` of stream type
  ``<table>`` (``bankaccounts_events``, ``bankaccounts_snapshots``), each event an
  event whose type is the library's topic, whose ``data`` is the state decoded as
  JSON (so ``es.fold``, reducers, projections and subscriptions read its fields)
  and whose metadata keeps the originator version and the exact state bytes;
* notification ids are ``global_position``: they have gaps, they are at least 1,
  and they are read through ``es.read_all``, which never hands out a position
  before every lower one has committed, so no table lock serialises writers;
* one ``es.append_multi`` call writes all the aggregates of a save, atomically,
  and returns the positions it wrote.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any, Sequence
from uuid import UUID

from psycopg.sql import SQL, Identifier
from psycopg.types.json import Jsonb

from eventsourcing import postgres as _pg
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.utils import retry

__all__ = [
    "PgEventSourceAggregateRecorder",
    "PgEventSourceApplicationRecorder",
    "PgEventSourceFactory",
    "PgEventSourceProcessRecorder",
]

# Event ids are derived from the stream and the originator version, so that two
# writers of the same version collide on es.events' unique event id.
_ID_NAMESPACE = uuid.UUID("5f0c3a52-8d7e-4c1b-9a36-2f4f7f1e6b10")

_APPEND = SQL(
    # Rows of events that were already stored before this statement (a retry of a
    # committed save) come back with `existed`; the statement's snapshot does not
    # see the events the call itself writes.
    "SELECT m.version, m.global_position, e.global_position IS NOT NULL AS existed"
    " FROM es.append_multi(%s) WITH ORDINALITY AS m(stream_id, version, global_position, ord)"
    " LEFT JOIN es.events e ON e.global_position = m.global_position"
    " ORDER BY m.ord"
)


def _not_json(constant: str) -> Any:
    msg = f"{constant} is not JSON"
    raise ValueError(msg)


class _Streams:
    """How the library's stored events map to pg_eventsource's streams."""

    datastore: _pg.PostgresDatastore
    events_table_name: str

    def _init_streams(self) -> None:
        schema = self.datastore.schema
        table = self.events_table_name
        self.stream_type = table if schema in ("", "public") else f"{schema}.{table}"
        # nothing to create for the events: the extension's tables hold them
        self.sql_create_statements.clear()  # type: ignore[attr-defined]
        self.datastore.db_type_names.discard(self.stored_event_type_name)  # type: ignore[attr-defined]

    def create_table(self) -> None:
        """The events need no table of their own; the extension must be there."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute("SELECT count(*) AS n FROM pg_catalog.pg_extension WHERE extname = 'pg_eventsource'")
            row = curs.fetchone()
            if not row or not row["n"]:
                msg = "pg_eventsource is not installed in this database: run CREATE EXTENSION pg_eventsource"
                raise ProgrammingError(msg)
        super().create_table()  # type: ignore[misc]

    def _stream_id(self, originator_id: UUID | str) -> str:
        return f"{self.stream_type}-{originator_id}"

    def _originator_id(self, stream_id: str) -> UUID | str:
        oid = stream_id[len(self.stream_type) + 1 :]
        return UUID(oid) if self.datastore.originator_id_type == "uuid" else oid

    def _batches(self, stored_events: Sequence[StoredEvent]) -> tuple[list[dict[str, Any]], list[int]]:
        """The es.append_multi argument (one batch per aggregate, in the order
        they first appear), and for each row it will return the index of the
        stored event it is."""
        groups: dict[str, list[int]] = {}
        for i, e in enumerate(stored_events):
            groups.setdefault(self._stream_id(e.originator_id), []).append(i)
        batches = []
        order: list[int] = []
        for stream_id, indexes in groups.items():
            versions = [stored_events[i].originator_version for i in indexes]
            if len(set(versions)) != len(versions):
                msg = f"the same version of {stream_id} twice in one insert"
                raise IntegrityError(msg)
            batches.append(
                {
                    "stream_id": stream_id,
                    "stream_type": self.stream_type,
                    "events": [self._event(stream_id, stored_events[i]) for i in indexes],
                }
            )
            order.extend(indexes)
        return batches, order

    @staticmethod
    def _event(stream_id: str, e: StoredEvent) -> dict[str, Any]:
        metadata: dict[str, Any] = {"originator_version": e.originator_version}
        data: Any = None
        try:
            text = e.state.decode("utf-8")
        except UnicodeDecodeError:
            # compressed or encrypted: kept, not readable by folds
            metadata["state_b64"] = base64.b64encode(e.state).decode("ascii")
        else:
            # the exact bytes (jsonb normalises the text), and the value for folds
            metadata["state"] = text
            try:
                data = json.loads(text, parse_constant=_not_json)
            except ValueError:
                data = None
            if "\\u0000" in text:  # jsonb has no NUL character
                data = None
        return {
            "type": e.topic,
            "data": data,
            "metadata": metadata,
            "id": str(uuid.uuid5(_ID_NAMESPACE, f"{stream_id}#{e.originator_version}")),
        }

    @staticmethod
    def _state(metadata: dict[str, Any]) -> bytes:
        if "state" in metadata:
            return metadata["state"].encode("utf-8")
        return base64.b64decode(metadata["state_b64"])

    def _append(self, curs: Any, stored_events: Sequence[StoredEvent]) -> list[int]:
        """Appends in the caller's transaction; the positions, in the order of
        `stored_events`. A version already stored raises IntegrityError."""
        batches, order = self._batches(stored_events)
        curs.execute(_APPEND, (Jsonb(batches),), prepare=True)
        rows = curs.fetchall()
        if len(rows) != len(stored_events):
            msg = f"Couldn't get all notification IDs (got {len(rows)}, expected {len(stored_events)})"
            raise ProgrammingError(msg)
        if any(r["existed"] for r in rows):
            msg = "an event of this version is already recorded"
            raise IntegrityError(msg)
        ids = [0] * len(stored_events)
        for i, r in zip(order, rows):
            ids[i] = r["global_position"]
        return ids

    def _transaction(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> list[int] | None:
        """One transaction: what the recorder adds (tracking), a NOTIFY for the
        library's subscriptions, the append. Any error rolls all of it back."""
        if (
            not hasattr(self, "_notify_channel")
            and stored_events
            and len({e.originator_id for e in stored_events}) == 1
        ):
            # one aggregate's events alone (snapshots): one statement, atomic by
            # itself, and a version found stored means nothing was written
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                return self._append(curs, stored_events)
        exc: Exception | None = None
        ids: list[int] | None = None
        with self.datastore.get_connection() as conn:
            # errors are re-raised outside the pipeline (psycopg warns otherwise)
            with conn.pipeline():
                try:
                    with conn.transaction(), conn.cursor() as curs:
                        self._insert_events(curs, stored_events, **kwargs)  # type: ignore[attr-defined]
                        if stored_events:
                            notify = getattr(self, "_notify_channel", None)
                            if notify is not None:
                                notify(curs)
                            ids = self._append(curs, stored_events)
                except Exception as e:  # noqa: BLE001
                    exc = e
            # inside get_connection: it maps psycopg's errors to the library's
            if exc is not None:
                raise exc
        return ids

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_events(self, originator_id: UUID | str, *, gt: int | None = None, lte: int | None = None,
                      desc: bool = False, limit: int | None = None) -> Sequence[StoredEvent]:
        stream_id = self._stream_id(originator_id)
        statement = SQL(
            "SELECT e.event_type, e.metadata FROM es.read_stream(%s, raw => true) e WHERE true"
        )
        params: list[Any] = [stream_id]
        version = SQL("(e.metadata->>'originator_version')::bigint")
        if gt is not None:
            statement += SQL(" AND {} > %s").format(version)
            params.append(gt)
        if lte is not None:
            statement += SQL(" AND {} <= %s").format(version)
            params.append(lte)
        statement += SQL(" ORDER BY {} ").format(version) + SQL("DESC" if desc else "ASC")
        if limit is not None:
            statement += SQL(" LIMIT %s")
            params.append(limit)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params, prepare=True)
            return [
                StoredEvent(
                    originator_id=originator_id,
                    originator_version=r["metadata"]["originator_version"],
                    topic=r["event_type"],
                    state=self._state(r["metadata"]),
                )
                for r in curs.fetchall()
            ]


class PgEventSourceAggregateRecorder(_Streams, _pg.PostgresAggregateRecorder):
    """Events of aggregates without notification ids (the library uses it for
    snapshots)."""

    def __init__(self, datastore: _pg.PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self._init_streams()

    def _insert_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        pass

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if stored_events:
            self._transaction(stored_events, **kwargs)
        return None


class PgEventSourceApplicationRecorder(_Streams, _pg.PostgresApplicationRecorder):
    """Events with notification ids: pg_eventsource's global positions."""

    def __init__(self, datastore: _pg.PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self._init_streams()
        # es.read_all never passes a position that commits later: no table lock
        self.lock_table_statements = []

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        return self._transaction(stored_events, **kwargs)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), *, inclusive_of_start: bool = True) -> Sequence[Notification]:
        if start is None:
            after = 0
        else:
            after = start - 1 if inclusive_of_start else start
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                "SELECT e.global_position, e.stream_id, e.event_type, e.metadata"
                " FROM es.read_all(%s, %s, event_types => %s, stream_types => %s,"
                "                  raw => true, up_to_position => %s) e",
                (max(after, 0), limit, list(topics) or None, [self.stream_type], stop),
                prepare=True,
            )
            return [
                Notification(
                    id=r["global_position"],
                    originator_id=self._originator_id(r["stream_id"]),
                    originator_version=r["metadata"]["originator_version"],
                    topic=r["event_type"],
                    state=self._state(r["metadata"]),
                )
                for r in curs.fetchall()
            ]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def max_notification_id(self) -> int | None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute("SELECT es.last_position(stream_types => %s) AS max", ([self.stream_type],))
            row = curs.fetchone()
            assert row is not None
            return row["max"] or None


class PgEventSourceProcessRecorder(_pg.PostgresProcessRecorder, PgEventSourceApplicationRecorder):
    """Events and tracking records in one transaction. The tracking table is
    the library's own (single-row tracking), next to the extension."""

    def __init__(self, datastore: _pg.PostgresDatastore, *, events_table_name: str = "stored_events",
                 tracking_table_name: str = "notification_tracking"):
        super().__init__(datastore, events_table_name=events_table_name, tracking_table_name=tracking_table_name)


class PgEventSourceFactory(_pg.PostgresFactory):
    """The library's PostgreSQL factory with pg_eventsource's recorders."""

    aggregate_recorder_class = PgEventSourceAggregateRecorder
    application_recorder_class = PgEventSourceApplicationRecorder
    tracking_recorder_class = _pg.PostgresTrackingRecorder
    process_recorder_class = PgEventSourceProcessRecorder


Factory = PgEventSourceFactory
