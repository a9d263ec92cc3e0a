"""Telegram handoffs to confidants: the live relay and its (encrypted) messages.

Revision ID: 0003
Revises: 0002
Create Date: 2026-01-12

Written out explicitly (no metadata.create_all); names follow `storage.schema.NAMING_CONVENTION`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "handoffs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("case_reference", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("preference", sa.String(8), nullable=False),
        sa.Column("confidant_id", sa.BigInteger(), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        _timestamp("created_at"),
        _timestamp("expires_at"),
        _timestamp("accepted_at", nullable=True),
        _timestamp("ended_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_handoffs"),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"],
            name="fk_handoffs_conversation_id_conversations", ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "status IN ('offered', 'active', 'ended', 'expired')", name="ck_handoffs_status"
        ),
    )
    op.create_index("ix_handoffs_conversation_id", "handoffs", ["conversation_id"])
    op.create_index("ix_handoffs_confidant_id", "handoffs", ["confidant_id"])
    op.create_index("ix_handoffs_due", "handoffs", ["status", "expires_at"])

    op.create_table(
        "handoff_messages",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("handoff_id", sa.Integer(), nullable=False),
        _timestamp("at"),
        sa.Column("sender", sa.String(16), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False, server_default="1"),
        sa.PrimaryKeyConstraint("id", name="pk_handoff_messages"),
        sa.ForeignKeyConstraint(
            ["handoff_id"], ["handoffs.id"],
            name="fk_handoff_messages_handoff_id_handoffs", ondelete="CASCADE",
        ),
    )
    op.create_index("ix_handoff_messages_handoff_id", "handoff_messages", ["handoff_id"])


def downgrade() -> None:
    op.drop_index("ix_handoff_messages_handoff_id", table_name="handoff_messages")
    op.drop_table("handoff_messages")
    op.drop_index("ix_handoffs_due", table_name="handoffs")
    op.drop_index("ix_handoffs_confidant_id", table_name="handoffs")
    op.drop_index("ix_handoffs_conversation_id", table_name="handoffs")
    op.drop_table("handoffs")
