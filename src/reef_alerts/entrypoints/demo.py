"""`reef-alerts demo`: a small reef on its own SQLite file: a pH sliding all morning that a trend
alert forecasts hours ahead, then a heat wave, a heater hovering at its threshold (with and
without rule options), a probe that falls silent, and their events."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dependency_injector import providers
from sqlalchemy import Engine, insert, inspect, select
from sqlalchemy.exc import DatabaseError

from reef_alerts.adapters import schema
from reef_alerts.adapters.database import make_engine
from reef_alerts.adapters.outbox import SqlOutbox
from reef_alerts.adapters.reports import alert_report
from reef_alerts.adapters.rule_store import set_rule
from reef_alerts.adapters.tables import CURRENT
from reef_alerts.application import WorkerStatistics
from reef_alerts.application.delivery import Deliver
from reef_alerts.config import Settings
from reef_alerts.container import build_container
from reef_alerts.domain import EventKind, format_duration
from reef_alerts.domain.notices import DeliveryPolicy, Message
from reef_alerts.entrypoints.text import alert_lines, columns
from reef_alerts.entrypoints.worker import Worker
from reef_alerts.ports.notifying import Channel

DEMO_MARKER = "reef_alerts_demo"
"""A table only demo databases have, so the demo never overwrites someone's real database."""

START = datetime(2026, 7, 14, 13, 0, tzinfo=UTC)
STEP = timedelta(minutes=1)

# The display tank warms past 82 °F in a summer afternoon, then the chiller brings it back.
HEATER_TEMPERATURES = [78.6, 79.4, 80.3, 81.2, 82.4, 83.6, 85.2, 84.1, 82.6, 81.4, 80.2, 79.1]
# The frag tank's heater hovers around its 82 °F threshold, then truly runs warm for a while.
HOVERING_TEMPERATURES = [81.8, 82.2, 81.9, 82.3, 81.8, 82.1, 82.4, 82.6, 82.8, 82.5, 81.9, 81.2]
# The quarantine tank's pH probe stops reporting after 13:02 and is back at 13:10.
SILENT_MINUTES = range(3, 10)
DEMO_END = START + len(HEATER_TEMPERATURES) * STEP
"""Just after the afternoon's last minute."""
# The frag tank's CO₂ scrubber runs out of media in the night: from 07:00 its pH slides 0.04 an
# hour, past 7.9 shortly after noon. A reading every two minutes all morning.
MORNING_START = START - timedelta(hours=6)
MORNING_STEP = timedelta(minutes=2)
SCRUBBER_PH = 8.12
SCRUBBER_SLIDE_PER_HOUR = -0.04

DEVICES = [
    (1, "Display Tank Heater", "heater", "°F"),
    (2, "Display Tank pH", "ph_probe", "pH"),
    (3, "Display Tank Salinity", "salinity", "ppt"),
    (4, "Display Tank ORP", "orp_probe", "mV"),
    (5, "Display Tank Multi-sensor", "multi_sensor", None),
    (6, "Frag Tank Heater", "heater", "°F"),
    (7, "Quarantine Tank pH", "ph_probe", "pH"),
    (8, "Frag Tank pH", "ph_probe", "pH"),
]

ALERTS = [
    (1, 1, "temperature", ">", 82.0),
    (2, 2, "ph", "<", 7.8),
    (3, 3, "salinity", "<", 33.0),
    (4, 4, "orp", ">", 450.0),
    (5, 5, "temperature", ">", 83.0),
    (6, 5, "probe1.ph", ">=", 8.5),
    (7, 5, "nitrate", ">", 10.0),  # no probe measures it: skipped, and the log says why
    (8, 6, "temperature", ">", 82.0),  # the hovering heater, by the specification's rule
    (9, 6, "temperature", ">", 82.0),  # the same, with the options below
    (10, 7, "ph", "<", 7.8),
    (11, 8, "ph", "<", 7.9),  # trend_enabled: forecast hours ahead (issue 13)
]
TREND_ALERTS = {11}

RULES = {
    9: {"pending_seconds": 180.0, "recovery_margin": 0.5},
    10: {"no_data_after_seconds": 180.0},
}
"""Options per alert (`reef-alerts rules set`): alert 9 waits 3 minutes and wants the water
back below 81.5 °F; alert 10 opens a no-data event after 3 minutes of silence."""


class DemoFileInUseError(Exception):
    """The demo path holds a database the demo did not make."""


DEMO_CHANNEL = Channel("keeper's phone", "ntfy://ntfy.sh/reef-alerts-demo")
"""Where the demo's notifications would go; nothing is sent to it."""


class _Shown:
    """The demo's Sender: each message as the keeper would get it, on the terminal."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self._echo = echo
        self.count = 0

    def send(self, channel: Channel, message: Message, timeout: timedelta) -> str | None:
        self.count += 1
        self._echo(f"   notify {channel.name}: {message.title}")
        lines = message.body.split("\n\nMessage id:")[0].splitlines()
        if len(lines) > 1:
            for line in lines:
                self._echo(f"      {line}")
        return None


class SimulatedClock:
    """The demo's clock: it moves only when the demo moves it."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current


def run_demo(path: Path, log: logging.Logger, echo: Callable[[str], None]) -> list[dict[str, Any]]:
    """Seed the reef in `path`, play its afternoon a minute a cycle, and return the events."""
    _clear_demo_file(path)
    # Wired as the worker is, but for the demo's own file and its simulated clock.
    container = build_container(Settings(database_url=f"sqlite:///{path}", sqlite_path=path), log)
    clock = SimulatedClock(START)
    container.adapters.clock.override(providers.Object(clock))
    engine: Engine = container.adapters.engine()
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"CREATE TABLE {DEMO_MARKER} (created_at TEXT)")
        schema.upgrade(engine)
        _seed(engine)
        for alert_id, options in RULES.items():
            set_rule(engine, alert_id, options)
        worker = Worker(
            container.use_cases.run_cycle(),
            STEP.total_seconds(),
            log,
            WorkerStatistics(time.monotonic()),
            threading.Event(),
        )
        shown = _Shown(echo)
        quiet = logging.getLogger(f"{log.name}.demo_delivery")
        quiet.setLevel(logging.WARNING)  # the messages are shown whole instead
        deliver = Deliver(
            SqlOutbox(engine, quiet, [DEMO_CHANNEL]), shown, clock, DeliveryPolicy(), quiet
        )
        _morning(engine, clock, worker, log, echo, deliver)
        for minute, readings in enumerate(_afternoon()):
            clock.current = START + minute * STEP
            _record(engine, clock.current, readings)
            ph = readings.get(7, "nothing (silent)")
            echo(
                f"-- {clock.current:%H:%M} UTC  display heater {readings[1]} °F, "
                f"frag heater {readings[6]} °F, quarantine pH {ph}"
            )
            worker.run_once()
            deliver()
        worker.log_statistics()
        echo("\nAlerts (what `reef-alerts alerts` shows):")
        for line in alert_lines(alert_report(engine, now=clock.current)):
            echo(f"  {line}")
        events = _events(engine)
        echo("")
        for line in _moral(events):
            echo(line)
        echo(
            f"Notifications: {shown.count} messages would have reached {DEMO_CHANNEL.name}, "
            "each cycle's changes grouped in one (the `notify` lines above); `reef-alerts "
            "channels add` sends them for real (docs/notifications.md)."
        )
        return events
    finally:
        engine.dispose()


def format_events(rows: list[dict[str, Any]]) -> list[str]:
    """The events as a fixed-width table."""
    header = (
        *("alert", "device", "condition", "kind", "value"),
        *("triggered", "resolved", "resolved at"),
    )
    return columns(
        header,
        [
            (
                str(row["alert_id"]),
                row["device"],
                f"{row['metric']} {row['operator']} {row['threshold_value']:g}",
                _kind(row),
                _number(row["current_value"]),
                f"{row['triggered_at']:%H:%M}",
                "yes" if row["is_resolved"] else "no",
                f"{row['resolved_at']:%H:%M} at {_number(row['resolution_value'])}"
                if row["resolved_at"]
                else "",
            )
            for row in rows
        ],
    )


def _kind(row: dict[str, Any]) -> str:
    metadata = row["metadata"] if isinstance(row["metadata"], dict) else {}
    return str(metadata.get("kind", EventKind.THRESHOLD.value)).replace("_", "-")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _moral(events: list[dict[str, Any]]) -> list[str]:
    """What the options changed, in two sentences a keeper can check against the table."""
    counts = {alert_id: sum(row["alert_id"] == alert_id for row in events) for alert_id in (8, 9)}
    silent = [row for row in events if row["alert_id"] == 10 and _kind(row) == "no-data"]
    lines = [
        f"The frag tank heater hovered around 82 °F: alert 8, by the specification's rule, "
        f"opened {counts[8]} events; alert 9, the same condition with a 3-minute pending time "
        f"and a 0.5 °F recovery margin, opened {counts[9]}.",
    ]
    forecast = [row for row in events if row["alert_id"] == 11 and _kind(row) == "forecast"]
    crossed = [row for row in events if row["alert_id"] == 11 and _kind(row) == "threshold"]
    if forecast and crossed:
        ahead = crossed[0]["triggered_at"] - forecast[0]["triggered_at"]
        lines.append(
            f"The frag tank's pH slid 0.04 an hour: alert 11, a trend alert, forecast it at "
            f"{forecast[0]['triggered_at']:%H:%M}, {format_duration(ahead)} before its threshold "
            f"event opened at {crossed[0]['triggered_at']:%H:%M}."
        )
    if silent:
        lines.append(
            f"The quarantine pH probe went silent after 13:02: alert 10 opened a no-data event "
            f"at {silent[0]['triggered_at']:%H:%M}"
            + (
                f" and resolved it at {silent[0]['resolved_at']:%H:%M}, when the probe reported "
                "again."
                if silent[0]["resolved_at"]
                else "."
            )
        )
    return lines


def _clear_demo_file(path: Path) -> None:
    """Remove the previous demo database at `path`; refuse to touch anything else there, or to
    make a directory for it."""
    if "?" in str(path) or "#" in str(path):
        raise DemoFileInUseError(f"{path}: a demo path must not contain '?' or '#'")
    if not path.parent.is_dir():
        raise DemoFileInUseError(
            f"{path.parent} is not an existing directory; choose a --path in one"
        )
    if path.is_dir():
        raise DemoFileInUseError(f"{path} is a directory; choose a file for --path")
    if path.exists():
        if not _is_demo_database(path):
            raise DemoFileInUseError(
                f"{path} exists and is not a demo database; the demo will not overwrite it "
                "(choose another --path)"
            )
        path.unlink()


def _is_demo_database(path: Path) -> bool:
    engine = make_engine(f"sqlite:///{path}")
    try:
        return inspect(engine).has_table(DEMO_MARKER)
    except DatabaseError:  # not an SQLite file at all: notes, a photo...
        return False
    finally:
        engine.dispose()


def _seed(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(CURRENT.devices),
            [
                {"id": i, "name": name, "device_type": kind, "address": f"demo:{i}", "unit": unit}
                for i, name, kind, unit in DEVICES
            ],
        )
        connection.execute(
            insert(CURRENT.alerts),
            [
                {
                    "id": i,
                    "device_id": d,
                    "metric": m,
                    "operator": op,
                    "threshold_value": t,
                    "trend_enabled": i in TREND_ALERTS,
                }
                for i, d, m, op, t in ALERTS
            ],
        )


def _morning(
    engine: Engine,
    clock: SimulatedClock,
    worker: Worker,
    log: logging.Logger,
    echo: Callable[[str], None],
    deliver: Callable[[], object],
) -> None:
    """The morning before the heat wave, a cycle every two minutes: the reef is calm but for the
    frag tank's pH. Its hourly value and every event are told here, at the morning's time; the
    worker's own lines would be a thousand, stamped with today's."""
    level = log.level
    log.setLevel(logging.ERROR)
    echo("-- 07:00 UTC  the frag tank's CO₂ scrubber ran out of media in the night")
    try:
        at = MORNING_START
        while at < START:
            clock.current = at
            readings = _calm(at)
            _record(engine, at, readings)
            if at.minute == 0:
                echo(f"-- {at:%H:%M} UTC  frag tank pH {readings[8]:.2f}")
            for change in worker.run_once().changes:
                said = _MORNING_SAYS[change.change]
                echo(f"   {at:%H:%M} UTC  alert {change.alert_id} {said}: {change.reason}")
            deliver()
            at += MORNING_STEP
    finally:
        log.setLevel(level)


_MORNING_SAYS = {
    "trigger": "triggered",
    "resolve": "resolved",
    "no_data": "opened a no-data event",
    "no_data_resolved": "resolved its no-data event",
    "forecast": "opened a forecast event",
    "forecast_resolved": "resolved its forecast event",
    "rate": "opened a rate event",
    "rate_resolved": "resolved its rate event",
}


def _calm(at: datetime) -> dict[int, Any]:
    """A calm morning's readings at `at`, and the frag tank's sliding pH."""
    readings = next(_afternoon())
    readings[1], readings[6] = 78.0, 81.0
    readings[5]["temperature"] = 77.6
    readings[8] = _scrubber_ph(at)
    return readings


def _scrubber_ph(at: datetime) -> float:
    hours = (at - MORNING_START).total_seconds() / 3600
    return round(SCRUBBER_PH + SCRUBBER_SLIDE_PER_HOUR * hours, 3)


def _afternoon() -> Iterator[dict[int, Any]]:
    """Each minute's readings, by device id: simple values, and JSON from the multi-sensor."""
    for minute, temperature in enumerate(HEATER_TEMPERATURES):
        drift = math.sin(minute / 3)
        readings = {
            1: temperature,
            2: round(8.15 + 0.05 * drift, 2),
            3: round(35.0 + 0.1 * drift, 1),
            4: round(380 + 10 * drift),
            5: {
                "temperature": round(temperature - 0.4, 1),
                "ph": round(8.12 + 0.04 * drift, 2),
                "probe1": {"ph": round(8.2 + 0.05 * drift, 2), "temperature": temperature},
            },
            6: HOVERING_TEMPERATURES[minute],
        }
        if minute not in SILENT_MINUTES:
            readings[7] = round(8.05 + 0.03 * drift, 2)
        readings[8] = _scrubber_ph(START + minute * STEP)
        yield readings


def _record(engine: Engine, at: datetime, readings: dict[int, Any]) -> None:
    rows = [
        {
            "device_id": device_id,
            "timestamp": at,
            "value": None if isinstance(reading, dict) else reading,
            "json_value": reading if isinstance(reading, dict) else None,
            "metadata_": {"source": "demo"},
        }
        for device_id, reading in readings.items()
    ]
    with engine.begin() as connection:
        connection.execute(insert(CURRENT.history), rows)


def _events(engine: Engine) -> list[dict[str, Any]]:
    events, devices = CURRENT.alert_events, CURRENT.devices
    query = (
        select(events, events.c.metadata_.label("metadata"), devices.c.name.label("device"))
        .join(devices, devices.c.id == events.c.device_id)
        .order_by(events.c.id)
    )
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
