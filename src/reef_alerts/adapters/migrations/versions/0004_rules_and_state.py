"""Rule options per alert and the state machine's memory (ADR 15, ADR 16), each removed with
its alert.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from alembic import op

from reef_alerts.adapters.schema import create_own_tables
from reef_alerts.adapters.tables import ALERT_TABLES

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_own_tables(op.get_bind(), ALERT_TABLES, plain=())


def downgrade() -> None:
    for table in reversed(ALERT_TABLES):
        table.drop(op.get_bind(), checkfirst=True)
