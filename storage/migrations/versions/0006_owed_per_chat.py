"""Owed messages found per chat: a partial index on the unsent rows (issue 10).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

WhatsApp shows the messages kept for a client (outside the 24-hour window) when they write again:
that reads the unsent rows of one chat on every inbound message. The index holds only unsent rows
(channel, chat_id, seq), so it stays small and serves the start-up scan of a channel as well; it
replaces the (sent_at, channel) index of 0005.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSENT = sa.text("sent_at IS NULL")


def upgrade() -> None:
    op.create_index("ix_owed_messages_unsent_chat", "owed_messages", ["channel", "chat_id", "seq"],
                    sqlite_where=UNSENT, postgresql_where=UNSENT)
    op.drop_index("ix_owed_messages_unsent", table_name="owed_messages")


def downgrade() -> None:
    op.create_index("ix_owed_messages_unsent", "owed_messages", ["sent_at", "channel"])
    op.drop_index("ix_owed_messages_unsent_chat", table_name="owed_messages")
