"""Several organisations in one deployment: each case names its organisation (issue 11).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

Existing cases belong to the single organisation of the deployment so far, whose slug is
"default" unless its config names another (`slug = "..."`); `klachtwijzer check-config` says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("organisation", sa.String(64), nullable=False,
                                   server_default="default"))
        batch.create_index("ix_cases_organisation", ["organisation"])


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_organisation")
        batch.drop_column("organisation")
