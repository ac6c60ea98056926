"""No single bad row stops alerting: a row that cannot be read costs only the alerts that depend
on it (ADR 12). Hostile values as a person or a bug could leave them, on both backends."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, reject, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from reef_alerts.adapters import schema
from reef_alerts.adapters.database import make_engine
from reef_alerts.adapters.tables import Generation, tables_for
from reef_alerts.adapters.unit_of_work import SqlUnitOfWorkFactory
from reef_alerts.application import RunCycle
from reef_alerts.domain import EvaluationPolicy

from .reef import (
    NOW,
    FixedClock,
    add_alert,
    add_device,
    add_reading,
    events,
    make_app_tables,
    open_alert_ids,
    run_cycle,
    tables_of,
)

DEEP_LIST = "[" * 10_000 + "]" * 10_000
DEEP_OBJECT = '{"a": ' * 10_000 + "1" + "}" * 10_000


@pytest.fixture
def reef(engine: Engine) -> Engine:
    """An upgraded database: a heater that is too hot, and the device under test, 2."""
    schema.upgrade(engine)
    add_device(engine, 1, "Main Tank")
    add_alert(engine, 1, 1, "temperature", ">", 82.0)
    add_reading(engine, 1, 85.2)
    add_device(engine, 2, "Sump")
    return engine


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize("column", ["json_value", "metadata_"])
def test_json_nested_ten_thousand_levels_deep_costs_only_the_alerts_that_read_it(
    reef: Engine, column: str, caplog: pytest.LogCaptureFixture
) -> None:
    add_alert(reef, 2, 2, "signal", ">", -60.0)  # looks into both JSON columns
    add_alert(reef, 3, 2, "temperature", ">", 82.0)  # found in json_value
    documents = {"json_value": '{"temperature": 90.0}', "metadata_": None} | {column: DEEP_OBJECT}
    history = tables_of(reef).history
    with reef.begin() as connection:  # as text: Python's own json cannot write it either
        connection.execute(
            text(
                f"INSERT INTO history (device_id, timestamp, json_value, "
                f"{history.c.metadata_.name}) VALUES (2, :at, CAST(:document AS JSON), "
                "CAST(:metadata AS JSON))"
                if reef.dialect.name == "postgresql"
                else f"INSERT INTO history (device_id, timestamp, json_value, "
                f"{history.c.metadata_.name}) VALUES (2, :at, :document, :metadata)"
            ),
            {
                "at": (NOW - timedelta(seconds=10)).replace(tzinfo=None).isoformat(" "),
                "document": documents["json_value"],
                "metadata": documents["metadata_"],
            },
        )

    with caplog.at_level(logging.WARNING, logger="alert_worker"):
        stats = run_cycle(reef)

    warnings = sorted(_warnings(caplog))
    where = "json_value" if column == "json_value" else "metadata"
    if column == "json_value":  # read at once: every alert of the device depends on it
        assert (stats.errors, stats.triggered) == (2, 1)
        assert [w.split(":")[0] for w in warnings] == [
            "Alert 2 could not be evaluated",
            "Alert 3 could not be evaluated",
        ]
        assert warnings[0].startswith("Alert 2 could not be evaluated: reading 2 of device 2: ")
        assert open_alert_ids(reef) == [1]
    else:  # read when looked into: alert 3 finds its metric before
        assert (stats.errors, stats.triggered) == (1, 2)
        assert len(warnings) == 1
        assert warnings[0].startswith("Alert 2 could not be evaluated: device 2, reading 2: ")
        assert open_alert_ids(reef) == [1, 3]
    assert f"history.{where} nests JSON deeper than it can be decoded" in warnings[0]


@pytest.mark.parametrize(
    ("column", "stored"),
    [
        ("timestamp", "yesterday"),
        ("timestamp", ""),
        ("timestamp", "2026-13-45"),
        ("timestamp", 20261202),
        ("poll_interval", "fast"),
    ],
)
def test_sqlite_values_of_the_wrong_form_cost_only_their_devices_alerts(
    sqlite_url: str, column: str, stored: object, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(sqlite_url)
    schema.upgrade(engine)
    for device_id in (1, 2):
        add_device(engine, device_id)
        add_alert(engine, device_id, device_id)
        add_reading(engine, device_id, 85.2)
    table = "history" if column == "timestamp" else "devices"
    with engine.begin() as connection:  # SQLite keeps whatever it is given
        connection.execute(text(f"UPDATE {table} SET {column} = :v WHERE id = 2"), {"v": stored})

    with caplog.at_level(logging.WARNING, logger="alert_worker"):
        stats = run_cycle(engine)

    assert (stats.total_alerts, stats.errors, stats.triggered) == (2, 1, 1)
    assert open_alert_ids(engine) == [1]
    [warning] = _warnings(caplog)
    assert warning.startswith("Alert 2 could not be evaluated: ")
    assert "device 2" in warning
    assert f"{column} {stored!r}" in warning
    engine.dispose()


def test_a_device_polled_every_68_years_cannot_keep_a_reading_from_1990_fresh(
    reef: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with reef.begin() as connection:
        connection.execute(text("UPDATE devices SET poll_interval = 2147483647 WHERE id = 2"))
    add_alert(reef, 2, 2, "temperature", ">", 82.0)
    add_reading(reef, 2, 99.0, age=NOW - NOW.replace(year=1990))

    with caplog.at_level(logging.DEBUG, logger="alert_worker"):
        stats = run_cycle(reef)

    assert (stats.skipped, stats.triggered) == (1, 1)
    assert open_alert_ids(reef) == [1]
    assert "capped at 1 day" in caplog.text


def test_an_alert_whose_is_enabled_is_null_is_evaluated_and_a_warning_says_so(
    reef: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    add_alert(reef, 2, 2, "temperature", ">", 82.0, is_enabled=None)
    add_reading(reef, 2, 90.0)

    log = logging.getLogger("alert_worker")
    cycle = RunCycle(SqlUnitOfWorkFactory(reef, log), FixedClock(), EvaluationPolicy(), log)
    with caplog.at_level(logging.WARNING, logger="alert_worker"):
        stats = cycle()
        cycle()  # the same worker's next cycle: said once is enough

    assert stats.triggered == 2
    assert open_alert_ids(reef) == [1, 2]
    assert _warnings(caplog) == [
        "Alert 2: its is_enabled is NULL, neither true nor false; it is evaluated as the "
        "column's default, enabled (set it to true or false)"
    ]


def test_a_device_whose_readings_have_no_timestamp_is_skipped_saying_so(
    reef: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    add_alert(reef, 2, 2, "temperature", ">", 82.0)
    with reef.begin() as connection:
        for value in (90.0, 91.0):
            connection.execute(
                text("INSERT INTO history (device_id, timestamp, value) VALUES (2, NULL, :v)"),
                {"v": value},
            )

    with caplog.at_level(logging.DEBUG, logger="alert_worker"):
        stats = run_cycle(reef)

    assert (stats.skipped, stats.triggered) == (1, 1)
    assert (
        "Alert 2 is skipped: device 'Sump''s newest reading 3 has no timestamp, so its age cannot "
        "be judged" in caplog.text
    )


def test_text_sqlite_cannot_decode_costs_no_alert(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    schema.upgrade(engine)
    for device_id in (1, 2):
        add_device(engine, device_id)
        add_alert(engine, device_id, device_id)
        add_reading(engine, device_id, 85.2)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE devices SET name = CAST(x'54616e6bff' AS TEXT) WHERE id = 2")
        )

    stats = run_cycle(engine)

    assert (stats.errors, stats.triggered) == (0, 2)
    assert [e["metadata_"]["device_name"] for e in events(engine)] == ["Main Tank", "Tank\ufffd"]
    engine.dispose()


# One corrupted row, any table, any column: every other alert's events are those of the
# uncorrupted database.

SEED_DEVICES = [
    # id, name, type, polled
    (1, "Display Tank Heater", "heater", True),
    (2, "Multi-sensor", "multi_sensor", True),
    (3, "pH probe", "ph_probe", True),
    (4, "Pushed probe", "orp_probe", False),
]
SEED_READINGS = [
    # device, age in seconds, value, json_value, metadata
    (1, 70, 81.0, None, {"signal": -70}),
    (1, 10, 85.2, None, {"signal": -50}),
    (2, 70, None, {"temperature": 79.0, "probe1": {"ph": 8.3}}, None),
    (2, 10, None, {"temperature": 81.0, "probe1": {"ph": 7.9}}, {"signal": -40}),
    (3, 70, 7.6, None, None),
    (3, 10, 8.1, None, None),
    (4, 9000, 420.0, None, {"signal": -55}),
]
SEED_ALERTS = [
    # id, device, metric, operator, threshold
    (1, 1, "temperature", ">", 82.0),
    (2, 2, "temperature", ">", 80.0),
    (3, 2, "probe1.ph", "<", 8.0),
    (4, 3, "ph", "<", 7.8),
    (5, 4, "signal", ">", -60.0),
    (6, 1, "temperature", "<", 70.0),
]
OPEN_EVENT_OF = 4
"""The alert seeded with an open event (the cycle resolves it); alert 1 has a resolved one."""

COLUMNS = {
    "devices": ["name", "device_type", "unit", "is_active", "poll_enabled", "poll_interval"],
    "history": ["device_id", "timestamp", "value", "json_value", "metadata_"],
    "alerts": ["device_id", "metric", "operator", "threshold_value", "is_enabled", "trend_enabled"],
    "alert_events": ["alert_id", "device_id", "is_resolved", "metric", "metadata_"],
}
ROWS = {"devices": 4, "history": len(SEED_READINGS), "alerts": len(SEED_ALERTS), "alert_events": 2}

hostile_values = st.one_of(
    st.sampled_from(
        [
            None,
            "",
            "yesterday",
            "2026-13-45",
            "9999-12-31 23:59:59",
            "0001-01-01 00:00:00",
            "+275760-09-13",
            "infinity",
            "NaN",
            "fast",
            "true",
            "{}",
            "[]",
            '{"temperature": 99.5, "ph": 6.0, "signal": 0}',
            '{"a": 1} trailing',
            DEEP_LIST,
            DEEP_OBJECT,
            json.dumps({f"k{i}": i for i in range(20_000)}),
            "x\n2026-12-02 - alert_worker - CRITICAL - FAKE\x1b[2J",
            "N" * 100_000,
            b"\xff\x00\xfe",
            b'{"temperature": 99}',
            0,
            1,
            2,
            -1,
            2_147_483_647,
            2**63 - 1,
            -(2**63),
            1e308,
            -1e308,
            float("inf"),
            True,
            False,
        ]
    ),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)


def _seed(url: str, generation: Generation) -> None:
    make_app_tables(url, generation)
    engine = make_engine(url)
    schema.upgrade(engine)
    for device_id, name, kind, polled in SEED_DEVICES:
        add_device(engine, device_id, name, device_type=kind, poll_enabled=polled)
    for device_id, age, value, json_value, metadata in SEED_READINGS:
        add_reading(
            engine,
            device_id,
            value,
            age=timedelta(seconds=age),
            json_value=json_value,
            metadata=metadata,
        )
    for alert in SEED_ALERTS:
        add_alert(engine, *alert)
    events_table = tables_for(generation).alert_events
    with engine.begin() as connection:
        connection.execute(
            events_table.insert(),
            [
                {
                    "alert_id": 1,
                    "device_id": 1,
                    "threshold_value": 82.0,
                    "operator": ">",
                    "metric": "temperature",
                    "is_resolved": True,
                },
                {
                    "alert_id": OPEN_EVENT_OF,
                    "device_id": 3,
                    "threshold_value": 7.8,
                    "operator": "<",
                    "metric": "ph",
                    "is_resolved": False,
                },
            ],
        )
    engine.dispose()


@pytest.fixture(scope="module", params=list(Generation), ids=[g.value for g in Generation])
def seeded(request: pytest.FixtureRequest) -> Iterator[tuple[Path, Generation]]:
    """A small reef in an SQLite file of each generation, to copy for each example."""
    directory = Path(tempfile.mkdtemp(prefix="reef_bad_rows_"))
    generation = Generation(request.param)
    template = directory / "template.db"
    _seed(f"sqlite:///{template}", generation)
    yield template, generation
    shutil.rmtree(directory, ignore_errors=True)


def _events_by_alert(path: Path) -> dict[Any, Counter[tuple[Any, ...]]]:
    """Each alert's events, by what they hold (ids aside), as SQLite stores them."""
    found: dict[Any, Counter[tuple[Any, ...]]] = {}
    with sqlite3.connect(path) as connection:
        cursor = connection.execute("SELECT * FROM alert_events")
        names = [column[0] for column in cursor.description]
        for row in cursor:
            event = dict(zip(names, row, strict=True))
            content = tuple(value for name, value in event.items() if name != "id")
            found.setdefault(event["alert_id"], Counter())[content] += 1
    return found


def _cycle(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    try:
        stats = run_cycle(engine)
        return stats.total_alerts, stats.errors
    finally:
        engine.dispose()


def _dependents(path: Path, table: str, row_id: int, column: str) -> set[Any]:
    """The alerts whose events the corruption of `table.column` in row `row_id` may change: those
    of the row's device, the row's own alert, and those the corrupted value now points to."""
    with sqlite3.connect(path) as connection:
        stored = connection.execute(
            f'SELECT "{column}" FROM {table} WHERE id = ?', (row_id,)
        ).fetchone()[0]
    devices = {alert[0]: alert[1] for alert in SEED_ALERTS}
    if table == "devices":
        return {a for a, d in devices.items() if d == row_id}
    if table == "history":
        device = SEED_READINGS[row_id - 1][0]
        return {a for a, d in devices.items() if d in (device, stored)}
    if table == "alerts":
        return {row_id}
    owner = (1, OPEN_EVENT_OF)[row_id - 1]
    return {owner, stored} if column == "alert_id" else {owner}


@settings(max_examples=min(settings.default.max_examples, 300), deadline=None)
@given(
    table=st.sampled_from(sorted(COLUMNS)),
    data=st.data(),
    value=hostile_values,
)
def test_one_corrupted_value_changes_no_other_alerts_events(
    seeded: tuple[Path, Generation], table: str, data: st.DataObject, value: object
) -> None:
    template, generation = seeded
    column = data.draw(st.sampled_from(COLUMNS[table]), label="column")
    row_id = data.draw(st.integers(1, ROWS[table]), label="row")
    name = tables_for(generation).metadata.tables[table].c[column].name
    with tempfile.TemporaryDirectory(prefix="reef_bad_row_") as directory:
        clean, corrupted = Path(directory) / "clean.db", Path(directory) / "corrupted.db"
        shutil.copy(template, clean)
        shutil.copy(template, corrupted)
        try:
            with sqlite3.connect(corrupted) as connection:
                connection.execute(f'UPDATE {table} SET "{name}" = ? WHERE id = ?', (value, row_id))
        except (sqlite3.IntegrityError, OverflowError):
            reject()  # NOT NULL, or the one-open-event index: the database refuses it
        dependents = _dependents(corrupted, table, row_id, name)

        total, errors = _cycle(f"sqlite:///{corrupted}")
        clean_total, clean_errors = _cycle(f"sqlite:///{clean}")

        event(f"{table}.{column}: {'some alerts are errors' if errors else 'no error'}")
        assert clean_errors == 0
        assert errors <= len(dependents)
        before, after = _events_by_alert(clean), _events_by_alert(corrupted)
        for alert_id in {a for a, *_ in SEED_ALERTS} - dependents:
            assert after.get(alert_id) == before.get(alert_id), alert_id
        assert abs(total - clean_total) <= 1
