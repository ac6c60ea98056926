"""The worker's record of why an alert cannot be judged, and since when (ADR 13).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from alembic import op

from reef_alerts.adapters.tables import alert_status

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    alert_status.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    alert_status.drop(op.get_bind(), checkfirst=True)
