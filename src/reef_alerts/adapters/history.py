"""What a preview reads (issue 14): one alert with its options, its device, and the device's
readings in a time range, bounded by the range. SQLAlchemy Core statements, so that an
asynchronous adapter can run the same ones; `SqlHistoryReader` runs them on a connection.

Rows are decoded as the cycle decodes them (adapters/rows.py): a reading that cannot be is left
out and counted, never raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, Text, cast, inspect, null, select

from reef_alerts.adapters.rows import (
    UnreadableColumnError,
    decode_device,
    decode_reading,
)
from reef_alerts.adapters.snapshot_queries import ALERT_COLUMNS, DEVICE_COLUMNS
from reef_alerts.adapters.tables import ALERT_TABLES, SharedTables, rules
from reef_alerts.domain import Device
from reef_alerts.ports import History, StoredAlert, StoredRule

MAX_READINGS = 200_000
"""The most readings one preview reads: four months of one-minute readings."""


def alert_query(tables: SharedTables, alert_id: int, *, with_rules: bool) -> Select[Any]:
    """An alert's row, as StoredAlert's columns, then its options (NULLs without the table)."""
    alerts = tables.alerts
    options: tuple[Any, ...]
    source: Any = alerts
    if with_rules:
        source = alerts.outerjoin(rules, rules.c.alert_id == alerts.c.id)
        options = tuple(rules.c[name] for name in StoredRule._fields)
    else:
        options = tuple(null().label(name) for name in StoredRule._fields)
    return (
        select(*(alerts.c[name] for name in ALERT_COLUMNS), *options)
        .select_from(source)
        .where(alerts.c.id == alert_id)
    )


def device_query(tables: SharedTables, device_id: int) -> Select[Any]:
    """A device's row, as DEVICE_COLUMNS."""
    devices = tables.devices
    return select(devices.c.id, *(devices.c[name] for name in DEVICE_COLUMNS[1:])).where(
        devices.c.id == device_id
    )


def readings_query(
    tables: SharedTables, device_id: int, since: datetime, until: datetime
) -> Select[Any]:
    """A device's timestamped readings from `since` to `until`, newest first, at most
    MAX_READINGS + 1 (so that a cut can be told); the timestamp as text, decoded as the
    cycle's are (ADR 10)."""
    c = tables.history.c
    return (
        select(
            c.id,
            cast(c.timestamp, Text),
            c.value,
            cast(c.json_value, Text),
            cast(c.metadata_, Text),
        )
        .where(c.device_id == device_id, c.timestamp >= since, c.timestamp <= until)
        .order_by(c.timestamp.desc(), c.id.desc())
        .limit(MAX_READINGS + 1)
    )


def stored_alert(row: Sequence[Any] | None) -> tuple[StoredAlert, StoredRule | None] | None:
    """alert_query's row as the alert and its options; None for no row."""
    if row is None:
        return None
    alert = StoredAlert._make(row[: len(ALERT_COLUMNS)])
    rule = StoredRule._make(row[len(ALERT_COLUMNS) :])
    return alert, None if rule == (None, None, None) else rule


def history_of(device_id: int, rows: Sequence[Sequence[Any]]) -> History:
    """readings_query's rows as a History, oldest first."""
    readings, unreadable = [], 0
    for reading_id, timestamp, value, json_value, metadata in rows[:MAX_READINGS]:
        try:
            readings.append(
                decode_reading(reading_id, device_id, timestamp, value, json_value, metadata)
            )
        except UnreadableColumnError:
            unreadable += 1
    readings.reverse()
    return History(tuple(readings), unreadable, len(rows) > MAX_READINGS)


class SqlHistoryReader:
    """The history port on a synchronous connection: what the CLI previews with."""

    def __init__(self, connection: Connection, tables: SharedTables) -> None:
        self._connection = connection
        self._tables = tables
        found = inspect(connection)
        self._with_rules = all(found.has_table(table.name) for table in ALERT_TABLES)

    def alert(self, alert_id: int) -> tuple[StoredAlert, StoredRule | None] | None:
        """Alert `alert_id` and its options; None when there is no such alert."""
        query = alert_query(self._tables, alert_id, with_rules=self._with_rules)
        return stored_alert(self._connection.execute(query).first())

    def device(self, device_id: int) -> Device | None:
        """Device `device_id`; None when there is none. Raises UnreadableColumnError on a row
        that cannot be decoded."""
        row = self._connection.execute(device_query(self._tables, device_id)).first()
        return None if row is None else decode_device(row)

    def history(self, device_id: int, since: datetime, until: datetime) -> History:
        """The device's readings from `since` to `until`, oldest first."""
        query = readings_query(self._tables, device_id, since, until)
        rows = self._connection.execute(query).cursor.fetchall()
        return history_of(device_id, rows)
