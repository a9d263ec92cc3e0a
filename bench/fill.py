"""Fill a bot's database with many stored conversations, fast and honestly.

The app migrates the database and stores one real conversation in mid-flow through its service (a
client who chose a language, which shows the welcome and the first question). That row, with its
encrypted blob, is then copied with sqlite3 `executemany` under other chat ids, together with one
inbound update id per copy. The copies all carry the same encrypted blob: they are filler that the
bot never reads (the bench measures fresh chats), but they fill the table, its unique index and the
inbound-update index like real conversations of the same size do.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.engine import make_url

from bench.script import event_of

FILL_CHAT_BASE = 100_000_000
TEMPLATE_CHAT = "99999999"


def sqlite_path(db_url: str) -> Path:
    """The file of a SQLite database URL."""
    url = make_url(db_url)
    if not url.drivername.startswith("sqlite") or not url.database:
        raise ValueError("the bench fills SQLite databases only")
    return Path(url.database)


async def prepare(data_dir: Path, secret: SecretStr) -> Path:
    """Migrate with the app and store one real mid-flow conversation; the database file."""
    from bot.root.app import build_app
    from bot.root.settings import Settings

    settings = Settings(data_dir=data_dir, mail_from="bench@klachtwijzer.test", database_url=None,
                        secret_key=secret)
    app = await build_app(settings)
    try:
        for n, (kind, value) in enumerate((("command", "/start"), ("press", "lang_nl"))):
            await app.service.handle("telegram", TEMPLATE_CHAT, event_of(kind, value, "nl"),
                                     update_id=f"template-{n}")
    finally:
        await app.close()
    return sqlite_path(settings.db_url)


def _columns(connection: sqlite3.Connection, table: str) -> list[tuple[str, bool]]:
    """(name, is the integer primary key) of each column."""
    rows = connection.execute(f"PRAGMA table_info({table})").fetchall()
    single_pk = sum(1 for r in rows if r[5]) == 1
    return [(r[1], bool(single_pk and r[5] and str(r[2]).upper() == "INTEGER")) for r in rows]


def _copy(connection: sqlite3.Connection, table: str, where: str, vary: str, values: list[str],
          args: tuple[str, ...]) -> int:
    """Insert copies of one row of `table`, with `vary` set to each of `values`."""
    columns = [name for name, rowid in _columns(connection, table) if not rowid]
    if vary not in columns:
        raise ValueError(f"{table} has no column {vary}")
    names = ", ".join(f'"{c}"' for c in columns)
    template = connection.execute(
        f"SELECT {names} FROM {table} WHERE {where} LIMIT 1", args).fetchone()  # noqa: S608
    if template is None:
        raise ValueError(f"no template row in {table}")
    index = columns.index(vary)
    marks = ", ".join("?" for _ in columns)
    rows = (tuple(v if i != index else value for i, v in enumerate(template)) for value in values)
    cursor = connection.executemany(
        f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)  # noqa: S608
    return cursor.rowcount


def fill(path: Path, conversations: int, batch: int = 100_000) -> tuple[int, float]:
    """Add filler conversations until the table holds `conversations`; (rows now, seconds)."""
    started = time.perf_counter()
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = WAL").fetchall()
        connection.execute("PRAGMA synchronous = FULL")
        have = connection.execute("SELECT count(*) FROM conversations").fetchone()[0]
        done = 0
        while have + done < conversations:
            n = min(batch, conversations - have - done)
            chats = [str(FILL_CHAT_BASE + done + i) for i in range(n)]
            connection.execute("BEGIN IMMEDIATE")
            _copy(connection, "conversations", "chat_id = ?", "chat_id", chats, (TEMPLATE_CHAT,))
            _copy(connection, "inbound_updates", "update_id = ?", "update_id",
                  [f"fill-{c}" for c in chats], ("template-0",))
            connection.execute("COMMIT")
            done += n
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        total = int(connection.execute("SELECT count(*) FROM conversations").fetchone()[0])
    finally:
        connection.close()
    return total, time.perf_counter() - started
