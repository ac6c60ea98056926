"""Why didn't my alert fire? The worker records why an alert cannot be judged, and since when,
warns once when that changes, and `reef-alerts alerts` shows every alert's state (ADR 13)."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from reef_alerts.adapters import schema
from reef_alerts.adapters.tables import alert_status
from reef_alerts.adapters.unit_of_work import SqlUnitOfWorkFactory
from reef_alerts.application import RunCycle
from reef_alerts.domain import EvaluationPolicy

from .reef import NOW, FixedClock, add_alert, add_device, add_reading, run_cycle
from .test_cli import invoke


def a_reef_with_every_state(engine: Engine) -> None:
    add_device(engine, 1, "Heater")
    add_alert(engine, 1, 1, "temperature", ">", 82.0)  # firing
    add_alert(engine, 2, 1, "temperature", "<", 70.0)  # ok
    add_alert(engine, 3, 1, "temperature", "=>", 70.0)  # error: no such operator
    add_alert(engine, 4, 1, "temperature", ">", 90.0, is_enabled=False)
    add_reading(engine, 1, 85.2)
    add_device(engine, 2, "Old pH probe", is_active=False)
    add_alert(engine, 5, 2, "ph", "<", 7.8)  # skipped: the device is inactive


def test_the_alerts_command_shows_each_alerts_state_and_why_it_cannot_be_judged(
    engine: Engine, tmp_path: Path
) -> None:
    schema.upgrade(engine)
    a_reef_with_every_state(engine)
    run_cycle(engine)

    code, out, _ = invoke(
        ["alerts"], tmp_path, DATABASE_URL=str(engine.url.render_as_string(False))
    )

    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split() == [
        *("alert", "device", "condition", "options", "state", "since", "reason")
    ]
    by_alert = {line.split()[0]: line for line in lines[1:]}
    assert by_alert["1"].split()[1:7] == ["Heater", "temperature", ">", "82", "-", "firing"]
    assert "2026-11-29 12:00 UTC" in by_alert["1"]
    assert by_alert["2"].split()[6] == "ok"
    assert " error " in by_alert["3"]
    assert "unknown operator '=>'" in by_alert["3"]
    assert by_alert["4"].split()[6] == "disabled"
    assert " skipped " in by_alert["5"]
    assert "device 'Old pH probe' is inactive" in by_alert["5"]


def test_the_alerts_command_shows_only_the_states_asked_for(engine: Engine, tmp_path: Path) -> None:
    schema.upgrade(engine)
    a_reef_with_every_state(engine)
    run_cycle(engine)

    code, out, _ = invoke(
        ["alerts", "--state", "SKIPPED", "--state", "error"],  # as a person may type it
        tmp_path,
        DATABASE_URL=str(engine.url.render_as_string(False)),
    )

    assert code == 0, out
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["3", "5"]


def test_a_restarted_worker_keeps_the_reason_and_its_time_and_warns_no_more(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    schema.upgrade(engine)
    a_reef_with_every_state(engine)
    run_cycle(engine)
    caplog.clear()

    with caplog.at_level(logging.WARNING, logger="alert_worker"):
        run_cycle(engine, FixedClock(NOW + timedelta(minutes=1)))  # a new worker

    assert caplog.records == []
    with engine.connect() as connection:
        since = dict(
            connection.execute(select(alert_status.c.alert_id, alert_status.c.since)).all()
        )
    assert since == {3: NOW, 5: NOW}


def test_an_alert_that_can_be_judged_again_loses_its_status(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    schema.upgrade(engine)
    a_reef_with_every_state(engine)
    run_cycle(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE devices SET is_active = true WHERE id = 2"))
    add_reading(engine, 2, 7.5)

    with caplog.at_level(logging.INFO, logger="alert_worker"):
        stats = run_cycle(engine)

    assert stats.triggered == 1
    assert "Alert 5 is judged again (it was skipped since 2026-11-29 12:00:00 UTC)" in caplog.text
    with engine.connect() as connection:
        assert list(connection.scalars(select(alert_status.c.alert_id))) == [3]


def test_without_the_status_table_a_worker_still_warns_once_and_the_command_says_what_it_lacks(
    engine: Engine, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    a_reef_with_every_state(engine)  # the web app's tables, never upgraded
    log = logging.getLogger("alert_worker")
    cycle = RunCycle(SqlUnitOfWorkFactory(engine, log), FixedClock(), EvaluationPolicy(), log)

    with caplog.at_level(logging.WARNING, logger="alert_worker"):
        cycle()
        cycle()

    warned = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Alert ")]
    assert [w.split(":")[0] for w in warned] == [
        "Alert 3 could not be evaluated",
        "Alert 5 is skipped",
    ]
    code, out, _ = invoke(
        ["alerts"], tmp_path, DATABASE_URL=str(engine.url.render_as_string(False))
    )
    assert code == 0, out
    assert " firing " in out.splitlines()[1]
    assert out.splitlines()[2].endswith(" unknown")
    assert "`reef-alerts db upgrade` adds it" in out


def test_the_alerts_command_shows_options_and_pending_and_no_data_states(
    engine: Engine, tmp_path: Path
) -> None:
    schema.upgrade(engine)
    add_device(engine, 1, "Heater")
    add_alert(engine, 1, 1, "temperature", ">", 82.0)
    add_reading(engine, 1, 82.4)
    add_device(engine, 2, "Quarantine pH")  # never reports
    add_alert(engine, 2, 2, "ph", "<", 7.8)
    url = str(engine.url.render_as_string(False))
    for alert_id, options in (("1", ["--pending", "5m"]), ("2", ["--no-data-after", "10m"])):
        code, out, err = invoke(["rules", "set", alert_id, *options], tmp_path, DATABASE_URL=url)
        assert code == 0, err
    run_cycle(engine)

    code, out, _ = invoke(["alerts"], tmp_path, DATABASE_URL=url)

    assert code == 0, out
    by_alert = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "pending 5m" in by_alert["1"]
    assert " pending " in by_alert["1"].replace("pending 5m", "")
    assert "2026-11-29 12:00 UTC" in by_alert["1"]
    assert "no data after 10m" in by_alert["2"]
    assert " no_data " in by_alert["2"]
    assert "the device has sent no reading for too long" in by_alert["2"]
