"""Group commit for SQLite: one writer connection, units of work in savepoints, one fsync per batch.

SQLite has one writer at a time, and with `synchronous=FULL` every COMMIT waits for the disk
(milliseconds). A bot serving many clients at once would spend its time waiting for fsync, one
conversation after another. So all write units of work of this process share one connection:

* each unit takes its turn (FIFO) and runs inside a SAVEPOINT of the open batch transaction, its
  statements executed inline on the event loop (SQLite answers in microseconds; a thread hop per
  statement would cost ~0.4 ms, ten times the statement itself);
* a unit's `commit()` releases its savepoint and then waits until the batch is durable; a unit
  that fails or leaves without committing is rolled back to its savepoint, the others stay;
* when no other unit is waiting for a turn, the batch COMMITs, its fsync in a worker thread so the
  event loop keeps running, and every waiting `commit()` returns. If the COMMIT fails, they all
  raise and nothing of the batch was stored.

So a reply is still sent only after its state is durable, and one fsync serves every conversation
that wrote in the meantime. Read-only units use the ordinary connection pool (WAL readers).
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.sql import Executable

__all__ = ["SqliteWriter", "WriterUnit"]

# The writer turn held by the current task, to refuse a nested write unit (it would wait forever).
_HOLDER: contextvars.ContextVar[SqliteWriter | None] = contextvars.ContextVar(
    "klachtwijzer_writer_holder", default=None
)


class WriterUnit:
    """One unit of work on the writer: the `execute`/`dialect` of `AsyncConnection` that the
    repositories use, run inline. Its turn is taken at the first statement and given back at
    commit or rollback; a statement after a commit starts a new turn (a new savepoint)."""

    __slots__ = ("_savepoint", "_writer")

    def __init__(self, writer: SqliteWriter) -> None:
        self._writer = writer
        self._savepoint: str | None = None

    @property
    def dialect(self) -> Dialect:
        return self._writer.dialect

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        if self._savepoint is None:
            self._savepoint = await self._writer.enter()
        return self._writer.connection().execute(statement, parameters)

    async def commit(self) -> None:
        savepoint, self._savepoint = self._savepoint, None
        if savepoint is not None:
            await self._writer.commit(savepoint)

    def rollback(self) -> None:
        savepoint, self._savepoint = self._savepoint, None
        if savepoint is not None:
            self._writer.rollback(savepoint)


class SqliteWriter:
    """The process's one SQLite write connection and its batches (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self._turn = asyncio.Lock()
        self._in_transaction = False
        self._waiting: list[asyncio.Future[None]] = []
        self._flush_task: asyncio.Task[None] | None = None
        self._savepoints = 0
        self.batches = 0  # how many COMMITs, for the benchmark's figures
        self.units = 0

    @property
    def dialect(self) -> Dialect:
        return self._engine.dialect

    def unit(self) -> WriterUnit:
        return WriterUnit(self)

    def connection(self) -> Connection:
        if self._conn is None:
            # AUTOCOMMIT: SQLAlchemy leaves BEGIN/COMMIT to us (BEGIN IMMEDIATE, savepoints).
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def _plain(self, sql: str) -> None:
        """A savepoint statement straight on the sqlite3 connection: SQLAlchemy's execution
        context (most of the cost of such a statement) has nothing to add to it, as the
        connection is in AUTOCOMMIT and its transactions are ours. Runs twice per unit."""
        driver = self.connection().connection.driver_connection
        if driver is None:  # pragma: no cover - an open connection always has one
            raise RuntimeError("the writer's connection is closed")
        driver.execute(sql).close()

    async def enter(self) -> str:
        """Wait for a unit's turn; return the name of its savepoint."""
        if _HOLDER.get() is self:
            raise RuntimeError("a write unit of work cannot be opened inside another one")
        await self._turn.acquire()
        try:
            conn = self.connection()
            if not self._in_transaction:
                # May wait for another process's write lock (busy_timeout): off the event loop.
                await asyncio.to_thread(conn.exec_driver_sql, "BEGIN IMMEDIATE")
                self._in_transaction = True
            self._savepoints += 1
            name = f"unit_{self._savepoints}"
            self._plain(f"SAVEPOINT {name}")
        except BaseException:
            self._release()
            raise
        _HOLDER.set(self)
        self.units += 1
        return name

    async def commit(self, savepoint: str) -> None:
        """Keep this unit's work and wait until its batch is on disk."""
        try:
            self._plain(f"RELEASE SAVEPOINT {savepoint}")
        except BaseException:
            self._abort(savepoint)
            raise
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(done)
        self._release()
        await done

    def rollback(self, savepoint: str) -> None:
        """Undo this unit's work; the rest of the batch stays."""
        self._abort(savepoint)
        self._release()

    def _abort(self, savepoint: str) -> None:
        try:
            self._plain(f"ROLLBACK TO SAVEPOINT {savepoint}")
            self._plain(f"RELEASE SAVEPOINT {savepoint}")
        except Exception:
            # The transaction itself is gone (e.g. SQLite rolled it back): end the batch here.
            self._fail_batch(RuntimeError("the batch transaction was lost"))

    def _release(self) -> None:
        _HOLDER.set(None)
        self._turn.release()
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        # Units already waiting for a turn, or made ready by this loop step, queue before us
        # (the lock is FIFO) and so join this batch; units arriving later form the next one.
        await asyncio.sleep(0)
        async with self._turn:
            await self._commit_batch()

    async def _commit_batch(self) -> None:
        if not self._in_transaction:
            return
        waiting, self._waiting = self._waiting, []
        try:
            await asyncio.to_thread(self.connection().exec_driver_sql, "COMMIT")
        except BaseException as exc:
            self._waiting = waiting
            self._fail_batch(exc)
            return
        self._in_transaction = False
        self.batches += 1
        for future in waiting:
            if not future.done():
                future.set_result(None)

    def _fail_batch(self, exc: BaseException) -> None:
        try:
            self.connection().exec_driver_sql("ROLLBACK")
        except Exception:  # noqa: S110 - already rolled back by SQLite
            pass
        self._in_transaction = False
        waiting, self._waiting = self._waiting, []
        for future in waiting:
            if not future.done():
                future.set_exception(RuntimeError(f"the batch could not be committed: {exc}"))

    async def close(self) -> None:
        if self._flush_task is not None:
            await asyncio.gather(self._flush_task, return_exceptions=True)
        async with self._turn:
            if self._in_transaction:
                await self._commit_batch()
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        self._engine.dispose()
