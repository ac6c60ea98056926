"""The four shared tables where absent, and the one-open-event-per-alert index.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from alembic import op

from reef_alerts.adapters.schema import (
    DuplicateOpenEventsError,
    find_duplicate_open_events,
    has_open_event_index,
)
from reef_alerts.adapters.tables import SHARED_TABLES, metadata, open_event_index

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    # The web app owns these tables: create them only where they are absent (standalone and
    # embedded use), never alter an existing one.
    metadata.create_all(bind, tables=list(SHARED_TABLES), checkfirst=True)
    if not has_open_event_index(bind):
        duplicates = find_duplicate_open_events(bind)
        if duplicates:
            raise DuplicateOpenEventsError(duplicates)
        open_event_index.create(bind)


def downgrade() -> None:
    # The shared tables stay: they hold the web app's data.
    open_event_index.drop(op.get_bind(), checkfirst=True)
