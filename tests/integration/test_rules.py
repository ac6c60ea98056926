"""Alerts with memory on real databases, both generations (ADR 15, 16, 17): options set with
`reef-alerts rules`, pending conditions kept in the state table across workers, no-data events
beside threshold events, the per-kind index, options removed with their alert."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError

from reef_alerts.adapters import rule_store, schema
from reef_alerts.adapters.database import make_engine
from reef_alerts.adapters.tables import OLD_OPEN_EVENT_INDEX, OPEN_EVENT_INDEX, alert_state, rules
from reef_alerts.adapters.unit_of_work import SqlUnitOfWorkFactory
from reef_alerts.application import RunCycle
from reef_alerts.domain import EvaluationPolicy, RuleOptions

from .reef import (
    NOW,
    FixedClock,
    add_alert,
    add_device,
    add_reading,
    events,
    run_cycle,
    tables_of,
)
from .test_cli import invoke

LOG = logging.getLogger("alert_worker")


def url_of(engine: Engine) -> str:
    return str(engine.url.render_as_string(False))


def a_heater_and_a_probe(engine: Engine) -> None:
    schema.upgrade(engine)
    add_device(engine, 1, "Frag Tank Heater")
    add_alert(engine, 1, 1, "temperature", ">", 82.0)
    add_device(engine, 2, "Quarantine pH")
    add_alert(engine, 2, 2, "ph", "<", 7.8)


def cycle_at(engine: Engine, minutes: float, defaults: RuleOptions | None = None) -> None:
    """A cycle of a new worker, `minutes` after NOW."""
    clock = FixedClock(NOW + timedelta(minutes=minutes))
    RunCycle(
        SqlUnitOfWorkFactory(engine, LOG),
        clock,
        EvaluationPolicy(),
        LOG,
        **({"defaults": defaults} if defaults else {}),
    )()


def test_rules_set_show_and_clear_an_alerts_options(engine: Engine, tmp_path: Path) -> None:
    a_heater_and_a_probe(engine)
    url = url_of(engine)

    code, out, err = invoke(
        ["rules", "set", "1", "--pending", "5m", "--recovery-margin", "0.3"],
        tmp_path,
        DATABASE_URL=url,
    )
    assert code == 0, err
    assert out.splitlines()[1].split()[-4:] == ["5m", "0.3", "off", "(default)"]
    code, out, err = invoke(
        ["rules", "set", "1", "--no-data-after", "1h30m"],
        tmp_path,
        DATABASE_URL=url,
        REEF_ALERTS_DEFAULT_RECOVERY_MARGIN="1",
    )
    assert code == 0, err
    assert rule_store.rules_of(engine, 1)[0].rule == (300.0, 0.3, 5400.0)  # the others kept

    code, out, _ = invoke(["rules", "show"], tmp_path, DATABASE_URL=url)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["alert", "device", "condition"]
    assert lines[1].split()[:2] == ["1", "Frag"]
    assert "1h30m" in lines[1]
    assert lines[-2].startswith("Defaults (REEF_ALERTS_DEFAULT_* in this environment;")
    assert lines[-2].endswith(": none (the specification's rule)")
    assert lines[-1] == (
        "Trend alerts' defaults: trend window 1h, min samples 5, forecast horizon 2h, no rate "
        "limit, no smoothing"
    )

    code, out, _ = invoke(["rules", "clear", "1"], tmp_path, DATABASE_URL=url)
    assert code == 0, out
    assert "Alert 1 takes the defaults again" in out
    assert rule_store.rules_of(engine) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rules", "set", "99", "--pending", "5m"], "there is no alert 99"),
        (["rules", "set", "1", "--recovery-margin", "-0.3"], "--recovery-margin must be a finite"),
        (["rules", "set", "1", "--pending", "5 minutes"], "'5 minutes' is not a duration"),
        (["rules", "set", "1", "--pending", "8d"], "pending must be at most 7d"),
        (["rules", "show", "99"], "there is no alert 99"),
        (["rules", "clear", "99"], "there is no alert 99"),
    ],
)
def test_a_rules_command_a_keeper_gets_wrong_is_one_line_and_exit_1(
    sqlite_url: str, tmp_path: Path, args: list[str], message: str
) -> None:
    engine = make_engine(sqlite_url)
    a_heater_and_a_probe(engine)

    code, _, err = invoke(args, tmp_path, DATABASE_URL=sqlite_url)

    assert code == 1
    assert err.count("\n") == 1, err
    assert message in err
    assert rule_store.rules_of(engine) == []
    engine.dispose()


def test_rules_without_the_rules_table_says_to_upgrade(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    schema.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {rules.name}"))
    engine.dispose()

    code, _, err = invoke(["rules", "show"], tmp_path, DATABASE_URL=sqlite_url)

    assert code == 1
    assert "no rules table; `reef-alerts db upgrade` adds it" in err


def test_a_pending_condition_survives_a_new_worker_and_opens_its_event_on_time(
    engine: Engine,
) -> None:
    a_heater_and_a_probe(engine)
    rule_store.set_rule(engine, 1, {"pending_seconds": 300.0})
    for minute in range(5):
        add_reading(engine, 1, 82.4, now=NOW + timedelta(minutes=minute), age=timedelta(0))
        cycle_at(engine, minute)  # each cycle a new worker: only the tables remember
        assert events(engine) == []
    with engine.connect() as connection:
        assert connection.execute(select(*alert_state.c)).all() == [(1, NOW)]

    add_reading(engine, 1, 82.5, now=NOW + timedelta(minutes=5), age=timedelta(0))
    cycle_at(engine, 5)

    (event,) = events(engine)
    assert event["triggered_at"] == NOW + timedelta(minutes=5)
    assert event["metadata_"]["condition_since"] == NOW.isoformat()
    with engine.connect() as connection:
        assert connection.execute(select(*alert_state.c)).all() == []


def test_a_silent_device_opens_a_no_data_event_beside_its_open_threshold_event(
    engine: Engine,
) -> None:
    a_heater_and_a_probe(engine)
    rule_store.set_rule(engine, 1, {"no_data_after_seconds": 600.0})
    add_reading(engine, 1, 85.0, age=timedelta(0))
    cycle_at(engine, 0)
    cycle_at(engine, 11)

    threshold, silent = events(engine)
    assert (threshold["is_resolved"], silent["is_resolved"]) == (False, False)
    assert silent["current_value"] is None
    assert (silent["operator"], silent["threshold_value"], silent["metric"]) == (
        ">",
        82.0,
        "temperature",
    )
    assert silent["metadata_"]["kind"] == "no_data"
    assert silent["metadata_"]["silent_seconds"] == 660.0
    cycle_at(engine, 12)
    assert len(events(engine)) == 2  # one open no-data event, not another

    add_reading(engine, 1, 81.0, now=NOW + timedelta(minutes=13), age=timedelta(0))
    cycle_at(engine, 13)
    assert [e["is_resolved"] for e in events(engine)] == [True, True]


def test_default_options_give_every_alert_no_data_events(engine: Engine) -> None:
    a_heater_and_a_probe(engine)
    add_reading(engine, 1, 80.0, age=timedelta(0))
    cycle_at(engine, 0, RuleOptions(no_data_after=timedelta(minutes=10)))

    (silent,) = events(engine)  # the probe has never reported; the heater just did
    assert (silent["alert_id"], silent["metadata_"]["kind"]) == (2, "no_data")
    assert silent["metadata_"]["last_reading_at"] is None


def test_the_index_keeps_one_open_event_of_each_kind_per_alert(engine: Engine) -> None:
    a_heater_and_a_probe(engine)
    insert = text(
        "INSERT INTO alert_events (alert_id, device_id, threshold_value, operator, metric, "
        f"is_resolved, {events_metadata(engine)}) VALUES (1, 1, 82, '>', 'temperature', false, "
        ":metadata)"
    )
    with engine.begin() as connection:
        connection.execute(insert, {"metadata": '{"kind": "no_data"}'})
        connection.execute(insert, {"metadata": None})  # the web app's: a threshold event
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert, {"metadata": '{"kind": "no_data"}'})


def events_metadata(engine: Engine) -> str:
    return tables_of(engine).alert_events.c.metadata_.name


def test_upgrade_replaces_the_one_open_event_per_alert_index(engine: Engine) -> None:
    schema.upgrade(engine)
    # The predecessor as the previous version made it, in each dialect's words.
    unresolved = "is_resolved = 0" if engine.dialect.name == "sqlite" else "NOT is_resolved"
    with engine.begin() as connection:
        connection.execute(text(f"DROP INDEX {OPEN_EVENT_INDEX}"))
        connection.execute(
            text(
                f"CREATE UNIQUE INDEX {OLD_OPEN_EVENT_INDEX} ON alert_events (alert_id) "
                f"WHERE {unresolved}"
            )
        )
        assert schema.open_event_index(connection) == OLD_OPEN_EVENT_INDEX
    add_device(engine, 1)
    add_alert(engine, 1, 1)
    add_reading(engine, 1, 85.0)
    assert run_cycle(engine).triggered == 1  # the old index still guards a threshold event

    schema.upgrade(engine)

    with engine.connect() as connection:
        assert schema.open_event_index(connection) == OPEN_EVENT_INDEX
        catalogue = (
            "SELECT name FROM sqlite_master WHERE type = 'index'"
            if engine.dialect.name == "sqlite"
            else "SELECT indexname FROM pg_indexes"
        )
        names = set(connection.scalars(text(catalogue)))
    assert OPEN_EVENT_INDEX in names
    assert OLD_OPEN_EVENT_INDEX not in names


@pytest.mark.postgres
def test_a_deleted_alert_takes_its_options_and_state_with_it(
    app_postgres_url: str,
) -> None:
    engine = make_engine(app_postgres_url)
    a_heater_and_a_probe(engine)
    rule_store.set_rule(engine, 1, {"pending_seconds": 300.0})
    add_reading(engine, 1, 82.4, age=timedelta(0))
    cycle_at(engine, 0)

    with engine.begin() as connection:
        connection.execute(text("DELETE FROM alerts WHERE id = 1"))  # as the web app does
        assert connection.execute(select(rules.c.alert_id)).all() == []
        assert connection.execute(select(alert_state.c.alert_id)).all() == []
    engine.dispose()


def test_default_options_on_a_database_without_the_rule_tables_are_said_once_and_ignored(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    a_heater_and_a_probe(engine)
    with engine.begin() as connection:
        for table in (rules, alert_state):
            connection.execute(text(f"DROP TABLE {table.name}"))
    defaults = RuleOptions(no_data_after=timedelta(minutes=10))
    cycle = RunCycle(
        SqlUnitOfWorkFactory(engine, LOG), FixedClock(), EvaluationPolicy(), LOG, defaults=defaults
    )

    with caplog.at_level(logging.WARNING, logger="alert_worker"):
        cycle()
        cycle()

    said = [
        r.getMessage() for r in caplog.records if "need the worker's rule tables" in r.getMessage()
    ]
    assert said == [
        "The default rule options (no data after 10m) need the worker's rule tables and its "
        "index of one open event per kind: every alert is evaluated by the specification's rule "
        "until `reef-alerts db upgrade` has been run"
    ]
    assert events(engine) == []


def test_a_dry_run_says_which_no_data_events_it_would_open(engine: Engine, tmp_path: Path) -> None:
    a_heater_and_a_probe(engine)
    rule_store.set_rule(engine, 2, {"no_data_after_seconds": 600.0})

    code, out, err = invoke(
        ["run", "--dry-run", "--log-file", "-"], tmp_path, DATABASE_URL=url_of(engine)
    )

    assert code == 0, err
    assert "would open a no-data event for alert 2: device 'Quarantine pH' has never sent a " in out
    assert events(engine) == []


def test_rules_on_a_missing_database_file_says_so_and_makes_none(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"

    code, _, err = invoke(["rules", "show"], tmp_path, DATABASE_URL=f"sqlite:///{missing}")

    assert code == 1
    assert f"no SQLite file at {missing}" in err
    assert not missing.exists()


def test_setting_every_option_back_to_the_default_removes_the_alerts_row(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    a_heater_and_a_probe(engine)
    rule_store.set_rule(engine, 1, {"pending_seconds": 60.0})

    code, _, err = invoke(
        ["rules", "set", "1", "--pending", "default"], tmp_path, DATABASE_URL=sqlite_url
    )

    assert code == 0, err
    assert rule_store.rules_of(engine) == []
    engine.dispose()


def test_a_stored_option_edited_by_hand_is_shown_and_named_when_it_blocks_an_edit(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    a_heater_and_a_probe(engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                f"INSERT INTO {rules.name} (alert_id, recovery_margin, updated_at) "
                "VALUES (1, 'abc', '2026-12-03 00:00:00')"
            )
        )

    code, out, err = invoke(["rules", "show"], tmp_path, DATABASE_URL=sqlite_url)
    assert code == 0, err
    assert "INVALID ('abc')" in out
    code, _, err = invoke(
        ["rules", "set", "1", "--pending", "5m"], tmp_path, DATABASE_URL=sqlite_url
    )
    assert code == 1
    assert "alert 1's stored options are invalid (--recovery-margin must be a number" in err
    assert "`reef-alerts rules clear 1`" in err
    engine.dispose()


def test_upgrade_makes_a_worker_table_again_that_was_dropped_after_its_revision(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    schema.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {rules.name}"))
    assert (
        "result: the worker can run; run `reef-alerts db upgrade`"
        in schema.check(engine).lines()[-1]
    )

    report = schema.upgrade(engine)

    assert report.worker_objects[rules.name]
    assert report.lines()[-1] == "result: ready"
    engine.dispose()
