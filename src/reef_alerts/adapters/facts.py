"""What a worker's units of work know of its database, found out once and shared between them."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import Connection, inspect

from reef_alerts.adapters.schema import detect_tables, open_event_index
from reef_alerts.adapters.tables import (
    ALERT_TABLES,
    OPEN_EVENT_INDEX,
    SharedTables,
    alert_status,
)
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
        open_event_index: str | None = None,
    ) -> None:
        """`tables`: the database's, when known; `open_event_index`: the name of the one that
        is known to exist (OPEN_EVENT_INDEX or its predecessor)."""
        self._log = log
        self._tables = tables
        self._index = open_event_index
        self._index_warned = False
        self._status_table = False
        self._rule_tables = False
        self._statuses: dict[int, RecordedStatus] = {}

    def tables(self, connection: Connection) -> SharedTables:
        """The shared tables, told on `connection` unless already known."""
        if self._tables is None:
            self._tables = detect_tables(connection)
        return self._tables

    def open_event_index(self, connection: Connection) -> str | None:
        """The one-open-event index's name (OPEN_EVENT_INDEX, or in a database upgraded before
        events had kinds its predecessor), looked for on `connection` until the current one is
        found; None when there is neither.

        Asked at a unit of work's first insert, not before its read: the look-up then overlaps
        the cycle's judging, and a cycle with no event to open needs none."""
        if self._index != OPEN_EVENT_INDEX:
            self._index = open_event_index(connection)
            if self._index is None and not self._index_warned:
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
            self._look_for_own_tables(connection)
            if self._status_table:
                self._statuses.clear()  # the table's rows are the truth from now on
        return self._status_table

    def rule_tables(self, connection: Connection) -> bool:
        """Whether the rules and alert-state tables exist (migration 0004), looked for on
        `connection` unless found: without them every alert is judged by the specification's
        rule alone."""
        if not self._rule_tables:
            self._look_for_own_tables(connection)
        return self._rule_tables

    def _look_for_own_tables(self, connection: Connection) -> None:
        """Both questions above in one catalogue query, asked by a unit of work before its read."""
        names = set(inspect(connection).get_table_names())
        self._status_table = alert_status.name in names
        self._rule_tables = all(table.name in names for table in ALERT_TABLES)

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
