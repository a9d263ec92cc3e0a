"""Engine set-up, migrations and the unit of work.

SQLite (default, `sqlite+aiosqlite`):
* the database file is created with mode 0600 (its directory 0700); SQLite gives the -wal and
  -shm files the database file's mode, and we tighten them as well in case they pre-existed;
* every connection gets `busy_timeout`, WAL, `synchronous=FULL`, `foreign_keys` and
  `secure_delete` pragmas;
* pysqlite's own transaction handling is switched off and every unit of work starts with
  `BEGIN IMMEDIATE` (SQLAlchemy's documented recipe), so writers queue up instead of failing
  or losing updates. Read-only units of work use a plain (deferred) BEGIN.

PostgreSQL (`postgresql+asyncpg`): repositories read rows to be changed with `FOR UPDATE`.

Statement parameters are hidden from logs and exception messages (`hide_parameters`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from storage.crypto import Cipher
from storage.handoffs import HandoffRepository
from storage.owed import OwedRepository
from storage.records import utc_now
from storage.register import RegisterRepository
from storage.repositories import (
    AuditRepository,
    CaseRepository,
    Clock,
    ConversationRepository,
    InboundRepository,
    OutboxRepository,
)
from storage.staff_accounts import StaffRepository
from storage.web import WebRepository
from storage.writer import SqliteWriter, WriterUnit

__all__ = ["Database", "UnitOfWork", "alembic_config", "create_engine", "migrate"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
READ_ONLY_OPTION = "klachtwijzer_read_only"
FILE_MODE = 0o600
DIR_MODE = 0o700

SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout = 10000",  # first, so that switching to WAL waits for other writers
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA secure_delete = ON",
)


# --- SQLite files and connection hooks ----------------------------------------------------------


def _sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL, or None for an in-memory database."""
    database = url.database
    if not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
        if not database or database == ":memory:" or url.query.get("mode") == "memory":
            return None
    return Path(database)


def _tighten(path: Path) -> None:
    """chmod 0600 the database file and its -wal/-shm/-journal companions if they exist."""
    for candidate in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
        try:
            if candidate.stat().st_mode & 0o777 != FILE_MODE:
                candidate.chmod(FILE_MODE)
        except FileNotFoundError:
            continue


def _prepare_sqlite_file(path: Path) -> None:
    """Create the directory (0700) and an empty database file (0600) before SQLite opens it."""
    if not path.parent.exists():
        path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    os.close(fd)
    _tighten(path)


def _prepare_sqlite_connection(dbapi_connection: Any, path: Path | None) -> None:
    """Every new SQLite connection, pooled or the writer's: our pragmas, our transactions."""
    # Stop the sqlite3 module from issuing BEGIN/COMMIT around DML on its own; we BEGIN ourselves.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()
    if path is not None:
        _tighten(path)


def _install_sqlite_hooks(engine: AsyncEngine, path: Path | None) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        _prepare_sqlite_connection(dbapi_connection, path)

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def create_engine(url: str | URL, *, pool: bool = True) -> AsyncEngine:
    """An async engine with Klachtwijzer's settings (see the module docstring)."""
    sa_url = make_url(url)
    options: dict[str, Any] = {"hide_parameters": True}
    if not pool:
        options["poolclass"] = NullPool
    if sa_url.get_backend_name() != "sqlite":
        return create_async_engine(sa_url, **options)

    path = _sqlite_file(sa_url)
    if path is not None:
        _prepare_sqlite_file(path)
    engine = create_async_engine(sa_url, **options)
    _install_sqlite_hooks(engine, path)
    return engine


# --- migrations ---------------------------------------------------------------------------------


def alembic_config() -> Config:
    """Alembic configuration built in code (no alembic.ini, no logging set-up)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def _upgrade_head(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


# PostgreSQL: processes that start together migrate one after the other (the later ones find the
# schema at head), under this transaction-scoped advisory lock.
MIGRATION_LOCK = 0x6B77_6D69_6772  # "kwmigr"


async def _upgrade(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                     {"key": MIGRATION_LOCK})
        await connection.run_sync(_upgrade_head)


async def migrate(url: str) -> None:
    """Bring the database at `url` to the newest schema (alembic upgrade head)."""
    engine = create_engine(url, pool=False)
    try:
        await _upgrade(engine)
    finally:
        await engine.dispose()


# --- unit of work -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Repositories:
    conversations: ConversationRepository
    cases: CaseRepository
    outbox: OutboxRepository
    audit: AuditRepository
    inbound: InboundRepository
    register: RegisterRepository
    handoffs: HandoffRepository
    owed: OwedRepository
    staff: StaffRepository  # issue 12: the staff desk
    web: WebRepository  # issue 13: the web chat's devices and return codes


class UnitOfWork:
    """One database transaction and the repositories working inside it.

    ``async with db.unit_of_work() as uow: ...; await uow.commit()``. Leaving the block without
    commit (or with an exception) rolls back. Statements after a commit run in a new transaction.
    """

    def __init__(self, engine: AsyncEngine, cipher: Cipher, clock: Clock, *, read_only: bool,
                 writer: SqliteWriter | None = None):
        self._engine = engine
        self._cipher = cipher
        self._clock = clock
        self._read_only = read_only
        self._connection: AsyncConnection | None = None
        self._repos: _Repositories | None = None
        # SQLite writes go through the process's one writer (group commit, storage/writer.py).
        self._unit = writer.unit() if writer is not None and not read_only else None

    def _build(self, conn: AsyncConnection | WriterUnit, *, lock: bool) -> _Repositories:
        args = (conn, self._cipher, self._clock)
        return _Repositories(
            conversations=ConversationRepository(*args, lock=lock),
            cases=CaseRepository(*args, lock=lock),
            outbox=OutboxRepository(*args, lock=lock),
            audit=AuditRepository(*args, lock=lock),
            inbound=InboundRepository(*args, lock=lock),
            register=RegisterRepository(*args, lock=lock),
            handoffs=HandoffRepository(*args, lock=lock),
            owed=OwedRepository(*args, lock=lock),
            staff=StaffRepository(*args, lock=lock),
            web=WebRepository(*args, lock=lock),
        )

    async def __aenter__(self) -> UnitOfWork:
        if self._connection is not None or self._repos is not None:
            raise RuntimeError("a unit of work cannot be entered twice")
        if self._unit is not None:
            self._repos = self._build(self._unit, lock=False)
            return self
        connection = await self._engine.connect()
        try:
            if self._read_only:
                await connection.execution_options(**{READ_ONLY_OPTION: True})
            await connection.begin()
        except BaseException:
            await connection.close()
            raise
        self._connection = connection
        # SELECT ... FOR UPDATE only in write transactions; SQLite ignores it (BEGIN IMMEDIATE).
        self._repos = self._build(connection, lock=not self._read_only)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._unit is not None:
            self._unit.rollback()  # no-op after commit
            return
        connection = self._connection
        if connection is None:
            return
        try:
            if connection.in_transaction():
                await connection.rollback()
        finally:
            await connection.close()

    def _require(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("use the unit of work inside `async with db.unit_of_work()`")
        return self._connection

    def _repositories(self) -> _Repositories:
        if self._repos is None:
            raise RuntimeError("use the unit of work inside `async with db.unit_of_work()`")
        return self._repos

    async def commit(self) -> None:
        """End the transaction durably: on SQLite, returns once its batch is on disk."""
        if self._unit is not None:
            self._repositories()
            await self._unit.commit()
            return
        await self._require().commit()

    async def rollback(self) -> None:
        if self._unit is not None:
            self._repositories()
            self._unit.rollback()
            return
        await self._require().rollback()

    @property
    def conversations(self) -> ConversationRepository:
        return self._repositories().conversations

    @property
    def cases(self) -> CaseRepository:
        return self._repositories().cases

    @property
    def outbox(self) -> OutboxRepository:
        return self._repositories().outbox

    @property
    def audit(self) -> AuditRepository:
        return self._repositories().audit

    @property
    def inbound(self) -> InboundRepository:
        return self._repositories().inbound

    @property
    def register(self) -> RegisterRepository:
        return self._repositories().register

    @property
    def handoffs(self) -> HandoffRepository:
        return self._repositories().handoffs

    @property
    def owed(self) -> OwedRepository:
        return self._repositories().owed

    @property
    def staff(self) -> StaffRepository:
        """Issue 12: the staff desk's accounts, sessions and throttling."""
        return self._repositories().staff

    @property
    def web(self) -> WebRepository:
        return self._repositories().web


class Database:
    """The application's database: an engine, the cipher for personal data, and a clock."""

    def __init__(self, engine: AsyncEngine, cipher: Cipher, clock: Clock = utc_now,
                 writer: SqliteWriter | None = None) -> None:
        self._engine = engine
        self._cipher = cipher
        self._clock = clock
        self._writer = writer

    @classmethod
    async def open(
        cls,
        url: str,
        cipher: Cipher,
        *,
        migrate: bool = True,
        clock: Clock = utc_now,
    ) -> Database:
        """Connect (creating the SQLite file with mode 0600) and, by default, migrate to head."""
        engine = create_engine(url)
        try:
            if migrate:
                await _upgrade(engine)
            else:
                async with engine.connect():
                    pass  # fail early on a bad URL or unreadable file
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, cipher, clock, writer=_sqlite_writer(url))

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def writer(self) -> SqliteWriter | None:
        """SQLite's group-commit writer (None on PostgreSQL, which has its own)."""
        return self._writer

    def unit_of_work(self, *, read_only: bool = False) -> UnitOfWork:
        """A new transaction; `read_only` skips the write lock on SQLite (plain BEGIN)."""
        return UnitOfWork(self._engine, self._cipher, self._clock, read_only=read_only,
                          writer=self._writer)

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        """Whether this process, of all the processes on this database, holds `name` while the
        block runs (not waiting: False when another one holds it). PostgreSQL: a session advisory
        lock on a connection of its own; SQLite: an flock on a file beside the database. Both end
        with the block, or with the process if it dies, so nothing stays claimed by the dead."""
        url = self._engine.url
        if url.get_backend_name() == "postgresql":
            key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
            async with self._engine.connect() as conn:
                held = bool((await conn.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                                {"key": key})).scalar())
                await conn.commit()
                try:
                    yield held
                finally:
                    if held:
                        await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                        await conn.commit()
            return
        path = _sqlite_file(url)
        if path is None:  # in memory: one process by definition
            yield True
            return
        fd = os.open(f"{path}.{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.close()
        await self._engine.dispose()


def _sqlite_writer(url: str) -> SqliteWriter | None:
    """The group-commit writer for a SQLite file: a synchronous pysqlite engine, same pragmas."""
    sa_url = make_url(url)
    path = _sqlite_file(sa_url) if sa_url.get_backend_name() == "sqlite" else None
    if path is None:
        return None
    engine = sa_create_engine(
        sa_url.set(drivername="sqlite+pysqlite"),
        hide_parameters=True,
        poolclass=NullPool,
        connect_args={"check_same_thread": False},  # one connection, used by one task at a time
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        _prepare_sqlite_connection(dbapi_connection, path)

    return SqliteWriter(engine)
