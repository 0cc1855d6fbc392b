"""SQLAlchemy 2 async plumbing every service shares: engines, readiness, migrations, request log.

Each service owns its database; this module only knows how to open one::

    engine = create_engine(settings.database_url)
    await migrate(engine, "catalog.adapters:migrations")
"""

from __future__ import annotations

import abc
import asyncio
import weakref
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from runtime.errors import Unavailable
from runtime.idempotency import ConcurrentRequest, RecordedRequest, RequestLog
from runtime.inbox import Inbox
from runtime.outbox import OutboxWriter
from runtime.unit_of_work import UnitOfWork

#: Rows of the request log (see :mod:`runtime.idempotency`); each service's migrations create it.
REQUEST_LOG_COLUMNS = (
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("operation", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("resource", sa.String(256), nullable=False),
    sa.Column(
        "create_time", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)


#: Rows of the inbox (see :mod:`runtime.inbox`): one per event a consumer handled.
INBOX_COLUMNS = (
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("handle_time", sa.DateTime(timezone=True), nullable=False),
)


def inbox_table(metadata: sa.MetaData) -> sa.Table:
    """Declares the ``inbox`` table in a consuming service's metadata."""
    return sa.Table("inbox", metadata, *(c._copy() for c in INBOX_COLUMNS))


def create_inbox_table() -> None:
    """Creates the ``inbox`` table from inside an Alembic migration."""
    from alembic import op

    op.create_table("inbox", *(c._copy() for c in INBOX_COLUMNS))


def request_log_table(metadata: sa.MetaData) -> sa.Table:
    """Declares the ``request_log`` table in a service's metadata."""
    return sa.Table("request_log", metadata, *(c._copy() for c in REQUEST_LOG_COLUMNS))


def create_request_log_table() -> None:
    """Creates the ``request_log`` table from inside an Alembic migration.

    Each service's first migration calls it, so every request log has the same columns::

        def upgrade() -> None:
            ...
            db.create_request_log_table()
    """
    from alembic import op

    op.create_table("request_log", *(c._copy() for c in REQUEST_LOG_COLUMNS))


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Opens an engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys on."""
    if url.startswith("sqlite"):
        database = sa.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Every aiosqlite connection is a thread and every statement several hand-offs to
        # it; two connections served GetProduct 25% faster on 30% less CPU than the
        # default 5+10 (measured with bench/), and SQLite runs one writer at a time anyway.
        kwargs.setdefault("pool_size", 2)
        kwargs.setdefault("max_overflow", 0)
        engine = create_async_engine(url, connect_args={"timeout": 15}, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 driver's own transaction handling breaks SAVEPOINTs and cannot take the
    # write lock up front; turn it off and let _sqlite_on_begin say BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    # A transaction that will write takes the write lock at BEGIN (IMMEDIATE). A deferred
    # one that reads first and writes later fails with SQLITE_BUSY if another writer
    # committed meanwhile, instead of waiting its turn.
    #
    # One declared read-only begins nothing: each statement then reads its own committed
    # snapshot, which is what READ COMMITTED gives on PostgreSQL too, and saves a BEGIN
    # (three thread hand-offs through aiosqlite) on every read. Any other transaction
    # (migrations, tests) begins as SQLite's default, DEFERRED.
    mode = connection.get_execution_options().get(MODE_OPTION, "DEFERRED")
    if mode != "READ_ONLY":
        connection.exec_driver_sql(f"BEGIN {mode}")


#: Execution option that says how SQLite begins a connection's transactions (see :func:`begin`).
MODE_OPTION = "agora_sqlite_begin"


async def begin(engine: AsyncEngine, *, writes: bool) -> AsyncConnection:
    """Opens a connection with a transaction begun.

    On SQLite a writing transaction takes the write lock first, and a reading one runs each
    statement on its own committed snapshot (see ``_sqlite_on_begin``). PostgreSQL needs no
    hint: its row locks and constraints settle concurrent writers.
    """
    connection = await engine.connect()
    mode = "IMMEDIATE" if writes else "READ_ONLY"
    connection = await connection.execution_options(**{MODE_OPTION: mode})
    await connection.begin()
    return connection


class DatabaseUnavailable(Unavailable):
    """The service's own database did not answer; the caller may retry shortly."""

    reason = "DATABASE_UNAVAILABLE"

    def __init__(self) -> None:
        super().__init__("the service's database is unavailable; retry shortly", retry_after=1.0)


def as_unavailable(error: BaseException) -> DatabaseUnavailable | None:
    """A :class:`DatabaseUnavailable` if ``error`` means the database cannot be reached."""
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return DatabaseUnavailable()
    if isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError | OSError | TimeoutError):
        return DatabaseUnavailable()
    return None


async def ping(engine: AsyncEngine, limit: float = 2.0) -> bool:
    """True if the database answers ``SELECT 1`` within ``limit`` seconds."""
    try:
        async with asyncio.timeout(limit), engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))
        return True
    except Exception:  # any failure means "not ready"; the readiness loop logs transitions
        return False


async def migrate(engine: AsyncEngine, script_location: str) -> None:
    """Applies every pending Alembic migration in ``script_location`` (``package:dir`` form).

    On PostgreSQL an advisory lock serializes concurrent start-ups of the same service;
    within one process a lock does (Alembic's context is process-global).
    """
    async with _migration_lock(), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": script_location}
            )
        await connection.run_sync(_upgrade, script_location)


_MIGRATION_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _migration_lock() -> asyncio.Lock:
    # One lock per event loop: an asyncio.Lock must not be shared across loops.
    return _MIGRATION_LOCKS.setdefault(asyncio.get_running_loop(), asyncio.Lock())


def _upgrade(connection: Connection, script_location: str) -> None:
    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def run_migrations_online(target_metadata: sa.MetaData) -> None:
    """Body of every service's Alembic ``env.py``: migrates the connection :func:`migrate` gives."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "run migrations through `python -m <service> migrate`, not the alembic CLI"
        )
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


class SqlAlchemyRequestLog(RequestLog):
    """The request log in a service's own database, inside the caller's transaction."""

    def __init__(self, connection: AsyncConnection, table: sa.Table) -> None:
        self._connection = connection
        self._table = table

    async def find(self, request_id: str) -> RecordedRequest | None:
        if self._connection.dialect.name == "postgresql":
            # SQLite writers already hold the database lock (BEGIN IMMEDIATE); on PostgreSQL
            # a transaction-scoped advisory lock makes same-id calls take turns.
            await self._connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:id, 0))"),
                {"id": request_id},
            )
        row = (
            await self._connection.execute(
                sa.select(self._table).where(self._table.c.request_id == request_id)
            )
        ).first()
        if row is None:
            return None
        return RecordedRequest(
            request_id=row.request_id,
            operation=row.operation,
            fingerprint=row.fingerprint,
            resource=row.resource,
        )

    async def add(self, request: RecordedRequest) -> None:
        try:
            async with self._connection.begin_nested():
                await self._connection.execute(
                    sa.insert(self._table).values(
                        request_id=request.request_id,
                        operation=request.operation,
                        fingerprint=request.fingerprint,
                        resource=request.resource,
                    )
                )
        except IntegrityError:
            # Another call with the same id committed between our lookup and this insert.
            raise ConcurrentRequest(request.request_id) from None


class SqlAlchemyInbox(Inbox):
    """The inbox in a service's own database, inside the caller's transaction."""

    def __init__(self, connection: AsyncConnection, table: sa.Table) -> None:
        self._connection = connection
        self._table = table

    async def seen(self, consumer: str, event_id: str) -> bool:
        if self._connection.dialect.name == "postgresql":
            # As for request ids: concurrent deliveries of one event take turns.
            await self._connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": f"inbox/{consumer}/{event_id}"},
            )
        row = (
            await self._connection.execute(
                sa.select(self._table.c.event_id).where(
                    self._table.c.consumer == consumer, self._table.c.event_id == event_id
                )
            )
        ).first()
        return row is not None

    async def add(self, consumer: str, event_id: str) -> None:
        await self._connection.execute(
            sa.insert(self._table).values(
                consumer=consumer, event_id=event_id, handle_time=datetime.now(UTC)
            )
        )


class SqlAlchemyUnitOfWork(UnitOfWork):
    """A unit of work on one connection: begins on enter, rolls back on exit unless committed.

    A lost database, on entering or inside the block, surfaces as :class:`DatabaseUnavailable`
    (retryable) rather than as an internal error. A service subclasses it together with its
    own port, names its request log table and binds its repositories to the connection::

        class SqlAlchemyUnitOfWork(db.SqlAlchemyUnitOfWork, UnitOfWork):
            request_log = orm.request_log

            def _bind(self, connection: AsyncConnection) -> None:
                self.products = SqlAlchemyProductRepository(connection)

        async with SqlAlchemyUnitOfWork(engine).writing() as uow:
            ...
            await uow.commit()
    """

    #: The service's ``request_log`` table (see :func:`request_log_table`).
    request_log: ClassVar[sa.Table]
    #: The service's ``inbox`` table, if it consumes events (see :func:`inbox_table`).
    inbox_table: ClassVar[sa.Table | None] = None

    def __init__(self, engine: AsyncEngine, outbox: OutboxWriter | None = None) -> None:
        self._engine = engine
        self._outbox = outbox
        self._connection: AsyncConnection | None = None

    @abc.abstractmethod
    def _bind(self, connection: AsyncConnection) -> None:
        """Sets the service's repositories to ones that work on ``connection``."""

    async def __aenter__(self) -> Self:
        try:
            self._connection = await begin(self._engine, writes=self.writes)
        except Exception as error:
            raise (as_unavailable(error) or error) from error
        self._bind(self._connection)
        self.requests = SqlAlchemyRequestLog(self._connection, self.request_log)
        if self.inbox_table is not None:
            self.inbox = SqlAlchemyInbox(self._connection, self.inbox_table)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        self.emitted.clear()  # events of a transaction that did not commit never leave
        if connection is not None:
            try:
                if connection.in_transaction():
                    await connection.rollback()
            except Exception:
                if exc is None:
                    raise
                # Already failing (often because the database went away): keep that error.
            finally:
                await connection.close()
        # A lost database surfaces as UNAVAILABLE (retryable), not as an internal error.
        unavailable = as_unavailable(exc) if exc is not None else None
        if unavailable is not None:
            raise unavailable from exc

    async def commit(self) -> None:
        """Writes the emitted events to the outbox, then commits: both or neither."""
        assert self._connection is not None, "commit outside of `async with`"
        if self.emitted:
            if self._outbox is None:
                raise AssertionError(f"{type(self).__name__} emits events but has no outbox")
            await self._outbox.write(self._connection, self.emitted, datetime.now(UTC))
            self.emitted.clear()
        await self._connection.commit()

    async def rollback(self) -> None:
        self.emitted.clear()
        if self._connection is not None and self._connection.in_transaction():
            await self._connection.rollback()
