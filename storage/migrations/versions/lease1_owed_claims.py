"""Owed messages carry a lease: which process is sending them, until when (issue 15).

Revision ID: lease1
Revises: desk2
Create Date: 2026-12-07

With several processes behind a round-robin proxy, the process that commits a reply also sends
it; until it has marked the row sent, another process handling the chat's next message must not
send it again. The process that owes the rows claims them in the same transaction that creates
them (`claimed_by`, `claimed_until`); the others skip rows whose lease has not run out, and take
them over (a conditional update) once it has: a process killed mid-send loses nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "lease1"
down_revision: str | Sequence[str] | None = "desk2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("owed_messages") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("owed_messages") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
