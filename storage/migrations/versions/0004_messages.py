"""Messages between staff and a client who chose to be contacted in the chat (001 art. 14.3).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

Staff write to the client (`klachtwijzer case message`), the client answers in the chat and the
answer is mailed to the case's mailbox. The texts are case events (encrypted notes); a message
notification points at its event. SQLite cannot change a CHECK constraint in place, so the three
tables are rebuilt in batch mode (Alembic copies the rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_ACTIONS = ("action IN ('status', 'note', 'deadline_met', 'info_requested', 'contacted', "
               "'attention_done', 'follow_up')")
NEW_ACTIONS = ("action IN ('status', 'note', 'deadline_met', 'info_requested', 'contacted', "
               "'attention_done', 'follow_up', 'message', 'client_reply')")
OLD_NOTIFICATIONS = "purpose IN ('status', 'follow_up')"
NEW_NOTIFICATIONS = "purpose IN ('status', 'follow_up', 'message')"
OLD_OUTBOX = "purpose IN ('case', 'withdrawal', 'erasure', 'digest')"
NEW_OUTBOX = "purpose IN ('case', 'withdrawal', 'erasure', 'digest', 'reply')"


def upgrade() -> None:
    with op.batch_alter_table("case_events", recreate="auto") as batch:
        batch.drop_constraint("ck_case_events_action", type_="check")
        batch.create_check_constraint("ck_case_events_action", sa.text(NEW_ACTIONS))
    with op.batch_alter_table("case_notifications", recreate="auto") as batch:
        batch.add_column(sa.Column("event_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_case_notifications_event_id_case_events", "case_events",
                                 ["event_id"], ["id"], ondelete="CASCADE")
        batch.drop_constraint("ck_case_notifications_purpose", type_="check")
        batch.create_check_constraint("ck_case_notifications_purpose", sa.text(NEW_NOTIFICATIONS))
    with op.batch_alter_table("outbox", recreate="auto") as batch:
        batch.drop_constraint("ck_outbox_purpose", type_="check")
        batch.create_check_constraint("ck_outbox_purpose", sa.text(NEW_OUTBOX))


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE purpose = 'reply'")
    with op.batch_alter_table("outbox", recreate="auto") as batch:
        batch.drop_constraint("ck_outbox_purpose", type_="check")
        batch.create_check_constraint("ck_outbox_purpose", sa.text(OLD_OUTBOX))
    op.execute("DELETE FROM case_notifications WHERE purpose = 'message'")
    with op.batch_alter_table("case_notifications", recreate="auto") as batch:
        batch.drop_constraint("ck_case_notifications_purpose", type_="check")
        batch.create_check_constraint("ck_case_notifications_purpose", sa.text(OLD_NOTIFICATIONS))
        batch.drop_constraint("fk_case_notifications_event_id_case_events", type_="foreignkey")
        batch.drop_column("event_id")
    op.execute("DELETE FROM case_events WHERE action IN ('message', 'client_reply')")
    with op.batch_alter_table("case_events", recreate="auto") as batch:
        batch.drop_constraint("ck_case_events_action", type_="check")
        batch.create_check_constraint("ck_case_events_action", sa.text(OLD_ACTIONS))
