"""The web chat's devices (token hashes) and return codes (Argon2id hashes), issue 13.

Revision ID: web1
Revises: desk1
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "web1"
down_revision: str | Sequence[str] | None = "desk1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_devices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_web_devices"),
        sa.UniqueConstraint("token_hash", name="uq_web_devices_token_hash"),
    )
    op.create_index("ix_web_devices_chat_id", "web_devices", ["chat_id"])
    op.create_table(
        "web_codes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("locator", sa.String(8), nullable=False),
        sa.Column("code_hash", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_web_codes"),
        sa.UniqueConstraint("chat_id", name="uq_web_codes_chat_id"),
        sa.UniqueConstraint("locator", name="uq_web_codes_locator"),
    )


def downgrade() -> None:
    op.drop_table("web_codes")
    op.drop_index("ix_web_devices_chat_id", table_name="web_devices")
    op.drop_table("web_devices")
