"""Builders for rows in the shared tables, so integration tests read as a reef, not as SQL."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select

from reef_alerts.adapters.tables import alert_events, alerts, devices, history
from reef_alerts.adapters.unit_of_work import SqlUnitOfWorkFactory
from reef_alerts.application import CycleStats, RunCycle
from reef_alerts.domain import EvaluationPolicy

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class FixedClock:
    def __init__(self, now: datetime = NOW) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


def add_device(engine: Engine, device_id: int, name: str = "Main Tank", **columns: Any) -> int:
    row = {
        "id": device_id,
        "name": name,
        "device_type": "heater",
        "address": f"dev{device_id}",
        "unit": "F",
        **columns,
    }
    with engine.begin() as connection:
        connection.execute(insert(devices), row)
    return device_id


def add_alert(
    engine: Engine,
    alert_id: int,
    device_id: int,
    metric: str = "temperature",
    operator: str = ">",
    threshold: float = 82.0,
    **columns: Any,
) -> int:
    with engine.begin() as connection:
        connection.execute(
            insert(alerts),
            {
                "id": alert_id,
                "device_id": device_id,
                "metric": metric,
                "operator": operator,
                "threshold_value": threshold,
                **columns,
            },
        )
    return alert_id


def add_reading(
    engine: Engine,
    device_id: int,
    value: float | None = None,
    *,
    age: timedelta = timedelta(seconds=10),
    json_value: Any = None,
    metadata: Any = None,
    now: datetime = NOW,
) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(history),
            {
                "device_id": device_id,
                "timestamp": now - age,
                "value": value,
                "json_value": json_value,
                "metadata_": metadata,
            },
        )


def add_many(engine: Engine, table: Any, rows: Iterable[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        connection.execute(insert(table), list(rows))


def run_cycle(
    engine: Engine, clock: FixedClock | None = None, log: logging.Logger | None = None
) -> CycleStats:
    log = log or logging.getLogger("alert_worker")
    cycle = RunCycle(
        SqlUnitOfWorkFactory(engine, log), clock or FixedClock(), EvaluationPolicy(), log
    )
    return cycle()


def events(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(alert_events).order_by(alert_events.c.id))
        return [dict(row._mapping) for row in rows]


def open_alert_ids(engine: Engine) -> list[int]:
    return [e["alert_id"] for e in events(engine) if not e["is_resolved"]]
