"""Schema management: `db upgrade` through Alembic, and `db check`'s report of what is there."""

from __future__ import annotations

from importlib.resources import files

import attrs
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, func, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError

from reef_alerts.adapters.tables import (
    OPEN_EVENT_INDEX,
    OPEN_EVENT_PREDICATE,
    SHARED_TABLES,
    WORKER_TABLES,
    alert_events,
)

VERSION_TABLE = "reef_alerts_alembic_version"

_DUPLICATES_SHOWN = 20


class DuplicateOpenEventsError(Exception):
    """alert_events already holds more than one unresolved event for some alerts."""

    def __init__(self, alert_ids: list[int]) -> None:
        shown = ", ".join(map(str, alert_ids[:_DUPLICATES_SHOWN]))
        more = f" and {len(alert_ids) - _DUPLICATES_SHOWN} more" if len(alert_ids) > 20 else ""
        super().__init__(
            f"alert_events holds more than one unresolved event for alerts {shown}{more}; "
            "nothing was changed. Resolve all but the newest open event of each alert, e.g. "
            "UPDATE alert_events SET is_resolved = true, resolved_at = now() WHERE NOT "
            "is_resolved AND id NOT IN (SELECT max(id) FROM alert_events WHERE NOT is_resolved "
            "GROUP BY alert_id); then run `reef-alerts db upgrade` again."
        )
        self.alert_ids = alert_ids


@attrs.frozen
class SchemaReport:
    """What `db check` found: can the worker run on this database, and is it upgraded?"""

    error: str | None = None
    """Why the database could not be reached or inspected; None when it could."""
    tables: dict[str, bool] = attrs.field(factory=dict)
    missing_columns: dict[str, list[str]] = attrs.field(factory=dict)
    worker_objects: dict[str, bool] = attrs.field(factory=dict)
    revision: str | None = None
    head: str | None = None

    @property
    def connected(self) -> bool:
        return self.error is None

    @property
    def can_run(self) -> bool:
        """The worker can evaluate: connected, with the four tables and their columns."""
        return self.connected and all(self.tables.values()) and not self.missing_columns

    @property
    def coordinated(self) -> bool:
        """The lease tables exist, so several workers can share the alerts."""
        return all(self.worker_objects.get(table.name, False) for table in WORKER_TABLES)

    @property
    def guarded(self) -> bool:
        """The one-open-event index exists, so concurrent workers cannot duplicate events."""
        return self.worker_objects.get(OPEN_EVENT_INDEX, False)

    def lines(self) -> list[str]:
        """The report for a person, one fact a line."""
        if self.error is not None:
            return [f"database: unreachable ({self.error})"]
        lines = ["database: connected"]
        for table, present in self.tables.items():
            missing = self.missing_columns.get(table)
            state = "present" if present else "MISSING"
            if missing:
                state = f"present, missing columns {', '.join(missing)}"
            lines.append(f"table {table}: {state}")
        for name, present in self.worker_objects.items():
            lines.append(f"worker object {name}: {'present' if present else 'missing'}")
        lines.append(f"schema revision: {self.revision or 'none'} (head {self.head})")
        if not self.can_run:
            lines.append("result: the worker cannot run here; run `reef-alerts db upgrade`")
        elif not self.guarded or self.revision != self.head:
            lines.append(
                "result: the worker can run; run `reef-alerts db upgrade` to add its own objects"
            )
        else:
            lines.append("result: ready")
        return lines


def check(engine: Engine) -> SchemaReport:
    """Inspect the database without changing it."""
    try:
        with engine.connect() as connection:
            return _inspect(connection)
    except SQLAlchemyError as error:
        return SchemaReport(error=_one_line(error))


def upgrade(engine: Engine) -> SchemaReport:
    """Create what is absent, add the worker's objects, record the revision; idempotent.

    Raises DuplicateOpenEventsError, having changed nothing, when the index cannot be built.
    """
    with engine.begin() as connection:
        if inspect(connection).has_table(alert_events.name) and not has_open_event_index(
            connection
        ):
            duplicates = find_duplicate_open_events(connection)
            if duplicates:
                raise DuplicateOpenEventsError(duplicates)
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return check(engine)


def has_open_event_index(connection: Connection) -> bool:
    """Whether alert_events has the one-open-event index, by one catalogue query: SQLAlchemy's
    reflection of every index took a tenth of a 10,000-alert worker's first cycle."""
    if connection.dialect.name == "postgresql":
        query = text(
            "SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = :table AND indexname = :index"
        )
    else:  # SQLite, the only other backend make_engine supports
        query = text(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND tbl_name = :table "
            "AND name = :index"
        )
    found = connection.execute(query, {"table": alert_events.name, "index": OPEN_EVENT_INDEX})
    return found.first() is not None


def find_duplicate_open_events(connection: Connection) -> list[int]:
    """The alerts that have more than one unresolved event."""
    query = (
        select(alert_events.c.alert_id)
        .where(OPEN_EVENT_PREDICATE)
        .group_by(alert_events.c.alert_id)
        .having(func.count() > 1)
        .order_by(alert_events.c.alert_id)
    )
    return list(connection.scalars(query))


def _inspect(connection: Connection) -> SchemaReport:
    inspector = inspect(connection)
    tables: dict[str, bool] = {}
    missing_columns: dict[str, list[str]] = {}
    for table in SHARED_TABLES:
        tables[table.name] = inspector.has_table(table.name)
        if tables[table.name]:
            present = {column["name"] for column in inspector.get_columns(table.name)}
            missing = [column.name for column in table.columns if column.name not in present]
            if missing:
                missing_columns[table.name] = missing
    revision = MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE}
    ).get_current_revision()
    worker_objects = {
        VERSION_TABLE: inspector.has_table(VERSION_TABLE),
        OPEN_EVENT_INDEX: tables[alert_events.name] and has_open_event_index(connection),
        **{table.name: inspector.has_table(table.name) for table in WORKER_TABLES},
    }
    return SchemaReport(
        tables=tables,
        missing_columns=missing_columns,
        worker_objects=worker_objects,
        revision=revision,
        head=ScriptDirectory.from_config(_alembic_config()).get_current_head(),
    )


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("reef_alerts.adapters") / "migrations"))
    return config


def _one_line(error: SQLAlchemyError) -> str:
    cause = getattr(error, "orig", None) or error
    text = " ".join(str(cause).split())
    return text or type(cause).__name__
