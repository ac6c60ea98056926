"""Trend options per alert and the trend events' pending instants (issue 13, ADR 22), each
removed with its alert. A downgrade resolves the forecast and rate events still open, which no
earlier worker would ever resolve.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from datetime import UTC, datetime

from alembic import op
from sqlalchemy import inspect, update

from reef_alerts.adapters.schema import create_own_tables, detect_tables, find_generation
from reef_alerts.adapters.tables import TREND_TABLES
from reef_alerts.domain import EventKind

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_own_tables(op.get_bind(), TREND_TABLES, plain=())


def downgrade() -> None:
    bind = op.get_bind()
    if find_generation(inspect(bind)) is not None:
        tables = detect_tables(bind)
        events = tables.alert_events
        bind.execute(
            update(events)
            .where(
                tables.open_event_predicate,
                tables.event_kind.in_([EventKind.FORECAST.value, EventKind.RATE.value]),
            )
            .values(is_resolved=True, resolved_at=datetime.now(UTC))
        )
    for table in reversed(TREND_TABLES):
        table.drop(bind, checkfirst=True)
