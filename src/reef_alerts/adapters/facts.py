"""What a worker's units of work know of its database, found out once and shared between them."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import Connection, inspect

from reef_alerts.adapters.notify_tables import outbox
from reef_alerts.adapters.schema import detect_tables, open_event_index
from reef_alerts.adapters.tables import (
    OPEN_EVENT_INDEX,
    SharedTables,
    alert_status,
    has_alert_tables,
    has_trend_tables,
)
from reef_alerts.ports import RecordedStatus, StatusChange


class Looked(NamedTuple):
    """What a unit of work learnt of the database before its read."""

    status_table: bool
    """The alert-status table exists (ADR 13)."""
    rule_tables: bool
    """Alerts can have options: the rules and state tables exist, and the index of one open
    event per alert and kind (ADR 15)."""
    index_looked_up: bool
    """The one-open-event index was looked for just now: the unit of work needs not again."""
    trend_tables: bool = False
    """Trend alerts can be judged on their trend: the rule tables exist, and the trend rules
    and state tables too (issue 13)."""
    outbox: bool = False
    """The notification outbox exists: event changes are written to it too (issue 15)."""


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
        self._trend_tables = False
        self._outbox = False
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

        Asked at a unit of work's first insert, not before its read, unless `look` already
        asked it for this unit of work: the look-up then overlaps the cycle's judging, and a
        cycle with no event to open needs none."""
        if self._index != OPEN_EVENT_INDEX:
            self._found_index(open_event_index(connection))
        return self._index

    def look(self, connection: Connection) -> Looked:
        """What a unit of work needs to know before its read, looked for on `connection` in
        one catalogue query (and one for the index, once the rule tables are there) unless
        already found."""
        looked_up_index = False
        if not (self._status_table and self._rule_tables and self._trend_tables and self._outbox):
            names = set(inspect(connection).get_table_names())
            if alert_status.name in names and not self._status_table:
                self._status_table = True
                self._statuses.clear()  # the table's rows are the truth from now on
            if has_alert_tables(names):
                if self._index != OPEN_EVENT_INDEX:
                    self._found_index(open_event_index(connection))
                    looked_up_index = True
                self._rule_tables = self._index == OPEN_EVENT_INDEX
            self._trend_tables = self._rule_tables and has_trend_tables(names)
            self._outbox = outbox.name in names
        return Looked(
            self._status_table,
            self._rule_tables,
            looked_up_index,
            self._trend_tables,
            self._outbox,
        )

    @property
    def index(self) -> str | None:
        """The one-open-event index as last found."""
        return self._index

    def _found_index(self, index: str | None) -> None:
        self._index = index
        if index is None and not self._index_warned:
            self._index_warned = True
            self._log.warning(
                "alert_events has no %s index: concurrent workers could duplicate events "
                "until `reef-alerts db upgrade` has been run",
                OPEN_EVENT_INDEX,
            )

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
