"""`reef-alerts preview` on real databases of both generations: the stored alert replayed
through the live state machine over its device's history, drafts, what it prints, its errors."""

from __future__ import annotations

import json
import math
from datetime import timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine

from reef_alerts.adapters import rule_store, schema
from reef_alerts.adapters.database import make_engine

from .reef import NOW, add_alert, add_device, add_reading, events
from .test_cli import invoke

UNTIL = (NOW + timedelta(minutes=1)).isoformat()


def a_hovering_heater(engine: Engine) -> str:
    """Alert 1, `temperature > 82`, on a heater read every minute for two hours, swinging
    ±0.3 °F around 82 °F; the database's URL."""
    schema.upgrade(engine)
    add_device(engine, 1, "Frag Tank Heater")
    add_alert(engine, 1, 1, "temperature", ">", 82.0)
    for minute in range(120):
        value = 82.0 + 0.3 * math.sin(minute * math.pi / 5)
        add_reading(engine, 1, value, age=timedelta(minutes=119 - minute))
    return str(engine.url.render_as_string(False))


def test_preview_counts_the_events_as_stored_and_with_options_tried(
    engine: Engine, tmp_path: Path
) -> None:
    url = a_hovering_heater(engine)

    code, out, err = invoke(
        [
            "preview",
            "--alert",
            "1",
            "--since",
            "2h",
            "--until",
            UNTIL,
            "--pending",
            "5m",
            "--recovery-margin",
            "0.3",
        ],
        tmp_path,
        DATABASE_URL=url,
    )

    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith("Alert 1 (Frag Tank Heater: temperature > 82) would have fired 0 times")
    assert (
        "with pending 5m, recovery margin 0.3; 12 times (48m in alert, 11 flaps) as stored" in first
    )
    assert "Frag Tank Heater: temperature > 82" in out.splitlines()[1]  # the chart's title
    assert "(no event)" in out
    assert events(engine) == []  # a preview writes nothing


def test_preview_json_is_the_timeline_and_its_comparison(engine: Engine, tmp_path: Path) -> None:
    url = a_hovering_heater(engine)
    rule_store.set_rule(engine, 1, {"pending_seconds": 300.0})

    code, out, err = invoke(
        ["preview", "--alert", "1", "--since", "2h", "--until", UNTIL, "--json", "--pending", "0"],
        tmp_path,
        DATABASE_URL=url,
    )

    assert code == 0, err
    found = json.loads(out)
    assert found["options"]["pending_seconds"] == 0.0
    assert found["timeline"]["counts"]["events"] == 12
    assert found["compared"]["options"]["pending_seconds"] == 300.0  # as stored
    assert found["compared"]["timeline"]["counts"]["events"] == 0
    told = sum(segment["evaluations"] for segment in found["timeline"]["segments"])
    assert told == found["timeline"]["counts"]["evaluations"] == 2 * 120 + 1  # 30 s, both ends


def test_a_draft_alert_is_previewed_against_the_specifications_rule(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    a_hovering_heater(engine)

    code, out, err = invoke(
        [
            "preview",
            "--device",
            "1",
            "--metric",
            "temperature",
            "--op",
            ">=",
            "--threshold",
            "82.2",
            "--no-data-after",
            "10m",
            "--since",
            "2h",
            "--until",
            UNTIL,
        ],
        tmp_path,
        DATABASE_URL=sqlite_url,
    )

    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith("The draft alert (Frag Tank Heater: temperature >= 82.2) would have")
    assert first.endswith("with the default options alone (Frag Tank Heater: temperature >= 82.2)")
    engine.dispose()


def test_the_headline_counts_the_no_data_events_a_silent_device_would_have_opened(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    a_hovering_heater(engine)

    code, out, err = invoke(
        [
            "preview",
            "--alert",
            "1",
            "--no-data-after",
            "10m",
            "--since",
            "2h",
            "--until",
            (NOW + timedelta(minutes=30)).isoformat(),
        ],
        tmp_path,
        DATABASE_URL=sqlite_url,
    )

    assert code == 0, err
    assert "and opened 1 no-data event with no data after 10m" in out.splitlines()[0]
    assert "no-data" in out  # in the table of events
    engine.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alert", "9"], "there is no alert 9"),
        (["--device", "9", "--metric", "t", "--op", ">", "--threshold", "1"], "no device 9"),
        (["--device", "1", "--metric", "t"], "give --alert ID, or a draft's --device"),
        (["--alert", "1", "--op", "=>"], "--op: unknown operator '=>'"),
        (["--alert", "1", "--since", "yesterday"], "--since: 'yesterday' is not a duration"),
        (["--alert", "1", "--until", "noon"], "--until: 'noon' is not an ISO date"),
        (["--alert", "1", "--recovery-margin", "-1"], "--recovery-margin must be a finite"),
        (["--alert", "1", "--step", "0s"], "--step must be longer than 0"),
        (["--alert", "1", "--device", "1"], "give them or --alert, not both"),
        (["--alert", "1", "--until", "0001-01-01T00:05"], "the range would start before"),
    ],
)
def test_a_preview_a_keeper_gets_wrong_is_one_line(
    sqlite_url: str, tmp_path: Path, args: list[str], message: str
) -> None:
    engine = make_engine(sqlite_url)
    a_hovering_heater(engine)

    code, _, err = invoke(["preview", *args], tmp_path, DATABASE_URL=sqlite_url)

    assert code in (1, 2)
    assert err.count("\n") == 1, err
    assert message in err
    engine.dispose()


def test_the_reading_before_the_range_is_the_first_evaluations_however_old(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    schema.upgrade(engine)
    add_device(engine, 1, "Return pump controller", poll_enabled=False)  # pushes; never stale
    add_alert(engine, 1, 1, "temperature", ">", 82.0)
    add_reading(engine, 1, 85.0, age=timedelta(hours=3))
    url = str(engine.url.render_as_string(False))

    code, out, err = invoke(
        ["preview", "--alert", "1", "--since", "1h", "--until", NOW.isoformat(), "--json"],
        tmp_path,
        DATABASE_URL=url,
    )

    assert code == 0, err
    timeline = json.loads(out)["timeline"]
    assert timeline["counts"]["events"] == 1  # opened at the range's start, as the worker had
    assert timeline["events"][0]["opened_at"] == (NOW - timedelta(hours=1)).isoformat()
    engine.dispose()


def test_a_disabled_alert_is_previewed_as_if_enabled_and_says_so(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    url = a_hovering_heater(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alerts SET is_enabled = 0 WHERE id = 1")

    code, out, err = invoke(
        ["preview", "--alert", "1", "--since", "2h", "--until", UNTIL], tmp_path, DATABASE_URL=url
    )

    assert code == 0, err
    assert "would have fired 12 times" in out.splitlines()[0]
    assert "note: alert 1 is disabled: previewed as if enabled" in out
    engine.dispose()


def test_an_until_with_an_offset_is_read_as_the_instant_it_names(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    url = a_hovering_heater(engine)
    local = (NOW + timedelta(minutes=1)).astimezone(timezone(timedelta(hours=2))).isoformat()

    code, out, err = invoke(
        ["preview", "--alert", "1", "--since", "2h", "--until", local, "--json"],
        tmp_path,
        DATABASE_URL=url,
    )

    assert code == 0, err
    assert json.loads(out)["timeline"]["to"] == (NOW + timedelta(minutes=1)).isoformat()
    engine.dispose()
