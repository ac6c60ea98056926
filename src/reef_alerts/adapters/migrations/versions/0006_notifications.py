"""Notifications (issue 15, ADR 24): channels, the outbox, messages, acknowledgements and
reminders, silences, and per-alert notification options (removed with their alert).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from alembic import op

from reef_alerts.adapters.notify_tables import NOTIFY_KEYED, NOTIFY_TABLES
from reef_alerts.adapters.schema import create_own_tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_own_tables(op.get_bind(), NOTIFY_KEYED, plain=NOTIFY_TABLES)


def downgrade() -> None:
    for table in reversed((*NOTIFY_TABLES, *NOTIFY_KEYED)):
        table.drop(op.get_bind(), checkfirst=True)
