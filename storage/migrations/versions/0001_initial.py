"""Initial schema: conversations, cases, outbox, audit log, inbound updates, counters.

Revision ID: 0001
Revises:
Create Date: 2025-11-22

Written out explicitly (no metadata.create_all) so that it stays fixed while `storage.schema`
evolves. Constraint and index names follow `storage.schema.NAMING_CONVENTION`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
        sa.UniqueConstraint("channel", "chat_id", name="uq_conversations_channel_chat_id"),
    )

    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("reference", sa.String(32), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("schema", sa.String(8), nullable=False),
        sa.Column("category", sa.String(32), nullable=True),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("status", sa.String(32), nullable=False, server_default="received"),
        sa.Column("mailbox", sa.String(254), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _timestamp("withdrawn_at", nullable=True),
        _timestamp("erased_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
        sa.UniqueConstraint("reference", name="uq_cases_reference"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_cases_conversation_id_conversations",
            ondelete="SET NULL",
        ),
        sa.CheckConstraint(
            "kind IN ('complaint', 'mediation_request', 'confidant_request', 'report')",
            name="ck_cases_kind",
        ),
    )
    op.create_index("ix_cases_conversation_id", "cases", ["conversation_id"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_reference", sa.String(32), nullable=True),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        _timestamp("next_attempt_at"),
        sa.Column("last_error", sa.String(500), nullable=True),
        _timestamp("created_at"),
        _timestamp("sent_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("message_id", name="uq_outbox_message_id"),
        sa.CheckConstraint("purpose IN ('case', 'withdrawal', 'erasure')", name="ck_outbox_purpose"),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed', 'cancelled')", name="ck_outbox_status"),
    )
    op.create_index("ix_outbox_case_reference", "outbox", ["case_reference"])
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _timestamp("at"),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("reference", sa.String(32), nullable=True),
        sa.Column("detail", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_reference", "audit_log", ["reference"])

    op.create_table(
        "inbound_updates",
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("update_id", sa.String(128), nullable=False),
        _timestamp("received_at"),
        sa.PrimaryKeyConstraint("channel", "update_id", name="pk_inbound_updates"),
    )
    op.create_index("ix_inbound_updates_received_at", "inbound_updates", ["received_at"])

    op.create_table(
        "counters",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_counters"),
    )


def downgrade() -> None:
    op.drop_table("counters")
    op.drop_index("ix_inbound_updates_received_at", table_name="inbound_updates")
    op.drop_table("inbound_updates")
    op.drop_index("ix_audit_log_reference", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_index("ix_outbox_case_reference", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_cases_conversation_id", table_name="cases")
    op.drop_table("cases")
    op.drop_table("conversations")
