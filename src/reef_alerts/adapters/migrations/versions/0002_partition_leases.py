"""The worker registry and partition leases that let several workers share the alerts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from alembic import op

from reef_alerts.adapters.tables import WORKER_TABLES, worker_metadata

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    worker_metadata.create_all(op.get_bind(), tables=list(WORKER_TABLES), checkfirst=True)


def downgrade() -> None:
    worker_metadata.drop_all(op.get_bind(), tables=list(WORKER_TABLES), checkfirst=True)
