"""Builders for rows in the shared tables, so integration tests read as a reef, not as SQL."""

from __future__ import annotations

import logging
import weakref
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, insert, select

from reef_alerts.adapters.database import make_engine
from reef_alerts.adapters.schema import detect_tables
from reef_alerts.adapters.tables import Generation, SharedTables, tables_for
from reef_alerts.adapters.unit_of_work import SqlUnitOfWorkFactory
from reef_alerts.application import CycleStats, RunCycle
from reef_alerts.domain import EvaluationPolicy

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


APP_DDL = {
    # Verbatim copies of ../shared/spec/*_schema.sql: the web app's DDL, as the specification
    # declared it and as the app declares it today.
    Generation.LEGACY: Path(__file__).with_name("legacy_schema.sql"),
    Generation.CURRENT: Path(__file__).with_name("current_schema.sql"),
}


def make_app_tables(url: str, generation: Generation) -> None:
    """Create the web app's tables of `generation` in the empty database at `url`, as the app
    would: PostgreSQL from its DDL verbatim; SQLite, which that DDL does not suit, from the
    worker's declaration of the same tables (tested to match on PostgreSQL)."""
    engine = create_engine(url)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(APP_DDL[generation].read_text())
        else:
            tables_for(generation).metadata.create_all(connection)
    engine.dispose()


_tables: weakref.WeakKeyDictionary[Engine, SharedTables] = weakref.WeakKeyDictionary()


def tables_of(engine: Engine) -> SharedTables:
    """The shared tables of `engine`'s database, as its generation declares them."""
    if engine not in _tables:
        with engine.connect() as connection:
            _tables[engine] = detect_tables(connection)
    return _tables[engine]


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
    table = tables_of(engine).devices  # before BEGIN: SQLite's would lock out its look-up
    with engine.begin() as connection:
        connection.execute(insert(table), row)
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
    table = tables_of(engine).alerts
    with engine.begin() as connection:
        connection.execute(
            insert(table),
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
    table = tables_of(engine).history
    with engine.begin() as connection:
        connection.execute(
            insert(table),
            {
                "device_id": device_id,
                "timestamp": now - age,
                "value": value,
                "json_value": json_value,
                "metadata_": metadata,
            },
        )


def add_many(engine: Engine, table: str, rows: Iterable[dict[str, Any]]) -> None:
    """Insert `rows` into the shared table named `table`."""
    shared = tables_of(engine).metadata.tables[table]
    with engine.begin() as connection:
        connection.execute(insert(shared), list(rows))


def run_cycle(
    engine: Engine, clock: FixedClock | None = None, log: logging.Logger | None = None
) -> CycleStats:
    log = log or logging.getLogger("alert_worker")
    cycle = RunCycle(
        SqlUnitOfWorkFactory(engine, log), clock or FixedClock(), EvaluationPolicy(), log
    )
    return cycle()


def events(engine: Engine) -> list[dict[str, Any]]:
    events = tables_of(engine).alert_events
    with engine.connect() as connection:
        rows = connection.execute(select(events).order_by(events.c.id))
        # By column key, so that the metadata column is `metadata_` in either generation.
        return [dict(zip(events.c.keys(), row, strict=True)) for row in rows]


def open_alert_ids(engine: Engine) -> list[int]:
    return [e["alert_id"] for e in events(engine) if not e["is_resolved"]]


def seed_fleet(engine: Engine, count: int, now: datetime = NOW) -> None:
    """`count` heaters with one `temperature > 82` alert each: odd ones fire, every 20th from 2
    has an open event that now resolves."""
    add_many(
        engine,
        "devices",
        (
            {"id": i, "name": f"Tank {i}", "device_type": "heater", "address": f"dev{i}"}
            for i in range(1, count + 1)
        ),
    )
    add_many(
        engine,
        "alerts",
        (
            {
                "id": i,
                "device_id": i,
                "metric": "temperature",
                "operator": ">",
                "threshold_value": 82.0,
            }
            for i in range(1, count + 1)
        ),
    )
    add_many(
        engine,
        "history",
        (
            {
                "device_id": i,
                "timestamp": now - timedelta(seconds=5),
                "value": 90.0 + i / 1000 if i % 2 else 70.0,
            }
            for i in range(1, count + 1)
        ),
    )
    add_many(
        engine,
        "alert_events",
        (
            {
                "alert_id": i,
                "device_id": i,
                "threshold_value": 82.0,
                "operator": ">",
                "metric": "temperature",
                "is_resolved": False,
            }
            for i in range(2, count + 1, 20)
        ),
    )


def cycle_in_process(url: str, barrier: Any, results: Any) -> None:
    """One cycle in a process of its own, started when all its peers are ready; its statistics
    go to the `results` queue."""
    engine = make_engine(url)
    with engine.connect():
        pass  # connect before the barrier, so the cycles really overlap
    barrier.wait(timeout=60)
    results.put(run_cycle(engine).as_dict())
    engine.dispose()


def event_outcome(url: str) -> Counter[tuple[object, ...]]:
    """The events of the database at `url`, by what they say rather than by their ids."""
    engine = make_engine(url)
    try:
        return Counter(
            (e["alert_id"], e["current_value"], e["is_resolved"], e["resolution_value"])
            for e in events(engine)
        )
    finally:
        engine.dispose()
