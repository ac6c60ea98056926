"""SQLAlchemy Core tables: the ones the worker shares with the web app, in both generations of
its schema, and the worker's own.

The web app's schema has two generations (see ADR 0011). `LEGACY` matches `legacy_schema.sql`,
the specification's; `CURRENT` matches `current_schema.sql`, the web app's today, in which the
two `metadata` columns are `history.history_metadata` and `alert_events.alert_metadata`. Both
declare those columns under the key `metadata_`, so code that reads or writes them through
`Table.c` is the same for either generation. `metadata.create_all` of a generation builds the
database its DDL declares.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import attrs
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    ColumnElement,
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
    text,
    true,
)
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION
from sqlalchemy.ext.compiler import compiles


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


class Generation(enum.Enum):
    """Which generation of the web app's schema a database has."""

    LEGACY = "legacy"
    CURRENT = "current"

    @property
    def metadata_columns(self) -> tuple[str, str]:
        """The names of `history`'s and `alert_events`' JSON metadata columns."""
        if self is Generation.LEGACY:
            return ("metadata", "metadata")
        return ("history_metadata", "alert_metadata")

    def describe(self) -> str:
        """The generation and the column names that tell it, for a report."""
        history, events = self.metadata_columns
        origin = "the specification's" if self is Generation.LEGACY else "the web app's today"
        return f"{self.value} ({origin}: history.{history}, alert_events.{events})"


OPEN_EVENT_INDEX = "uq_alert_events_one_open_per_kind"
"""At most one unresolved event of each kind per alert (ADR 4, ADR 15)."""
OLD_OPEN_EVENT_INDEX = "uq_alert_events_one_open_per_alert"
"""Its predecessor, before events had kinds: at most one unresolved event per alert."""
HISTORY_INDEX = "ix_reef_alerts_history_device_timestamp"
"""The worker's own index for the newest-reading read, made where no index serves (ADR 0011)."""


class EventKindOf(ColumnElement[str]):
    """An event's kind: its metadata's `kind`, "threshold" where it has none (an event the web
    app wrote) or the metadata is not JSON. One expression, so that the one-open-event index and
    the statements that must match it (ON CONFLICT targets) are rendered from the same text."""

    inherit_cache = True
    type = String()

    def __init__(self, metadata_column: ColumnElement[Any]) -> None:
        self.metadata_column = metadata_column


@compiles(EventKindOf, "postgresql")
def _pg_event_kind(element: EventKindOf, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.metadata_column, **kw)
    return f"COALESCE(({column} ->> 'kind'), 'threshold')"


@compiles(EventKindOf)
def _sqlite_event_kind(element: EventKindOf, compiler: Any, **kw: Any) -> str:
    # SQLite lets a JSON column hold text that is not JSON, on which json_extract raises.
    column = compiler.process(element.metadata_column, **kw)
    return (
        f"COALESCE(CASE WHEN json_valid({column}) THEN json_extract({column}, '$.kind') END, "
        "'threshold')"
    )


@attrs.frozen
class SharedTables:
    """The tables the worker shares with the web app, as one generation declares them."""

    generation: Generation
    metadata: MetaData
    devices: Table
    history: Table
    alerts: Table
    alert_events: Table
    app_only: tuple[Table, ...]
    """Tables of the web app's the worker never reads; made only in a database made afresh."""
    open_event_predicate: ColumnElement[bool]
    """`NOT is_resolved`, as one expression object: PostgreSQL matches an ON CONFLICT target's
    predicate to the partial index's by its text, so both are rendered from this (ADR 0004)."""
    event_kind: EventKindOf
    """An alert_events row's kind."""
    open_event_index: Index
    """The worker's: at most one unresolved event of each kind per alert (ADR 0004)."""
    history_index: Index
    """The worker's: history (device_id, timestamp), where no index of the app's serves."""

    @property
    def shared(self) -> tuple[Table, Table, Table, Table]:
        """The four tables the worker reads or writes."""
        return (self.devices, self.history, self.alerts, self.alert_events)


def _declare(generation: Generation) -> SharedTables:
    legacy = generation is Generation.LEGACY
    history_metadata, event_metadata = generation.metadata_columns
    metadata = MetaData()
    app_only: tuple[Table, ...] = ()
    if not legacy:
        app_only = (_users(metadata),)

    devices = Table(
        "devices",
        metadata,
        Column("id", Integer, primary_key=True),
        *_device_columns(legacy),
        *(
            [Index("ix_devices_poll_enabled_active", "poll_enabled", "is_active")]
            if legacy
            else [
                Index(f"ix_devices_{name}", name)
                for name in ("role", "parent_device_id", "name", "device_type", "is_active")
            ]
            + [Index("ix_devices_poll_enabled", "poll_enabled")]
        ),
    )
    history = Table(
        "history",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("device_id", Integer, ForeignKey("devices.id"), nullable=False),
        Column("timestamp", UTCDateTime, server_default=func.now()),
        Column("value", Double),
        Column("json_value", JSON),
        Column(history_metadata, JSON, key="metadata_"),
        Index("ix_history_device_id", "device_id"),
        Index("ix_history_timestamp", "timestamp"),
        *([Index("ix_history_device_timestamp", "device_id", "timestamp")] if legacy else []),
    )
    if not legacy:
        app_only += (_hourly_aggregates(metadata),)
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
        *(
            [Index("ix_alerts_device_enabled", "device_id", "is_enabled")]
            if legacy
            else [Index(f"ix_alerts_{c}", c) for c in ("device_id", "metric", "is_enabled")]
        ),
    )
    # The legacy DDL says FLOAT, VARCHAR(10) and VARCHAR(50); the current one DOUBLE PRECISION
    # and VARCHAR. FLOAT is DOUBLE PRECISION on PostgreSQL either way.
    number = Float if legacy else Double
    alert_events = Table(
        "alert_events",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("alert_id", Integer, ForeignKey("alerts.id"), nullable=False),
        Column("device_id", Integer, ForeignKey("devices.id"), nullable=False),
        Column("triggered_at", UTCDateTime, server_default=func.now()),
        Column("current_value", number),
        Column("threshold_value", number, nullable=False),
        Column("operator", String(10) if legacy else String, nullable=False),
        Column("metric", String(50) if legacy else String, nullable=False),
        Column("is_resolved", Boolean, server_default=false()),
        Column("resolved_at", UTCDateTime),
        Column("resolution_value", number),
        Column(event_metadata, JSON, key="metadata_"),
        *(
            [
                Index("ix_alert_events_alert_triggered", "alert_id", "triggered_at"),
                Index("ix_alert_events_resolved", "is_resolved"),
            ]
            if legacy
            else [
                Index(f"ix_alert_events_{name}", name)
                for name in ("alert_id", "device_id", "triggered_at", "is_resolved")
            ]
        ),
    )
    predicate = ~alert_events.c.is_resolved
    kind = EventKindOf(alert_events.c.metadata_)
    return SharedTables(
        generation=generation,
        metadata=metadata,
        devices=devices,
        history=history,
        alerts=alerts,
        alert_events=alert_events,
        app_only=app_only,
        open_event_predicate=predicate,
        event_kind=kind,
        open_event_index=_detached(
            Index(
                OPEN_EVENT_INDEX,
                alert_events.c.alert_id,
                kind,
                unique=True,
                postgresql_where=predicate,
                sqlite_where=predicate,
            )
        ),
        history_index=_detached(
            Index(
                HISTORY_INDEX,
                history.c.device_id,
                history.c.timestamp,
                postgresql_concurrently=True,
            )
        ),
    )


def _detached(index: Index) -> Index:
    """`index`, kept out of its table's `indexes`: `db upgrade` makes it, not create_all, whose
    tables declare only what the web app's DDL declares."""
    assert index.table is not None
    index.table.indexes.discard(index)
    return index


def _device_columns(legacy: bool) -> list[Column[Any]]:
    polling: list[Column[Any]] = [
        # The current DDL makes them NOT NULL; the legacy one allows NULL (read as the default).
        Column("poll_enabled", Boolean, nullable=legacy, server_default=true()),
        Column("poll_interval", Integer, nullable=legacy, server_default="60"),
    ]
    readings: list[Column[Any]] = [
        Column("unit", String),
        Column("min_value", Double),
        Column("max_value", Double),
    ]
    stamps: list[Column[Any]] = [
        Column("created_at", UTCDateTime, server_default=func.now()),
        Column("updated_at", UTCDateTime),
    ]
    state: list[Column[Any]] = [Column("last_polled", UTCDateTime), Column("last_error", Text)]
    if legacy:
        return [
            Column("name", String, nullable=False),
            Column("device_type", String, nullable=False),
            Column("address", String, nullable=False),
            *polling,
            *readings,
            Column("config", JSON),
            Column("is_active", Boolean, server_default=true()),
            *stamps,
            *state,
        ]
    return [
        Column("role", String, nullable=False, server_default="general"),
        Column("parent_device_id", Integer, ForeignKey("devices.id")),
        Column("name", String, nullable=False),
        Column("device_type", String, nullable=False),
        Column("address", String, nullable=False, unique=True),
        *readings,
        Column("current_value", Double, server_default=text("0.0")),
        Column("resolution", Integer),
        Column("config", JSON),
        Column("is_active", Boolean, server_default=true()),
        *polling,
        *state,
        *stamps,
    ]


def _users(metadata: MetaData) -> Table:
    return Table(
        "users",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("username", String, nullable=False, unique=True),
        Column("email", String, unique=True),
        Column("phone_number", String),
        Column("hashed_password", String, nullable=False),
        Column("is_active", Boolean, server_default=true()),
        Column("is_admin", Boolean, server_default=false()),
        Column("created_at", UTCDateTime, server_default=func.now()),
        Column("updated_at", UTCDateTime),
    )


def _hourly_aggregates(metadata: MetaData) -> Table:
    return Table(
        "history_hourly_aggregates",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("device_id", Integer, ForeignKey("devices.id"), nullable=False),
        Column("hour_timestamp", UTCDateTime, nullable=False),
        Column("avg_value", Double, nullable=False),
        Column("min_value", Double, nullable=False),
        Column("max_value", Double, nullable=False),
        Column("sample_count", Integer, nullable=False),
        Column("created_at", UTCDateTime, server_default=func.now()),
        Index("ix_device_hour", "device_id", "hour_timestamp", unique=True),
    )


LEGACY = _declare(Generation.LEGACY)
CURRENT = _declare(Generation.CURRENT)


def tables_for(generation: Generation) -> SharedTables:
    """The shared tables as `generation` declares them."""
    return LEGACY if generation is Generation.LEGACY else CURRENT


# The worker's own tables, created by `db upgrade`: how several workers share the alerts without
# a broker (migration 0002), and what the worker remembers of each alert (migration 0003). The
# web app never reads them, and they are the same beside either generation.

worker_metadata = MetaData()

workers = Table(
    "reef_alerts_workers",
    worker_metadata,
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
    worker_metadata,
    Column("partition_count", Integer, primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("owner", String(200)),
    Column("expires_at", UTCDateTime),
)

WORKER_TABLES = (workers, partition_leases)
"""The tables several workers coordinate in."""

alert_status = Table(
    "reef_alerts_alert_status",
    worker_metadata,
    Column("alert_id", Integer, primary_key=True, autoincrement=False),
    Column("state", String(16), nullable=False),
    Column("code", String(40), nullable=False),
    Column("reason", Text, nullable=False),
    Column("since", UTCDateTime, nullable=False),
)
"""Why an alert cannot be judged, and since when: a row only for an alert that is skipped or
whose rows are broken (ADR 13). The web app never reads it; `reef-alerts alerts` does."""

rules = Table(
    "reef_alerts_rules",
    worker_metadata,
    Column("alert_id", Integer, primary_key=True, autoincrement=False),
    # NULL: the worker's default for every alert (REEF_ALERTS_DEFAULT_*). A no_data_after of
    # 0: no no-data events for this alert, whatever the default.
    Column("pending_seconds", Float),
    Column("recovery_margin", Float),
    Column("no_data_after_seconds", Float),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("pending_seconds >= 0", name="ck_reef_alerts_rules_pending"),
    CheckConstraint("recovery_margin >= 0", name="ck_reef_alerts_rules_recovery_margin"),
    CheckConstraint("no_data_after_seconds >= 0", name="ck_reef_alerts_rules_no_data_after"),
)
"""A keeper's options for an alert (ADR 15): a row only for an alert that has some; a NULL
option is the worker's default. Removed with its alert by a foreign key that migration 0004
adds (the web app's `alerts` is not in this metadata)."""

alert_state = Table(
    "reef_alerts_alert_state",
    worker_metadata,
    Column("alert_id", Integer, primary_key=True, autoincrement=False),
    Column("pending_since", UTCDateTime),
)
"""What the state machine remembers of an alert between cycles, beyond its open events
(ADR 16): a row only while there is something to remember. Removed with its alert, like
`rules`."""

trend_rules = Table(
    "reef_alerts_trend_rules",
    worker_metadata,
    Column("alert_id", Integer, primary_key=True, autoincrement=False),
    # NULL: the default (TrendOptions'). A max_rate_per_hour of 0: no rate events.
    Column("trend_window_seconds", Float),
    Column("min_samples", Integer),
    Column("forecast_horizon_seconds", Float),
    Column("max_rate_per_hour", Float),
    Column("smoothing", Boolean),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("trend_window_seconds > 0", name="ck_reef_alerts_trend_rules_window"),
    CheckConstraint("min_samples >= 2", name="ck_reef_alerts_trend_rules_min_samples"),
    CheckConstraint("forecast_horizon_seconds > 0", name="ck_reef_alerts_trend_rules_horizon"),
    CheckConstraint("max_rate_per_hour >= 0", name="ck_reef_alerts_trend_rules_max_rate"),
)
"""A keeper's trend options for a `trend_enabled` alert (issue 13, ADR 22), beside `rules`: a
row only for an alert that has some; a NULL option is the default."""

trend_state = Table(
    "reef_alerts_trend_state",
    worker_metadata,
    Column("alert_id", Integer, primary_key=True, autoincrement=False),
    Column("forecast_since", UTCDateTime),
    Column("rate_since", UTCDateTime),
)
"""When a trend alert's forecast or rate condition began to hold, while it waits out the
pending duration: a row only while there is something to remember, like `alert_state`."""

OWN_TABLES = (*WORKER_TABLES, alert_status, rules, alert_state, trend_rules, trend_state)
"""Every table of the worker's own."""

ALERT_TABLES = (rules, alert_state)
"""The worker's tables keyed by an alert, removed with it (migration 0004)."""

TREND_TABLES = (trend_rules, trend_state)
"""The trend rules' tables, keyed by an alert too (migration 0005)."""


def has_alert_tables(table_names: Collection[str]) -> bool:
    """Whether a database with the tables `table_names` has both ALERT_TABLES."""
    return all(table.name in table_names for table in ALERT_TABLES)


def has_trend_tables(table_names: Collection[str]) -> bool:
    """Whether a database with the tables `table_names` has both TREND_TABLES."""
    return all(table.name in table_names for table in TREND_TABLES)
