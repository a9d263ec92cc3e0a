"""Database tables (SQLAlchemy Core), portable between SQLite and PostgreSQL.

Columns holding personal data are `LargeBinary` Fernet tokens (see `storage.crypto`). Plaintext
columns hold only machine values (state names, statuses, references, timestamps) and the channel's
chat id, which is needed to find a conversation.

The Alembic migrations in `storage/migrations/versions` must create exactly these tables;
`tests/storage/test_migrations.py` checks that with Alembic's `compare_metadata`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "CASE_KINDS",
    "OUTBOX_PURPOSES",
    "OUTBOX_STATUSES",
    "UTCDateTime",
    "audit_log",
    "cases",
    "conversations",
    "counters",
    "inbound_updates",
    "metadata",
    "outbox",
]

CASE_KINDS: tuple[str, ...] = ("complaint", "mediation_request", "confidant_request", "report")
OUTBOX_PURPOSES: tuple[str, ...] = ("case", "withdrawal", "erasure")
OUTBOX_STATUSES: tuple[str, ...] = ("pending", "sent", "failed", "cancelled")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in and out, on every backend.

    Naive datetimes are refused on the way in. SQLite has no time zone type, so values are stored
    as naive UTC there and UTC is attached again on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given to the database; use an aware UTC datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - defensive
            raise TypeError(f"unexpected {type(value).__name__} from a datetime column")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def copy(self, **kw: Any) -> UTCDateTime:
        return UTCDateTime()


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


conversations = Table(
    "conversations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(16), nullable=False),
    Column("chat_id", String(64), nullable=False),
    Column("state", String(64), nullable=False),
    Column("language", String(8), nullable=True),
    Column("data", LargeBinary, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("channel", "chat_id"),
)

cases = Table(
    "cases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("reference", String(32), nullable=False, unique=True),
    Column(
        "conversation_id",
        Integer,
        ForeignKey("conversations.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    Column("channel", String(16), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("schema", String(8), nullable=False),
    Column("category", String(32), nullable=True),
    Column("language", String(8), nullable=False),
    Column("status", String(32), nullable=False, server_default="received"),
    Column("mailbox", String(254), nullable=False),
    Column("payload", LargeBinary, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("withdrawn_at", UTCDateTime, nullable=True),
    Column("erased_at", UTCDateTime, nullable=True),
    CheckConstraint(_in("kind", CASE_KINDS), name="kind"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_reference", String(32), nullable=True, index=True),
    Column("purpose", String(32), nullable=False),
    Column("recipient", String(254), nullable=False),
    Column("message_id", String(255), nullable=False, unique=True),
    Column("raw", LargeBinary, nullable=True),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", String(500), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    CheckConstraint(_in("purpose", OUTBOX_PURPOSES), name="purpose"),
    CheckConstraint(_in("status", OUTBOX_STATUSES), name="status"),
    Index("ix_outbox_due", "status", "next_attempt_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("reference", String(32), nullable=True, index=True),
    Column("detail", String(500), nullable=True),
)

inbound_updates = Table(
    "inbound_updates",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("update_id", String(128), primary_key=True),
    Column("received_at", UTCDateTime, nullable=False, index=True),
)

counters = Table(
    "counters",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", Integer, nullable=False),
)


# --- issue 4: the register (case history, deadlines, follow-up) -----------------------------------


# --- issue 3: Telegram handoffs to confidants -----------------------------------------------------
