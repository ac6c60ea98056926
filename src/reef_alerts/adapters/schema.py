"""Schema management: which generation of the web app's schema a database has, `db upgrade`
through Alembic, and `db check`'s report of what is there."""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Final

import attrs
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    ForeignKeyConstraint,
    Inspector,
    Integer,
    MetaData,
    Table,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError

from reef_alerts.adapters.notify_tables import NOTIFY_KEYED, NOTIFY_TABLES
from reef_alerts.adapters.tables import (
    ALERT_TABLES,
    CURRENT,
    HISTORY_INDEX,
    OLD_OPEN_EVENT_INDEX,
    OPEN_EVENT_INDEX,
    OWN_TABLES,
    TREND_TABLES,
    WORKER_TABLES,
    Generation,
    SharedTables,
    alert_status,
    has_alert_tables,
    has_trend_tables,
    tables_for,
    worker_metadata,
)

VERSION_TABLE = "reef_alerts_alembic_version"

_ALL_OWN_TABLES = (*OWN_TABLES, *NOTIFY_TABLES, *NOTIFY_KEYED)

_DUPLICATES_SHOWN = 20
_GENERATION_TABLES = ("history", "alert_events")
"""The tables whose metadata column tells the generation, in `Generation.metadata_columns`'
order."""


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


class UnknownGenerationError(Exception):
    """The shared tables' columns match neither generation of the web app's schema."""


class MissingPrivilegesError(Exception):
    """The database role may not do what `db upgrade` must."""


def find_generation(inspector: Inspector) -> Generation | None:
    """The generation that `history`'s and `alert_events`' metadata columns tell; None when
    neither table exists. Raises UnknownGenerationError when they disagree or tell none."""
    found: dict[str, Generation] = {}
    for position, table in enumerate(_GENERATION_TABLES):
        if not inspector.has_table(table):
            continue
        names = {column["name"] for column in inspector.get_columns(table)}
        for generation in (Generation.CURRENT, Generation.LEGACY):
            if generation.metadata_columns[position] in names:
                found[table] = generation
                break
        else:
            expected = " or ".join(dict.fromkeys(g.metadata_columns[position] for g in Generation))
            raise UnknownGenerationError(
                f"table {table} has no {expected} column: it matches neither the "
                "specification's schema nor the web app's"
            )
    if len(set(found.values())) > 1:
        raise UnknownGenerationError(
            "history and alert_events are of different generations of the web app's schema "
            f"(history: {found['history'].value}, alert_events: {found['alert_events'].value}); "
            "the worker runs on one or the other"
        )
    return next(iter(found.values()), None)


def detect_tables(connection: Connection) -> SharedTables:
    """The shared tables as this database's generation declares them (ADR 0011).

    Raises UnknownGenerationError when its tables are missing or of no known generation."""
    generation = find_generation(inspect(connection))
    if generation is None:
        raise UnknownGenerationError(
            "the shared tables history and alert_events do not exist: run `reef-alerts db check`"
        )
    return tables_for(generation)


@attrs.frozen
class Catalogue:
    """What a read that joins the worker's tables needs to know of a database."""

    tables: SharedTables
    recorded: bool
    """Whether it has the status table (migration 0003)."""
    remembers: bool
    """Whether it has the rules and state tables (migration 0004)."""
    trends: bool = False
    """Whether it has the trend rules and state tables too (migration 0005)."""


def catalogue(connection: Connection, generation: Generation | None = None) -> Catalogue:
    """This database's shared tables, and which of the worker's it has; given the
    `generation`, only the latter are looked for (one catalogue query). Raises
    UnknownGenerationError as detect_tables does."""
    names = inspect(connection).get_table_names()
    tables = detect_tables(connection) if generation is None else tables_for(generation)
    remembers = has_alert_tables(names)
    return Catalogue(
        tables, alert_status.name in names, remembers, remembers and has_trend_tables(names)
    )


@attrs.frozen
class SchemaReport:
    """What `db check` found: can the worker run on this database, and is it upgraded?"""

    error: str | None = None
    """Why the database could not be reached or inspected; None when it could."""
    reached: bool = False
    """With an `error`: the server answered, but refused or cancelled a statement (a lock
    timeout, a permission); not reached at all otherwise."""
    missing_file: str | None = None
    """The SQLite file that does not exist, which a check does not create."""
    generation: Generation | None = None
    generation_problem: str | None = None
    """Why no generation could be told, when tables exist."""
    tables: dict[str, bool] = attrs.field(factory=dict)
    missing_columns: dict[str, list[str]] = attrs.field(factory=dict)
    worker_objects: dict[str, bool] = attrs.field(factory=dict)
    history_index: str | None = None
    """The index that serves the newest-reading read, when one does."""
    missing_privileges: list[str] = attrs.field(factory=list)
    """What the worker needs to run and may not do here, e.g. `INSERT on alert_events`."""
    upgrade_needs: list[str] = attrs.field(factory=list)
    """What `db upgrade` would need to do here and may not."""
    grants: list[str] = attrs.field(factory=list)
    """The statements that would give the worker's role what it lacks."""
    revision: str | None = None
    head: str | None = None

    @property
    def connected(self) -> bool:
        return self.error is None and self.missing_file is None

    @property
    def can_run(self) -> bool:
        """The worker can evaluate: connected, with the four tables of one generation."""
        return (
            self.connected
            and self.generation is not None
            and all(self.tables.values())
            and not self.missing_columns
            and not self.missing_privileges
        )

    @property
    def coordinated(self) -> bool:
        """The lease tables exist, so several workers can share the alerts."""
        return all(self.worker_objects.get(table.name, False) for table in WORKER_TABLES)

    @property
    def guarded(self) -> bool:
        """The one-open-event index exists, so concurrent workers cannot duplicate events."""
        return self.worker_objects.get(OPEN_EVENT_INDEX, False)

    @property
    def problems(self) -> list[str]:
        """Why the worker cannot run here, one reason a line; empty when it can."""
        if self.can_run:
            return []
        return [
            line
            for line in self.lines()
            if any(
                word in line
                for word in ("MISSING", "UNKNOWN", "unreachable", "inspected", "no SQLite")
            )
        ]

    @property
    def warnings(self) -> list[str]:
        """What slows the worker down or makes it unsafe here, though it can run."""
        found = []
        if self.can_run and self.history_index is None:
            found.append(
                "history has no index on (device_id, timestamp): reading each device's newest "
                "reading slows down as its history grows; `reef-alerts db upgrade` adds one"
            )
        return found

    def lines(self) -> list[str]:
        """The report for a person, one fact a line."""
        if self.missing_file is not None:
            return [
                f"database: no SQLite file at {self.missing_file}",
                "result: the worker cannot run here; `reef-alerts db upgrade` creates it",
            ]
        if self.error is not None:
            if self.reached:
                return [f"database: could not be inspected ({self.error})"]
            return [f"database: unreachable ({self.error})"]
        lines = ["database: connected"]
        if self.generation is not None:
            lines.append(f"schema generation: {self.generation.describe()}")
        elif self.generation_problem is not None:
            lines.append(f"schema generation: UNKNOWN ({self.generation_problem})")
        else:
            lines.append("schema generation: none yet (no history or alert_events table)")
        for table, present in self.tables.items():
            missing = self.missing_columns.get(table)
            state = "present" if present else "MISSING"
            if missing:
                state = f"present, MISSING columns {', '.join(missing)}"
            lines.append(f"table {table}: {state}")
        if self.can_run and self.history_index is not None:
            lines.append(f"history (device_id, timestamp) index: {self.history_index}")
        for name, present in self.worker_objects.items():
            lines.append(f"worker object {name}: {'present' if present else 'missing'}")
        if self.missing_privileges:
            lines.append(f"privileges: MISSING {', '.join(self.missing_privileges)}")
        elif self.connected and all(self.tables.values()):
            lines.append("privileges: the worker may read and write what it needs")
        if self.upgrade_needs:
            lines.append(f"privileges: `db upgrade` needs {', '.join(self.upgrade_needs)}")
        if self.grants:
            lines.append(f"to grant them: {' '.join(self.grants)}")
        lines.append(f"schema revision: {self.revision or 'none'} (head {self.head})")
        lines.extend(f"WARNING: {warning}" for warning in self.warnings)
        if not self.can_run:
            lines.append("result: the worker cannot run here; run `reef-alerts db upgrade`")
        elif not all(self.worker_objects.values()) or self.revision != self.head or self.warnings:
            lines.append(
                "result: the worker can run; run `reef-alerts db upgrade` to add its own objects"
            )
        else:
            lines.append("result: ready")
        return lines


def check(engine: Engine) -> SchemaReport:
    """Inspect the database without changing it, nor making an SQLite file that is not there."""
    path = engine.url.database
    if engine.dialect.name == "sqlite" and path and path != ":memory:" and not Path(path).exists():
        return SchemaReport(missing_file=path)
    try:
        with engine.connect() as connection:
            return _inspect(connection)
    except SQLAlchemyError as error:
        # A server's own errors carry an SQLSTATE; a failure to connect has none.
        reached = getattr(getattr(error, "orig", None), "pgcode", None) is not None
        return SchemaReport(error=_one_line(error), reached=reached)


def upgrade(engine: Engine) -> SchemaReport:
    """Create what is absent, add the worker's objects, record the revision; idempotent.

    The worker's tables come from Alembic's revisions, each committed on its own. Its indexes
    on the web app's tables are then made wherever they are missing, whatever the revision, so
    that one dropped since is made again. Raises DuplicateOpenEventsError, having changed
    nothing more, when the one-open-event index cannot be built, and UnknownGenerationError on
    tables of no known generation.
    """
    report = check(engine)
    if report.connected and report.upgrade_needs:
        raise MissingPrivilegesError(
            f"db upgrade needs {', '.join(report.upgrade_needs)}, which this role may not: "
            "run it as the tables' owner"
        )
    with engine.connect() as connection:
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()  # whatever Alembic's last look-ups began
        with connection.begin():
            tables = detect_tables(connection)
            create_own_tables(connection)
            create_open_event_index(connection, tables)
    create_history_index(engine, tables)
    return check(engine)


def create_own_tables(
    connection: Connection,
    keyed: Sequence[Table] = (*ALERT_TABLES, *TREND_TABLES, *NOTIFY_KEYED),
    plain: Sequence[Table] = NOTIFY_TABLES,
) -> None:
    """Make the worker's own tables that are missing, whatever the revision says: one dropped
    since its revision ran is made again. The `keyed` ones, keyed by an alert, get a foreign key
    to the web app's `alerts`, so that they go with it (ADR 16); the worker's metadata does not
    declare `alerts`, so a stand-in that is never created names it. A migration passes its own
    `keyed` and `plain` tables, so that it makes no later one's."""
    worker_metadata.create_all(
        connection, tables=[*WORKER_TABLES, alert_status, *plain], checkfirst=True
    )
    with_alerts = MetaData()
    Table("alerts", with_alerts, Column("id", Integer, primary_key=True))
    for table in keyed:
        copy = table.to_metadata(with_alerts)
        copy.append_constraint(
            ForeignKeyConstraint(
                ["alert_id"], ["alerts.id"], name=f"fk_{table.name}_alert", ondelete="CASCADE"
            )
        )
        copy.create(connection, checkfirst=True)


def create_open_event_index(connection: Connection, tables: SharedTables) -> None:
    """Make the one-open-event-per-kind index unless it exists, in place of its predecessor,
    one open event per alert (ADR 0004). Raises DuplicateOpenEventsError, making nothing, when
    alert_events already breaks its rule."""
    if open_event_index(connection) == OPEN_EVENT_INDEX:
        return
    duplicates = find_duplicate_open_events(connection, tables)
    if duplicates:
        raise DuplicateOpenEventsError(duplicates)
    tables.open_event_index.create(connection)
    connection.execute(text(f"DROP INDEX IF EXISTS {OLD_OPEN_EVENT_INDEX}"))


def create_history_index(engine: Engine, tables: SharedTables) -> None:
    """Make the worker's history (device_id, timestamp) index where no index serves (ADR 0011).

    On PostgreSQL it is built CONCURRENTLY (the index's `postgresql_concurrently`), outside any
    transaction: history is the web app's busiest table, and a plain CREATE INDEX would hold
    its writes for as long as the build takes. One left invalid by an interrupted build is
    dropped and built again.
    """
    if engine.dialect.name != "postgresql":
        with engine.begin() as connection:
            if history_index(connection) is None:
                tables.history_index.create(connection)
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if invalid_history_index(connection):
            tables.history_index.drop(connection)
        if history_index(connection) is None:
            tables.history_index.create(connection)


def tables_to_create(connection: Connection) -> SharedTables:
    """The generation whose missing tables `db upgrade` creates: the database's own, or the
    current one for a database that has neither history nor alert_events."""
    return tables_for(find_generation(inspect(connection)) or CURRENT.generation)


def open_event_index(connection: Connection) -> str | None:
    """The name of the index that keeps alert_events to one open event per alert and kind
    (OPEN_EVENT_INDEX) or, in a database upgraded before events had kinds, per alert
    (OLD_OPEN_EVENT_INDEX); None when it has neither. One catalogue query rather than
    SQLAlchemy's reflection of every index, which a worker's first cycle would wait for (ADR 9)."""
    if connection.dialect.name == "postgresql":
        query = text(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = 'alert_events' AND indexname IN (:index, :old)"
        )
    else:  # SQLite, the only other backend make_engine supports
        query = text(
            "SELECT name FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'alert_events' AND name IN (:index, :old)"
        )
    found = set(connection.scalars(query, {"index": OPEN_EVENT_INDEX, "old": OLD_OPEN_EVENT_INDEX}))
    return OPEN_EVENT_INDEX if OPEN_EVENT_INDEX in found else next(iter(found), None)


def history_index(connection: Connection) -> str | None:
    """The name of a valid, whole (not partial) b-tree index of `history` that starts with
    (device_id, timestamp), the newest-reading read's; None when there is none."""
    if connection.dialect.name == "postgresql":
        return connection.execute(_PG_HISTORY_INDEX).scalar()
    for name, partial in (
        (row[1], row[4]) for row in connection.exec_driver_sql("PRAGMA index_list(history)")
    ):
        columns = [
            row[2] for row in connection.exec_driver_sql(f"PRAGMA index_info('{_quoted(name)}')")
        ]
        if not partial and columns[:2] == ["device_id", "timestamp"]:
            return str(name)
    return None


def invalid_history_index(connection: Connection) -> bool:
    """Whether the worker's history index exists but is invalid: a CREATE INDEX CONCURRENTLY
    that failed or was interrupted leaves one behind on PostgreSQL."""
    if connection.dialect.name != "postgresql":
        return False
    found = connection.execute(
        text(
            "SELECT NOT ix.indisvalid FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid "
            "JOIN pg_namespace n ON n.oid = i.relnamespace "
            "WHERE n.nspname = current_schema() AND i.relname = :index"
        ),
        {"index": HISTORY_INDEX},
    ).scalar()
    return bool(found)


_PG_HISTORY_INDEX = text(
    """
    SELECT i.relname
    FROM pg_index ix
    JOIN pg_class i ON i.oid = ix.indexrelid
    JOIN pg_class t ON t.oid = ix.indrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    JOIN pg_am am ON am.oid = i.relam
    WHERE n.nspname = current_schema() AND t.relname = 'history' AND am.amname = 'btree'
      AND ix.indisvalid AND ix.indpred IS NULL AND ix.indnkeyatts >= 2
      AND ix.indkey[0] = (SELECT attnum FROM pg_attribute
                          WHERE attrelid = t.oid AND attname = 'device_id')
      AND ix.indkey[1] = (SELECT attnum FROM pg_attribute
                          WHERE attrelid = t.oid AND attname = 'timestamp')
    ORDER BY i.relname
    LIMIT 1
    """
)


def find_duplicate_open_events(connection: Connection, tables: SharedTables) -> list[int]:
    """The alerts that have more than one unresolved event of one kind."""
    events = tables.alert_events
    query = (
        select(events.c.alert_id)
        .where(tables.open_event_predicate)
        .group_by(events.c.alert_id, tables.event_kind)
        .having(func.count() > 1)
        .order_by(events.c.alert_id)
        .distinct()
    )
    return list(connection.scalars(query))


def _inspect(connection: Connection) -> SchemaReport:
    inspector = inspect(connection)
    generation: Generation | None = None
    problem: str | None = None
    try:
        generation = find_generation(inspector)
    except UnknownGenerationError as error:
        problem = str(error)
    tables = tables_for(generation or CURRENT.generation)
    present: dict[str, bool] = {}
    missing_columns: dict[str, list[str]] = {}
    for table in tables.shared:
        present[table.name] = inspector.has_table(table.name)
        if present[table.name] and generation is not None:
            names = {column["name"] for column in inspector.get_columns(table.name)}
            missing = [name for name in _required_columns(table) if name not in names]
            if missing:
                missing_columns[table.name] = missing
    revision = MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE}
    ).get_current_revision()
    worker_objects = {
        VERSION_TABLE: inspector.has_table(VERSION_TABLE),
        OPEN_EVENT_INDEX: present["alert_events"]
        and open_event_index(connection) == OPEN_EVENT_INDEX,
        **{table.name: inspector.has_table(table.name) for table in _ALL_OWN_TABLES},
    }
    served = history_index(connection) if present["history"] else None
    privileges = _privileges(
        connection,
        [name for name, there in present.items() if there],
        [table.name for table in _ALL_OWN_TABLES if worker_objects[table.name]],
        creates_tables=not all(worker_objects.values()) or not all(present.values()),
        creates_indexes=[
            table
            for table, missing in (
                ("alert_events", not worker_objects[OPEN_EVENT_INDEX]),
                ("history", served is None),
            )
            if missing and present[table]
        ],
    )
    return SchemaReport(
        generation=generation,
        generation_problem=problem,
        tables=present,
        missing_columns=missing_columns,
        worker_objects=worker_objects,
        history_index=served,
        missing_privileges=privileges.missing,
        upgrade_needs=privileges.upgrade_needs,
        grants=privileges.grants,
        revision=revision,
        head=ScriptDirectory.from_config(_alembic_config()).get_current_head(),
    )


@attrs.frozen
class _Privileges:
    missing: list[str] = attrs.field(factory=list)
    upgrade_needs: list[str] = attrs.field(factory=list)
    grants: list[str] = attrs.field(factory=list)


_READ_ONLY: Final = ("devices", "history", "alerts")


def _required_columns(table: Table) -> list[str]:
    """The names of `table`'s columns the worker needs: those both generations declare (by key,
    so a metadata column counts under either name). A column only the web app's current schema
    has, such as `devices.current_value`, may be missing without harm."""
    common = set(table.c.keys())
    for generation in Generation:
        common &= set(tables_for(generation).metadata.tables[table.name].c.keys())
    return [column.name for key, column in table.c.items() if key in common]


def _privileges(
    connection: Connection,
    shared: list[str],
    worker: list[str],
    *,
    creates_tables: bool,
    creates_indexes: list[str],
) -> _Privileges:
    """What the connection's role may not do of what the worker needs: SELECT on the shared
    tables, INSERT and UPDATE on alert_events (and its id sequence), all of its own tables; and
    for `db upgrade`, CREATE where it makes tables and ownership of a table it indexes."""
    if connection.dialect.name != "postgresql":
        return _sqlite_privileges(connection)
    wanted = [(table, "SELECT") for table in shared if table in _READ_ONLY]
    if "alert_events" in shared:
        wanted += [("alert_events", verb) for verb in ("SELECT", "INSERT", "UPDATE")]
    wanted += [
        (table, verb) for table in worker for verb in ("SELECT", "INSERT", "UPDATE", "DELETE")
    ]
    missing = [
        (row[0], row[1])
        for row in connection.execute(
            text(
                "SELECT t, v FROM unnest(CAST(:tables AS text[]), CAST(:verbs AS text[])) "
                "AS wanted(t, v) WHERE NOT has_table_privilege(t, v)"
            ),
            {"tables": [t for t, _ in wanted], "verbs": [v for _, v in wanted]},
        )
    ]
    sequence = None
    if "alert_events" in shared:
        sequence = connection.execute(
            text(
                "SELECT s FROM pg_get_serial_sequence('alert_events', 'id') AS s "
                "WHERE s IS NOT NULL AND NOT has_sequence_privilege(s, 'USAGE')"
            )
        ).scalar()
    role = connection.execute(text("SELECT current_user")).scalar()
    needs = []
    if (
        creates_tables
        and not connection.execute(
            text("SELECT has_schema_privilege(current_schema(), 'CREATE')")
        ).scalar()
    ):
        schema_name = connection.execute(text("SELECT current_schema()")).scalar()
        needs.append(f"CREATE on schema {schema_name}")
    for table in creates_indexes:
        owns = connection.execute(
            text(
                "SELECT pg_has_role(tableowner, 'USAGE') FROM pg_tables "
                "WHERE schemaname = current_schema() AND tablename = :table"
            ),
            {"table": table},
        ).scalar()
        if not owns:
            needs.append(f"ownership of {table} (to add its index)")
    by_table: dict[str, list[str]] = {}
    for table, verb in missing:
        by_table.setdefault(table, []).append(verb)
    grants = [
        f"GRANT {', '.join(verbs)} ON {table} TO {role};" for table, verbs in by_table.items()
    ]
    described = [f"{verb} on {table}" for table, verb in missing]
    if sequence is not None:
        described.append(f"USAGE on sequence {sequence}")
        grants.append(f"GRANT USAGE ON SEQUENCE {sequence} TO {role};")
    return _Privileges(described, needs, grants)


def _sqlite_privileges(connection: Connection) -> _Privileges:
    """SQLite's privileges are the file's: the worker writes it, and its journal beside it."""
    path = connection.engine.url.database
    if not path or path == ":memory:":
        return _Privileges()
    missing = []
    if not os.access(path, os.W_OK):
        missing.append(f"write access to {path}")
    if not os.access(Path(path).resolve().parent, os.W_OK | os.X_OK):
        missing.append(f"write access to {Path(path).resolve().parent} (for the journal)")
    return _Privileges(missing)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("reef_alerts.adapters") / "migrations"))
    return config


def _quoted(name: str) -> str:
    return name.replace("'", "''")


def _one_line(error: SQLAlchemyError) -> str:
    cause = getattr(error, "orig", None) or error
    text = " ".join(str(cause).split())
    return text or type(cause).__name__
