"""Invitations to the staff desk go by mail through the outbox (issue 12): outbox purpose
'invitation'.

Revision ID: desk2
Revises: web1
Create Date: 2026-12-07

SQLite cannot change a CHECK constraint in place, so the table is rebuilt in batch mode (Alembic
copies the rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "desk2"
down_revision: str | Sequence[str] | None = "web1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_OUTBOX = "purpose IN ('case', 'withdrawal', 'erasure', 'digest', 'reply')"
NEW_OUTBOX = "purpose IN ('case', 'withdrawal', 'erasure', 'digest', 'reply', 'invitation')"


def upgrade() -> None:
    with op.batch_alter_table("outbox", recreate="auto") as batch:
        batch.drop_constraint("ck_outbox_purpose", type_="check")
        batch.create_check_constraint("ck_outbox_purpose", sa.text(NEW_OUTBOX))


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE purpose = 'invitation'")
    with op.batch_alter_table("outbox", recreate="auto") as batch:
        batch.drop_constraint("ck_outbox_purpose", type_="check")
        batch.create_check_constraint("ck_outbox_purpose", sa.text(OLD_OUTBOX))
