"""Rule options per alert and the state machine's memory (ADR 15, ADR 16), each removed with
its alert.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from reef_alerts.adapters.tables import ALERT_TABLES

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in ALERT_TABLES:
        if sa.inspect(bind).has_table(table.name):
            continue
        # Through Alembic, which can name the web app's `alerts` in a foreign key without
        # declaring it; the worker's own metadata does not hold the app's tables.
        op.create_table(
            table.name,
            *(column._copy() for column in table.columns),
            *(constraint._copy() for constraint in table.constraints if constraint.name),
            sa.ForeignKeyConstraint(
                ["alert_id"],
                ["alerts.id"],
                name=f"fk_{table.name}_alert",
                ondelete="CASCADE",
            ),
        )


def downgrade() -> None:
    for table in reversed(ALERT_TABLES):
        table.drop(op.get_bind(), checkfirst=True)
