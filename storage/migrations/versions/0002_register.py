"""The register (issue 4): case history, notifications, follow-up answers, digest mails, signals.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-10

Written out explicitly (no metadata.create_all) so that it stays fixed while `storage.schema`
evolves. Names follow `storage.schema.NAMING_CONVENTION`. SQLite cannot change a CHECK constraint
in place, so `cases` and `outbox` are rebuilt in batch mode (Alembic copies the rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KINDS = "kind IN ('complaint', 'mediation_request', 'confidant_request', 'report')"
NEW_KINDS = "kind IN ('complaint', 'mediation_request', 'confidant_request', 'report', 'signal')"
OLD_PURPOSES = "purpose IN ('case', 'withdrawal', 'erasure')"
NEW_PURPOSES = "purpose IN ('case', 'withdrawal', 'erasure', 'digest')"


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("cases", recreate="auto") as batch:
        batch.add_column(sa.Column("location", sa.String(64), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(32), nullable=True))
        batch.add_column(_timestamp("acknowledged_at", nullable=True))
        batch.add_column(_timestamp("decided_at", nullable=True))
        batch.add_column(_timestamp("closed_at", nullable=True))
        batch.drop_constraint("ck_cases_kind", type_="check")
        batch.create_check_constraint("ck_cases_kind", sa.text(NEW_KINDS))

    with op.batch_alter_table("outbox", recreate="auto") as batch:
        batch.drop_constraint("ck_outbox_purpose", type_="check")
        batch.create_check_constraint("ck_outbox_purpose", sa.text(NEW_PURPOSES))

    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer(), nullable=False),
        _timestamp("at"),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("value", sa.String(64), nullable=True),
        sa.Column("note", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_case_events"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_case_events_case_id_cases", ondelete="CASCADE"
        ),
        sa.CheckConstraint(
            "action IN ('status', 'note', 'deadline_met', 'info_requested', 'contacted', "
            "'attention_done', 'follow_up')",
            name="ck_case_events_action",
        ),
    )
    op.create_index("ix_case_events_case_id", "case_events", ["case_id"])

    op.create_table(
        "case_notifications",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=True),
        _timestamp("created_at"),
        _timestamp("delivered_at", nullable=True),
        sa.Column("delivery", sa.String(16), nullable=True),
        sa.Column("method", sa.String(16), nullable=True),
        _timestamp("resolved_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_case_notifications"),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name="fk_case_notifications_case_id_cases",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("purpose IN ('status', 'follow_up')", name="ck_case_notifications_purpose"),
        sa.CheckConstraint(
            "delivery IN ('sent', 'template', 'manual')", name="ck_case_notifications_delivery"
        ),
    )
    op.create_index("ix_case_notifications_case_id", "case_notifications", ["case_id"])
    op.create_index("ix_case_notifications_pending", "case_notifications", ["delivered_at"])

    op.create_table(
        "follow_ups",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("answer", sa.String(8), nullable=False),
        _timestamp("answered_at"),
        sa.Column("comment", sa.LargeBinary(), nullable=True),
        _timestamp("attention_done_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_follow_ups"),
        sa.UniqueConstraint("case_id", name="uq_follow_ups_case_id"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_follow_ups_case_id_cases", ondelete="CASCADE"
        ),
        sa.CheckConstraint("answer IN ('yes', 'partly', 'no')", name="ck_follow_ups_answer"),
    )


def downgrade() -> None:
    op.drop_table("follow_ups")
    op.drop_index("ix_case_notifications_pending", table_name="case_notifications")
    op.drop_index("ix_case_notifications_case_id", table_name="case_notifications")
    op.drop_table("case_notifications")
    op.drop_index("ix_case_events_case_id", table_name="case_events")
    op.drop_table("case_events")
    op.execute("DELETE FROM outbox WHERE purpose = 'digest'")
    with op.batch_alter_table("outbox", recreate="auto") as batch:
        batch.drop_constraint("ck_outbox_purpose", type_="check")
        batch.create_check_constraint("ck_outbox_purpose", sa.text(OLD_PURPOSES))
    op.execute("DELETE FROM cases WHERE kind = 'signal'")
    with op.batch_alter_table("cases", recreate="auto") as batch:
        batch.drop_constraint("ck_cases_kind", type_="check")
        batch.create_check_constraint("ck_cases_kind", sa.text(OLD_KINDS))
        batch.drop_column("closed_at")
        batch.drop_column("decided_at")
        batch.drop_column("acknowledged_at")
        batch.drop_column("outcome")
        batch.drop_column("location")
