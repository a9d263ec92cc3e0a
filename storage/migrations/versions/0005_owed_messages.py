"""Messages owed to people: stored with the state change that causes them, then sent (issue 10).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

A reply or a relayed message is written in the same unit of work as the state it reports, and
marked sent once the channel's API accepted it; what is unsent after a crash is sent at restart.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "owed_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_owed_messages"),
        sa.UniqueConstraint("channel", "chat_id", "seq",
                            name="uq_owed_messages_channel_chat_id_seq"),
    )
    op.create_index("ix_owed_messages_unsent", "owed_messages", ["sent_at", "channel"])


def downgrade() -> None:
    op.drop_index("ix_owed_messages_unsent", table_name="owed_messages")
    op.drop_table("owed_messages")
