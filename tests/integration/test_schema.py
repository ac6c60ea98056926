"""The two generations of the web app's schema: the worker's declaration of each, telling them
apart, `db upgrade` on each and from nothing, and the index the newest-reading read needs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

from reef_alerts.adapters import schema
from reef_alerts.adapters.database import make_engine
from reef_alerts.adapters.tables import HISTORY_INDEX, Generation, tables_for

from .reef import make_app_tables
from .test_cli import invoke


def _shape(url: str) -> dict[str, Any]:
    """Every table's columns, defaults, keys and indexes, as PostgreSQL reports them."""
    engine = create_engine(url)
    inspector = inspect(engine)
    shape = {
        table: {
            "columns": [
                (c["name"], repr(c["type"]), c["nullable"], c.get("default"))
                for c in inspector.get_columns(table)
            ],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
            "unique": sorted(
                (u["name"], tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(table)
            ),
            "foreign_keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in inspector.get_foreign_keys(table)
            ),
        }
        for table in inspector.get_table_names()
    }
    engine.dispose()
    return shape


@pytest.mark.postgres
def test_each_generation_is_declared_as_the_web_apps_ddl_declares_it(
    generation: Generation, postgres_url: str, second_postgres_url: str
) -> None:
    make_app_tables(postgres_url, generation)  # the DDL, verbatim
    engine = create_engine(second_postgres_url)
    tables_for(generation).metadata.create_all(engine)
    engine.dispose()

    assert _shape(second_postgres_url) == _shape(postgres_url)


def test_check_tells_which_generation_it_found(engine: Engine, generation: Generation) -> None:
    report = schema.check(engine)

    assert report.can_run
    assert report.generation is generation
    expected = {
        Generation.LEGACY: "history.metadata, alert_events.metadata",
        Generation.CURRENT: "history.history_metadata, alert_events.alert_metadata",
    }[generation]
    assert f"schema generation: {generation.value} (" in "\n".join(report.lines())
    assert expected in "\n".join(report.lines())


def test_a_database_made_from_nothing_gets_the_current_generation(database_url: str) -> None:
    engine = make_engine(database_url)

    report = schema.upgrade(engine)

    assert report.generation is Generation.CURRENT
    assert {"users", "history_hourly_aggregates"} <= set(inspect(engine).get_table_names())
    assert report.lines()[-1] == "result: ready"
    engine.dispose()


def test_upgrade_leaves_the_app_tables_of_an_existing_database_as_they_were(
    engine: Engine, generation: Generation
) -> None:
    before = set(inspect(engine).get_table_names())

    schema.upgrade(engine)

    added = set(inspect(engine).get_table_names()) - before
    assert added == {
        "reef_alerts_alembic_version",
        "reef_alerts_workers",
        "reef_alerts_partition_leases",
        "reef_alerts_alert_status",
        "reef_alerts_rules",
        "reef_alerts_alert_state",
        "reef_alerts_trend_rules",
        "reef_alerts_trend_state",
        "reef_alerts_channels",
        "reef_alerts_outbox",
        "reef_alerts_notifications",
        "reef_alerts_event_notices",
        "reef_alerts_silences",
        "reef_alerts_notify_rules",
    }
    assert schema.check(engine).generation is generation


def test_a_column_the_worker_never_reads_may_be_missing_but_one_it_reads_may_not(
    engine: Engine,
) -> None:
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE alerts DROP COLUMN operator"))
    assert not schema.check(engine).can_run
    assert "table alerts: present, MISSING columns operator" in schema.check(engine).lines()

    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE alerts ADD COLUMN operator VARCHAR(5)"))
        if inspect(connection).has_table("users"):  # only the current generation has the others
            connection.execute(text("ALTER TABLE devices DROP COLUMN current_value"))

    assert schema.check(engine).can_run


def test_history_tables_of_two_generations_are_refused_with_a_line_naming_both(
    engine: Engine, generation: Generation
) -> None:
    other = "history_metadata" if generation is Generation.LEGACY else "metadata"
    with engine.begin() as connection:
        connection.execute(text(f"ALTER TABLE history ADD COLUMN {other} JSON"))
        connection.execute(
            text(f"ALTER TABLE history DROP COLUMN {generation.metadata_columns[0]}")
        )

    report = schema.check(engine)

    assert not report.can_run
    assert "different generations" in "\n".join(report.lines())
    with pytest.raises(schema.UnknownGenerationError, match="different generations"):
        schema.upgrade(engine)


class TestHistoryIndex:
    def test_check_warns_while_no_index_serves_the_newest_reading_read(
        self, engine: Engine, generation: Generation
    ) -> None:
        report = schema.check(engine)

        if generation is Generation.LEGACY:  # its DDL has ix_history_device_timestamp
            assert report.history_index == "ix_history_device_timestamp"
            assert report.warnings == []
        else:
            assert report.history_index is None
            assert "history has no index on (device_id, timestamp)" in "\n".join(report.lines())

    def test_upgrade_adds_the_workers_index_only_where_none_serves(
        self, engine: Engine, generation: Generation
    ) -> None:
        report = schema.upgrade(engine)

        expected = {
            Generation.LEGACY: "ix_history_device_timestamp",
            Generation.CURRENT: HISTORY_INDEX,
        }[generation]
        assert report.history_index == expected
        assert report.warnings == []
        names = {index["name"] for index in inspect(engine).get_indexes("history")}
        assert (HISTORY_INDEX in names) is (generation is Generation.CURRENT)

    def test_upgrade_makes_the_index_again_after_it_was_dropped(self, engine: Engine) -> None:
        schema.upgrade(engine)
        with engine.begin() as connection:
            for index in inspect(connection).get_indexes("history"):
                if index["column_names"][:2] == ["device_id", "timestamp"]:
                    connection.execute(text(f"DROP INDEX {index['name']}"))
        assert schema.check(engine).warnings

        report = schema.upgrade(engine)

        assert report.history_index == HISTORY_INDEX

    @pytest.mark.postgres
    def test_postgresql_builds_it_concurrently_so_the_web_app_can_write_meanwhile(
        self, app_postgres_url: str
    ) -> None:
        engine = make_engine(app_postgres_url)
        sent: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *a: sent.append(a[2]))

        schema.upgrade(engine)

        built = [s for s in sent if s.startswith("CREATE INDEX") and HISTORY_INDEX in s]
        assert all(s.startswith("CREATE INDEX CONCURRENTLY") for s in built)
        engine.dispose()

    @pytest.mark.postgres
    def test_postgresql_builds_again_an_index_an_interrupted_build_left_invalid(
        self, postgres_url: str
    ) -> None:
        make_app_tables(postgres_url, Generation.CURRENT)
        engine = make_engine(postgres_url)
        schema.upgrade(engine)
        with engine.begin() as connection:  # what a cancelled CREATE INDEX CONCURRENTLY leaves
            connection.execute(
                text(
                    "UPDATE pg_index SET indisvalid = false "
                    f"WHERE indexrelid = '{HISTORY_INDEX}'::regclass"
                )
            )
        assert schema.check(engine).history_index is None

        report = schema.upgrade(engine)

        assert report.history_index == HISTORY_INDEX
        engine.dispose()


@pytest.fixture
def reader(app_postgres_url: str, postgres_server: Engine) -> Iterator[str]:
    """The URL of the app's database for a role that may only SELECT its tables."""
    role = f"reef_reader_{uuid.uuid4().hex[:8]}"
    with postgres_server.connect() as connection:
        connection.execute(text(f"CREATE ROLE {role} LOGIN"))
    owner = create_engine(app_postgres_url)
    with owner.begin() as connection:
        connection.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"))
    try:
        yield make_url(app_postgres_url).set(username=role).render_as_string(hide_password=False)
    finally:
        with owner.begin() as connection:
            connection.execute(text(f"DROP OWNED BY {role}"))
        owner.dispose()
        with postgres_server.connect() as connection:
            connection.execute(text(f"DROP ROLE {role}"))


@pytest.mark.postgres
def test_a_role_that_may_only_select_is_told_what_it_lacks_and_never_runs(
    reader: str, app_postgres_url: str, tmp_path: Path
) -> None:
    engine = make_engine(app_postgres_url)
    schema.upgrade(engine)  # as the owner
    with engine.begin() as connection:
        role = make_url(reader).username
        connection.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"))
    engine.dispose()

    for command in (["db", "check"], ["run", "--config-check", "--log-file", "-"]):
        code, out, _ = invoke(command, tmp_path, DATABASE_URL=reader)
        assert code == 1, out
        assert "privileges: MISSING INSERT on alert_events, UPDATE on alert_events" in out
        assert "USAGE on sequence public.alert_events_id_seq" in out
        assert f"GRANT INSERT, UPDATE ON alert_events TO {role};" in out
    code, _, err = invoke(["run", "--once", "--log-file", "-"], tmp_path, DATABASE_URL=reader)
    assert code == 1
    assert "Database verification failed: privileges: MISSING INSERT on alert_events" in err


@pytest.mark.postgres
def test_upgrade_by_a_role_that_may_not_says_what_it_needs_and_changes_nothing(
    reader: str, tmp_path: Path
) -> None:
    code, _, err = invoke(["db", "upgrade"], tmp_path, DATABASE_URL=reader)

    assert code == 1
    assert err.count("\n") == 1
    assert "db upgrade needs CREATE on schema public, ownership of alert_events" in err
    assert schema.check(make_engine(reader)).revision is None
