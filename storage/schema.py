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
    text,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "CASE_EVENT_ACTIONS",
    "CASE_KINDS",
    "FOLLOW_UP_ANSWERS",
    "NOTIFICATION_DELIVERIES",
    "NOTIFICATION_PURPOSES",
    "OUTBOX_PURPOSES",
    "OUTBOX_STATUSES",
    "UTCDateTime",
    "audit_log",
    "case_events",
    "case_notifications",
    "cases",
    "conversations",
    "counters",
    "follow_ups",
    "inbound_updates",
    "metadata",
    "outbox",
    "owed_messages",
]

# "signal": registered by a coordinator, e.g. solved on the spot (003 §5; `klachtwijzer case add`).
CASE_KINDS: tuple[str, ...] = (
    "complaint", "mediation_request", "confidant_request", "report", "signal"
)
# "digest": the daily register digest to the committee mailbox (issue 4).
OUTBOX_PURPOSES: tuple[str, ...] = ("case", "withdrawal", "erasure", "digest", "reply", "invitation")
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
    # issue 4: the register keeps these anonymised facts after the dossier is destroyed.
    Column("location", String(64), nullable=True),
    Column("outcome", String(32), nullable=True),
    Column("acknowledged_at", UTCDateTime, nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
    Column("closed_at", UTCDateTime, nullable=True),
    # issue 11: the organisation (its slug in the deployment's config) the case belongs to; every
    # register query, export, report and staff view is scoped by it.
    Column("organisation", String(64), nullable=False, server_default="default", index=True),
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

CASE_EVENT_ACTIONS: tuple[str, ...] = (
    "status",  # value: the new status; note: optional remark
    "note",  # note: the remark
    "deadline_met",  # value: the deadline's name (e.g. inform_staff, 001 art. 14.4)
    "info_requested",  # 001 art. 14.3: the client was asked for missing information
    "contacted",  # a manual contact (phone, e-mail) was made; open manual contacts are resolved
    "attention_done",  # the coordinator dealt with a follow-up answer
    "follow_up",  # value: the client's answer recorded by staff (yes, partly, no)
    "message",  # note: what staff wrote to the client in the chat (`klachtwijzer case message`)
    "client_reply",  # note: the client's answer to such a message (also mailed to the mailbox)
)
NOTIFICATION_PURPOSES: tuple[str, ...] = ("status", "follow_up", "message")
NOTIFICATION_DELIVERIES: tuple[str, ...] = ("sent", "template", "manual")
FOLLOW_UP_ANSWERS: tuple[str, ...] = ("yes", "partly", "no")

case_events = Table(
    "case_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Integer, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("value", String(64), nullable=True),
    Column("note", LargeBinary, nullable=True),  # encrypted; dropped when the dossier is destroyed
    CheckConstraint(_in("action", CASE_EVENT_ACTIONS), name="action"),
)

# Messages to the client that are not a reply (status updates, the follow-up question). A row is
# pending until a running channel delivered it, or until it fell back to a manual contact by the
# way the client chose (`method`), which stays open in the digest until staff record `contacted`.
case_notifications = Table(
    "case_notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Integer, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("purpose", String(16), nullable=False),
    Column("status", String(32), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("delivery", String(16), nullable=True),
    Column("method", String(16), nullable=True),
    Column("resolved_at", UTCDateTime, nullable=True),
    # purpose "message": the case event that holds the (encrypted) text
    Column("event_id", Integer, ForeignKey("case_events.id", ondelete="CASCADE"), nullable=True),
    CheckConstraint(_in("purpose", NOTIFICATION_PURPOSES), name="purpose"),
    CheckConstraint(_in("delivery", NOTIFICATION_DELIVERIES), name="delivery"),
    Index("ix_case_notifications_pending", "delivered_at"),
)

follow_ups = Table(
    "follow_ups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Integer, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False,
           unique=True),
    Column("answer", String(8), nullable=False),
    Column("answered_at", UTCDateTime, nullable=False),
    Column("comment", LargeBinary, nullable=True),  # encrypted free text
    Column("attention_done_at", UTCDateTime, nullable=True),
    CheckConstraint(_in("answer", FOLLOW_UP_ANSWERS), name="answer"),
)


# --- issue 3: Telegram handoffs to confidants -----------------------------------------------------

from sqlalchemy import BigInteger  # noqa: E402  (kept in this section: issue 3 owns it)

HANDOFF_STATUSES: tuple[str, ...] = ("offered", "active", "ended", "expired")

# A live chat between a client and a confidant, relayed by the bot (Telegram). Plaintext columns hold
# only machine values and the confidant's numeric Telegram id (staff, needed to route their replies);
# everything about the client is in `data` (encrypted). Rows go with the conversation (erasure).
handoffs = Table(
    "handoffs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", Integer, ForeignKey("conversations.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("case_reference", String(32), nullable=True),
    Column("status", String(16), nullable=False),
    Column("preference", String(8), nullable=False),
    Column("confidant_id", BigInteger, nullable=True, index=True),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("accepted_at", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    CheckConstraint(_in("status", HANDOFF_STATUSES), name="status"),
    Index("ix_handoffs_due", "status", "expires_at"),
)

# The relayed messages of a handoff, encrypted, kept only until the client decides about the
# transcript (then copied into the dossier or deleted).
handoff_messages = Table(
    "handoff_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("handoff_id", Integer, ForeignKey("handoffs.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("sender", String(16), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("delivered", Integer, nullable=False, server_default="1"),
)


# --- issue 10: messages owed to people ------------------------------------------------------------

# What the bot owes a chat (a reply, a relayed message), written in the unit of work of the state
# change that causes it and marked sent once the channel's API accepted it; unsent rows are sent
# first after a restart, per chat in `seq` order. `body` (encrypted) is dropped once sent.
owed_messages = Table(
    "owed_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(16), nullable=False),
    Column("chat_id", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("body", LargeBinary, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    # Issue 15: the process sending the row, until when (a lease); others skip it meanwhile.
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_until", UTCDateTime, nullable=True),
    UniqueConstraint("channel", "chat_id", "seq"),
    # Only the unsent rows (few: sent rows lose their body and wait for `prune`), in the order they
    # are sent: serves both "everything owed on a channel" (start-up) and "owed to this chat".
    Index("ix_owed_messages_unsent_chat", "channel", "chat_id", "seq",
          sqlite_where=text("sent_at IS NULL"), postgresql_where=text("sent_at IS NULL")),
)


# --- issue 12: the staff desk (accounts, second factor, sessions, login throttling) --------------

STAFF_ROLES: tuple[str, ...] = ("secretary", "confidant", "coordinator", "administrator")

# One person of the organisation's staff. Secrets are stored only as hashes (Argon2id for the
# password, SHA-256 for random tokens) or encrypted (the TOTP secret, which the server must read).
staff_accounts = Table(
    "staff_accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("organisation", String(64), nullable=False, index=True),
    Column("language", String(8), nullable=False, server_default="nl"),
    Column("password_hash", String(255), nullable=True),
    Column("totp_secret", LargeBinary, nullable=True),  # encrypted
    Column("totp_last_step", Integer, nullable=True),  # the last code used (no replay)
    Column("enrolled_at", UTCDateTime, nullable=True),
    Column("disabled_at", UTCDateTime, nullable=True),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("wait_until", UTCDateTime, nullable=True),  # backoff after failed logins
    Column("locked_at", UTCDateTime, nullable=True),  # locked; an administrator lifts it
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_login_at", UTCDateTime, nullable=True),
    CheckConstraint(_in("role", STAFF_ROLES), name="role"),
)

# A one-time link to set a password and enrol the second factor (an invitation, or a reset).
staff_invites = Table(
    "staff_invites",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("staff_accounts.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)

staff_recovery_codes = Table(
    "staff_recovery_codes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("staff_accounts.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("code_hash", String(64), nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)

# Server-side sessions: the cookie holds a random key, the table its SHA-256 and the data
# (encrypted); ending a session deletes its row.
staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("account_id", Integer, ForeignKey("staff_accounts.id", ondelete="CASCADE"),
           nullable=True, index=True),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False, index=True),
)

# Failed logins per address (its SHA-256, never the address itself), for throttling.
staff_login_failures = Table(
    "staff_login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("address_hash", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_staff_login_failures_address", "address_hash", "at"),
)
