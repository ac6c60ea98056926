"""The four shared tables where absent, and the one-open-event-per-alert index.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from alembic import op

from reef_alerts.adapters.schema import create_open_event_index, tables_to_create

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    # The web app owns these tables: create them only where they are absent (standalone and
    # embedded use), never alter an existing one. A database made from nothing gets the
    # current generation, with the app's other tables too.
    tables = tables_to_create(bind)
    created_afresh = not any(bind.dialect.has_table(bind, t.name) for t in tables.shared)
    to_create = [*tables.shared, *(tables.app_only if created_afresh else ())]
    tables.metadata.create_all(bind, tables=to_create, checkfirst=True)
    create_open_event_index(bind, tables)


def downgrade() -> None:
    # The shared tables stay: they hold the web app's data.
    tables_to_create(op.get_bind()).open_event_index.drop(op.get_bind(), checkfirst=True)
