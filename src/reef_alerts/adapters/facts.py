"""What a worker's units of work know of its database, found out once and shared between them."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import Connection, inspect

from reef_alerts.adapters.schema import detect_tables, has_open_event_index
from reef_alerts.adapters.tables import OPEN_EVENT_INDEX, SharedTables, alert_status
from reef_alerts.ports import RecordedStatus, StatusChange


class WorkerFacts:
    """The generation of the database's tables, told once (by the start-up check, or else by
    the first unit of work that connects, ADR 11); whether the one-open-event index and the
    alert-status table exist, looked for until found, then trusted; and, while that table does
    not exist, the statuses kept in this process instead (ADR 13).

    Looked for until found, not once at start-up: a worker started while the database is down,
    or before `db upgrade`, finds out when that changes.
    """

    def __init__(
        self,
        log: logging.Logger,
        *,
        tables: SharedTables | None = None,
        open_event_index: bool = False,
    ) -> None:
        """`tables`: the database's, when known; `open_event_index`: known to exist."""
        self._log = log
        self._tables = tables
        self._index = open_event_index
        self._index_warned = False
        self._status_table = False
        self._statuses: dict[int, RecordedStatus] = {}

    def tables(self, connection: Connection) -> SharedTables:
        """The shared tables, told on `connection` unless already known."""
        if self._tables is None:
            self._tables = detect_tables(connection)
        return self._tables

    def open_event_index(self, connection: Connection) -> bool:
        """Whether the one-open-event index exists, looked for on `connection` unless found.

        Asked at a unit of work's first insert, not before its read: the look-up then overlaps
        the cycle's judging, and a cycle with no event to open needs none."""
        if not self._index:
            self._index = has_open_event_index(connection)
            if not self._index and not self._index_warned:
                self._index_warned = True
                self._log.warning(
                    "alert_events has no %s index: concurrent workers could duplicate events "
                    "until `reef-alerts db upgrade` has been run",
                    OPEN_EVENT_INDEX,
                )
        return self._index

    def status_table(self, connection: Connection) -> bool:
        """Whether the alert-status table exists, looked for on `connection` unless found."""
        if not self._status_table:
            self._status_table = inspect(connection).has_table(alert_status.name)
            if self._status_table:
                self._statuses.clear()  # the table's rows are the truth from now on
        return self._status_table

    def remembered(self, alert_id: int) -> RecordedStatus | None:
        """An alert's status as this process last recorded it, without the table."""
        return self._statuses.get(alert_id)

    def remember(self, changes: Iterable[StatusChange]) -> None:
        """Record committed status changes in this process, without the table."""
        for change in changes:
            if change.state is None:
                self._statuses.pop(change.alert_id, None)
            else:
                assert change.code is not None
                self._statuses[change.alert_id] = RecordedStatus(
                    change.state, change.code, change.since
                )
