"""What a preview reads (issue 14): one alert with its options, its device, and the device's
readings in a time range, bounded by the range. SQLAlchemy Core statements, run by two readers:
`SqlHistoryReader` on a connection (the CLI), `AsyncSqlHistoryReader` on an AsyncSession (the web
app's router, on asyncpg or aiosqlite).

Rows are decoded as the cycle decodes them (adapters/rows.py): a reading that cannot be is left
out and counted, never raised.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import CompoundSelect, Connection, Select, null, select, union_all

from reef_alerts.adapters.rows import (
    UnreadableColumnError,
    decode_device,
    decode_reading,
)
from reef_alerts.adapters.schema import Catalogue
from reef_alerts.adapters.snapshot_queries import (
    ALERT_COLUMNS,
    device_columns,
    newest_reading,
    reading_columns,
)
from reef_alerts.adapters.tables import SharedTables, rules, trend_rules
from reef_alerts.domain import Device, Reading
from reef_alerts.domain.backtest import newest_order
from reef_alerts.ports import FoundAlert, History, StoredAlert, StoredRule, StoredTrend

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

MAX_READINGS = 200_000
"""The most readings one preview reads: four months of one-minute readings."""


def alert_query(
    tables: SharedTables, alert_id: int, *, with_rules: bool, with_trends: bool = False
) -> Select[Any]:
    """An alert's row, as StoredAlert's columns, then its options and its trend options (NULLs
    without their tables)."""
    alerts = tables.alerts
    options: tuple[Any, ...]
    source: Any = alerts
    if with_rules:
        source = alerts.outerjoin(rules, rules.c.alert_id == alerts.c.id)
        options = tuple(rules.c[name] for name in StoredRule._fields)
    else:
        options = tuple(null().label(name) for name in StoredRule._fields)
    if with_rules and with_trends:
        source = source.outerjoin(trend_rules, trend_rules.c.alert_id == alerts.c.id)
        options += tuple(trend_rules.c[name] for name in StoredTrend._fields)
    else:
        options += tuple(null().label(name) for name in StoredTrend._fields)
    return (
        select(*(alerts.c[name] for name in ALERT_COLUMNS), *options)
        .select_from(source)
        .where(alerts.c.id == alert_id)
    )


def device_query(tables: SharedTables, device_id: int) -> Select[Any]:
    """A device's row, as DEVICE_COLUMNS."""
    devices = tables.devices
    return select(*device_columns(devices)).where(devices.c.id == device_id)


def readings_query(
    tables: SharedTables, device_id: int, start: datetime, end: datetime
) -> CompoundSelect[Any]:
    """What a replay from `start` to `end` needs of a device's history: its newest timestamped
    reading at or before `start` (the one the first evaluation finds, however old), then its
    readings after `start` up to `end`, oldest first, at most MAX_READINGS + 1 (so that a cut
    can be told). The timestamp as text, decoded as the cycle's are (ADR 10)."""
    c = tables.history.c
    columns = (c.id, *reading_columns(c, as_text=True))
    before = newest_reading(tables.history, device_id, *columns).where(c.timestamp <= start)
    after = (
        select(*columns)
        .where(c.device_id == device_id, c.timestamp > start, c.timestamp <= end)
        .order_by(c.timestamp, c.id)
        .limit(MAX_READINGS + 1)
    )
    return union_all(before.subquery().select(), after.subquery().select())


def stored_alert(row: Sequence[Any] | None) -> FoundAlert | None:
    """alert_query's row as the alert, its options and its trend options; None for no row."""
    if row is None:
        return None
    alert = StoredAlert._make(row[: len(ALERT_COLUMNS)])
    rest = row[len(ALERT_COLUMNS) :]
    rule = StoredRule._make(rest[: len(StoredRule._fields)])
    trend = StoredTrend._make(rest[len(StoredRule._fields) :])
    return FoundAlert(
        alert,
        None if rule == (None,) * len(rule) else rule,
        None if trend == (None,) * len(trend) else trend,
    )


def history_of(device_id: int, rows: Iterable[Sequence[Any]], limit: int = MAX_READINGS) -> History:
    """readings_query's rows as a History, oldest first. Where there were more than `limit`
    (MAX_READINGS), the replay can go only up to just before the last reading read, and
    readings stamped at that same instant are left out too (the newest one then is unknown)."""
    readings, unreadable, count = [], 0, 0
    for reading_id, timestamp, value, json_value, metadata in rows:
        count += 1
        try:
            readings.append(
                decode_reading(reading_id, device_id, timestamp, value, json_value, metadata)
            )
        except UnreadableColumnError:
            unreadable += 1
    if not _oldest_first(readings):  # they nearly always are, and a sort costs memory
        readings.sort(key=newest_order)
    if count <= limit + 1 or not readings:  # the one before the range, and the limit's
        return History(tuple(readings), unreadable)
    cut = readings[-1].timestamp
    assert cut is not None  # decoded readings have one
    kept = tuple(r for r in readings if r.timestamp is not None and r.timestamp < cut)
    return History(kept, unreadable, complete_until=cut)


def _oldest_first(readings: Sequence[Reading]) -> bool:
    return all(newest_order(a) <= newest_order(b) for a, b in itertools.pairwise(readings))


class SqlHistoryReader:
    """The history port on a synchronous connection: what the CLI previews with."""

    def __init__(self, connection: Connection, catalogue: Catalogue) -> None:
        self._connection = connection
        self._catalogue = catalogue

    def alert(self, alert_id: int) -> FoundAlert | None:
        """Alert `alert_id` and its options; None when there is no such alert."""
        query = alert_query(
            self._catalogue.tables,
            alert_id,
            with_rules=self._catalogue.remembers,
            with_trends=self._catalogue.trends,
        )
        return stored_alert(self._connection.execute(query).first())

    def device(self, device_id: int) -> Device | None:
        """Device `device_id`; None when there is none. Raises UnreadableColumnError on a row
        that cannot be decoded."""
        row = self._connection.execute(device_query(self._catalogue.tables, device_id)).first()
        return None if row is None else decode_device(row)

    def history(self, device_id: int, start: datetime, end: datetime) -> History:
        """What a replay from `start` to `end` needs of the device's history (readings_query)."""
        query = readings_query(self._catalogue.tables, device_id, start, end)
        return history_of(device_id, self._connection.execute(query).cursor.fetchall())


class AsyncSqlHistoryReader:
    """The history port on an AsyncSession: the same statements as SqlHistoryReader's."""

    def __init__(self, session: AsyncSession, catalogue: Catalogue) -> None:
        self._session = session
        self._catalogue = catalogue

    async def alert(self, alert_id: int) -> FoundAlert | None:
        """Alert `alert_id` and its options; None when there is no such alert."""
        query = alert_query(
            self._catalogue.tables,
            alert_id,
            with_rules=self._catalogue.remembers,
            with_trends=self._catalogue.trends,
        )
        return stored_alert((await self._session.execute(query)).first())

    async def device(self, device_id: int) -> Device | None:
        """As SqlHistoryReader.device."""
        row = (await self._session.execute(device_query(self._catalogue.tables, device_id))).first()
        return None if row is None else decode_device(row)

    async def history(self, device_id: int, start: datetime, end: datetime) -> History:
        """As SqlHistoryReader.history."""
        query = readings_query(self._catalogue.tables, device_id, start, end)
        rows = (await self._session.execute(query)).all()
        # Decoding a week's rows takes tens of milliseconds: not on the event loop.
        return await asyncio.to_thread(history_of, device_id, rows)
