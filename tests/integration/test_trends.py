"""Trend alerts on real databases, both generations (issue 13): forecast events that open before
the threshold event, trend options set with `reef-alerts rules`, pending forecasts kept in the
trend state table across workers, `reef-alerts alerts` telling each trend alert's rate and
forecast, and a database without the trend tables."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, select, text

from reef_alerts.adapters import rule_store, schema
from reef_alerts.adapters.tables import trend_rules, trend_state
from reef_alerts.adapters.unit_of_work import SqlUnitOfWorkFactory
from reef_alerts.application import RunCycle
from reef_alerts.domain import EvaluationPolicy

from .reef import NOW, FixedClock, add_alert, add_device, add_many, events
from .test_cli import invoke

LOG = logging.getLogger("alert_worker")
STEP = timedelta(minutes=5)


def url_of(engine: Engine) -> str:
    return str(engine.url.render_as_string(False))


def a_ph_probe_with_a_trend_alert(engine: Engine) -> None:
    """A pH probe polled every five minutes, `ph < 7.9` with trend rules on."""
    schema.upgrade(engine)
    add_device(engine, 1, "Display Tank pH", device_type="ph", unit="pH", poll_interval=300)
    add_alert(engine, 1, 1, "ph", "<", 7.9, trend_enabled=True)


def slide(
    engine: Engine,
    start: float,
    per_hour: float,
    hours: float,
    *,
    first: int = 0,
    device_id: int = 1,
) -> datetime:
    """A reading every five minutes from NOW for `hours`, moving `per_hour` from `start`, each
    judged by a worker of its own (nothing kept in memory between them); the last instant."""
    at = NOW
    for n in range(first, first + round(hours * 12)):
        at = NOW + n * STEP
        ph = start + per_hour * (n - first) / 12
        add_many(
            engine, "history", [{"device_id": device_id, "timestamp": at, "json_value": {"ph": ph}}]
        )
        RunCycle(SqlUnitOfWorkFactory(engine, LOG), FixedClock(at), EvaluationPolicy(), LOG)()
    return at


def kinds(engine: Engine) -> dict[str, list[dict[str, object]]]:
    found: dict[str, list[dict[str, object]]] = {}
    for event in events(engine):
        kind = (event["metadata_"] or {}).get("kind", "threshold")
        found.setdefault(kind, []).append(event)
    return found


def test_a_forecast_event_opens_hours_before_the_threshold_event_and_resolves_with_it(
    engine: Engine,
) -> None:
    a_ph_probe_with_a_trend_alert(engine)
    rule_store.set_rule(engine, 1, {"pending_seconds": 900.0})

    slide(engine, 8.30, -0.04, hours=11)

    found = kinds(engine)
    (forecast,), (threshold,) = found["forecast"], found["threshold"]
    opened, crossed = forecast["triggered_at"], threshold["triggered_at"]
    assert isinstance(opened, datetime)
    assert isinstance(crossed, datetime)
    assert crossed - opened >= timedelta(hours=1, minutes=30)
    assert forecast["is_resolved"]
    assert forecast["resolved_at"] == crossed
    metadata = forecast["metadata_"]
    assert isinstance(metadata, dict)
    assert metadata["rate_per_hour"] == pytest.approx(-0.04)
    predicted = datetime.fromisoformat(str(metadata["predicted_crossing_at"]))
    # The forecast's crossing is the threshold's own, give or take the pending duration it
    # waits out after the crossing.
    assert abs(predicted.replace(tzinfo=None) - crossed.replace(tzinfo=None)) <= timedelta(
        minutes=20
    )
    with engine.connect() as connection:
        assert connection.execute(select(trend_state)).all() == []


def test_rules_set_stores_trend_options_and_rules_show_lists_them(
    engine: Engine, tmp_path: Path
) -> None:
    a_ph_probe_with_a_trend_alert(engine)
    url = url_of(engine)

    code, out, err = invoke(
        [
            *("rules", "set", "1", "--trend-window", "2h", "--forecast-horizon", "3h"),
            *("--max-rate-per-hour", "0.05", "--smoothing", "on", "--min-samples", "8"),
        ],
        tmp_path,
        DATABASE_URL=url,
    )

    assert code == 0, out + err
    assert "2h" in out
    assert "3h" in out
    assert "0.05" in out
    assert "on" in out
    with engine.connect() as connection:
        row = connection.execute(select(trend_rules)).one()
    assert (row.trend_window_seconds, row.min_samples, row.forecast_horizon_seconds) == (
        7200.0,
        8,
        10800.0,
    )
    assert (row.max_rate_per_hour, bool(row.smoothing)) == (0.05, True)

    code, out, _ = invoke(["rules", "show"], tmp_path, DATABASE_URL=url)
    assert code == 0
    assert "max rate per hour" in out
    assert "0.05" in out

    code, out, _ = invoke(["rules", "clear", "1"], tmp_path, DATABASE_URL=url)
    assert code == 0, out
    with engine.connect() as connection:
        assert connection.execute(select(trend_rules)).all() == []


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--min-samples", "1"], "--min-samples must be a whole number from 2 to 10,000"),
        (["--min-samples", "-3"], "--min-samples must be a whole number from 2 to 10,000"),
        (["--min-samples", "five"], "--min-samples: 'five' is not a whole number"),
        (["--smoothing", "maybe"], "--smoothing: 'maybe' is not on, off or default"),
        (["--smoothing", "on", "--min-samples", "2"], "--smoothing needs --min-samples of 3"),
        (["--trend-window", "8d"], "--trend-window must be more than 0 and at most 7d"),
        (["--max-rate-per-hour", "-1"], "--max-rate-per-hour must be a finite number above 0"),
    ],
)
def test_rules_set_refuses_trend_options_it_cannot_use_in_one_line(
    sqlite_url: str, tmp_path: Path, args: list[str], said: str
) -> None:
    from reef_alerts.adapters.database import make_engine

    engine = make_engine(sqlite_url)
    a_ph_probe_with_a_trend_alert(engine)

    code, _out, err = invoke(["rules", "set", "1", *args], tmp_path, DATABASE_URL=sqlite_url)

    assert code != 0
    assert said in err, err
    assert len(err.strip().splitlines()) == 1
    with engine.connect() as connection:
        assert connection.execute(select(trend_rules)).all() == []
    engine.dispose()


def test_rules_set_says_when_the_devices_polls_can_never_fill_the_window(
    sqlite_url: str, tmp_path: Path
) -> None:
    from reef_alerts.adapters.database import make_engine

    engine = make_engine(sqlite_url)
    schema.upgrade(engine)
    add_device(engine, 1, "Display Tank pH", device_type="ph", unit="pH", poll_interval=900)
    add_alert(engine, 1, 1, "ph", "<", 7.9, trend_enabled=True)
    engine.dispose()

    code, out, err = invoke(
        ["rules", "set", "1", "--trend-window", "30m", "--smoothing", "on"],
        tmp_path,
        DATABASE_URL=sqlite_url,
    )

    assert code == 0, err
    assert (
        "note: the device is polled every 15m: a 30m window holds about 2 of its readings, "
        "fewer than the 5 a trend needs, so it never tells one (a smoothed alert is skipped)"
    ) in out


def test_alerts_tells_each_trend_alerts_rate_and_forecast(engine: Engine, tmp_path: Path) -> None:
    a_ph_probe_with_a_trend_alert(engine)
    add_device(engine, 2, "Sump pH", device_type="ph", unit="pH", poll_interval=300)
    add_alert(engine, 2, 2, "ph", "<", 7.9, trend_enabled=True)
    add_device(engine, 3, "Refugium pH", device_type="ph", unit="pH", poll_interval=300)
    add_alert(engine, 3, 3, "ph", "<", 7.9, trend_enabled=True)
    now = datetime.now(UTC)  # the command judges at its own clock's instant
    add_many(
        engine,
        "history",
        [
            {"device_id": 3, "timestamp": now - n * STEP, "value": 8.2 + 0.05 * n / 12}
            for n in range(12)
        ],
    )
    last = slide(engine, 8.30, -0.1, hours=2.5)

    from reef_alerts.adapters.reports import alert_report

    report = alert_report(engine, now=last)

    first, second, _ = report.lines
    assert (first.state, second.state) == ("forecast", "skipped")
    assert first.trend.startswith("-0.1/h over 12 readings; forecast < 7.9 at ")
    assert "forecast event open" in first.trend
    assert second.trend == "no trend: 0 readings in the last 1h, fewer than the 5 a trend needs"
    code, out, _ = invoke(["alerts"], tmp_path, DATABASE_URL=url_of(engine))
    assert code == 0
    assert "trend" in out.splitlines()[0]
    (refugium,) = [line for line in out.splitlines() if "Refugium" in line]
    assert "-0.05/h over 12 readings" in refugium


def test_without_the_trend_tables_a_trend_alert_is_judged_on_its_threshold_alone(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    a_ph_probe_with_a_trend_alert(engine)
    with engine.begin() as connection:
        for table in ("reef_alerts_trend_state", "reef_alerts_trend_rules"):
            connection.execute(text(f"DROP TABLE {table}"))

    with caplog.at_level(logging.WARNING):
        slide(engine, 8.30, -0.1, hours=5)

    assert set(kinds(engine)) == {"threshold"}
    assert "judged on their threshold alone until `reef-alerts db upgrade`" in caplog.text

    schema.upgrade(engine)
    add_device(engine, 2, "Sump pH", device_type="ph", unit="pH", poll_interval=300)
    add_alert(engine, 2, 2, "ph", "<", 7.9, trend_enabled=True)
    slide(engine, 8.30, -0.1, hours=3, first=60, device_id=2)
    assert [e["alert_id"] for e in kinds(engine)["forecast"]] == [2]


def test_downgrading_past_the_trend_tables_resolves_the_trend_events_left_open(
    engine: Engine,
) -> None:
    a_ph_probe_with_a_trend_alert(engine)
    slide(engine, 8.30, -0.1, hours=3)
    assert not kinds(engine)["forecast"][0]["is_resolved"]
    config = schema._alembic_config()

    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")
        connection.commit()

    (forecast,) = kinds(engine)["forecast"]
    assert forecast["is_resolved"]
    names = inspect(engine).get_table_names()
    assert "reef_alerts_trend_rules" not in names
    assert "reef_alerts_rules" in names
    schema.upgrade(engine)  # and back
    assert "reef_alerts_trend_state" in inspect(engine).get_table_names()
