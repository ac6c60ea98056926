"""SQLAlchemy Core tables for the four tables the worker shares with the web app.

They match `legacy_schema.sql` column for column and index for index, so `metadata.create_all`
builds the same database the web app declares. The `metadata` columns are keyed `metadata_`
because `metadata` is SQLAlchemy's own attribute name on declarative classes and Table.c is
clearer without the clash. The one object the worker adds is `open_event_index`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
    func,
    true,
)
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION


class UTCDateTime(TypeDecorator[datetime]):
    """TIMESTAMP WITH TIME ZONE that always gives and takes UTC-aware datetimes.

    SQLite stores no offset and hands back naive values: those are UTC by convention.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given where UTC is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is UTC:  # PostgreSQL sessions are set to UTC
            return value  # type: ignore[no-any-return]
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


# DOUBLE PRECISION on PostgreSQL, as the web app declares it; plain FLOAT elsewhere.
Double = Float().with_variant(DOUBLE_PRECISION(), "postgresql")

metadata = MetaData()

devices = Table(
    "devices",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False),
    Column("device_type", String, nullable=False),
    Column("address", String, nullable=False),
    Column("poll_enabled", Boolean, server_default=true()),
    Column("poll_interval", Integer, server_default="60"),
    Column("unit", String),
    Column("min_value", Double),
    Column("max_value", Double),
    Column("config", JSON),
    Column("is_active", Boolean, server_default=true()),
    Column("created_at", UTCDateTime, server_default=func.now()),
    Column("updated_at", UTCDateTime),
    Column("last_polled", UTCDateTime),
    Column("last_error", Text),
    Index("ix_devices_poll_enabled_active", "poll_enabled", "is_active"),
)

history = Table(
    "history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", Integer, ForeignKey("devices.id"), nullable=False),
    Column("timestamp", UTCDateTime, server_default=func.now()),
    Column("value", Double),
    Column("json_value", JSON),
    Column("metadata", JSON, key="metadata_"),
    Index("ix_history_device_id", "device_id"),
    Index("ix_history_timestamp", "timestamp"),
    Index("ix_history_device_timestamp", "device_id", "timestamp"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", Integer, ForeignKey("devices.id"), nullable=False),
    Column("metric", String, nullable=False),
    Column("operator", String, nullable=False),
    Column("threshold_value", Double, nullable=False),
    Column("is_enabled", Boolean, server_default=true()),
    Column("trend_enabled", Boolean, server_default=false()),
    Column("created_at", UTCDateTime, server_default=func.now()),
    Column("updated_at", UTCDateTime),
    Index("ix_alerts_device_enabled", "device_id", "is_enabled"),
)

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("alert_id", Integer, ForeignKey("alerts.id"), nullable=False),
    Column("device_id", Integer, ForeignKey("devices.id"), nullable=False),
    Column("triggered_at", UTCDateTime, server_default=func.now()),
    Column("current_value", Float),
    Column("threshold_value", Float, nullable=False),
    Column("operator", String(10), nullable=False),
    Column("metric", String(50), nullable=False),
    Column("is_resolved", Boolean, server_default=false()),
    Column("resolved_at", UTCDateTime),
    Column("resolution_value", Float),
    Column("metadata", JSON, key="metadata_"),
    Index("ix_alert_events_alert_triggered", "alert_id", "triggered_at"),
    Index("ix_alert_events_resolved", "is_resolved"),
)

SHARED_TABLES = (devices, history, alerts, alert_events)

# One expression object serves the index and every ON CONFLICT target: PostgreSQL matches the
# target's predicate to the index's by its text, so both must be rendered from the same thing.
OPEN_EVENT_PREDICATE = ~alert_events.c.is_resolved

OPEN_EVENT_INDEX = "uq_alert_events_one_open_per_alert"

open_event_index = Index(
    OPEN_EVENT_INDEX,
    alert_events.c.alert_id,
    unique=True,
    postgresql_where=OPEN_EVENT_PREDICATE,
    sqlite_where=OPEN_EVENT_PREDICATE,
)


# The worker's own tables, created by `db upgrade` (migration 0002): how several workers share the
# alerts without a broker. The web app never reads them.

workers = Table(
    "reef_alerts_workers",
    metadata,
    Column("worker_id", String(200), primary_key=True),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("partition_count", Integer, nullable=False),
    Column("partitions", JSON, nullable=False),
    Column("lease_seconds", Float, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
    Column("last_cycle_at", UTCDateTime),
    Column("last_cycle_seconds", Float),
    Column("last_cycle_alerts", Integer),
    Column("last_cycle_ok", Boolean),
)

partition_leases = Table(
    "reef_alerts_partition_leases",
    metadata,
    Column("partition_count", Integer, primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("owner", String(200)),
    Column("expires_at", UTCDateTime),
)

WORKER_TABLES = (workers, partition_leases)
