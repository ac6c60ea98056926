"""The live path's reading watcher on SQLAlchemy Core (issue 16, ADR 23): the devices with
readings newer than the last `history.id` seen, read on history's primary key.

PostgreSQL hands out ids when rows are inserted, not when they commit, so a reading may become
visible after one with a higher id was seen. The ids skipped over are kept as gaps and looked at
again for GAP_GRACE; one that commits later than that is left to the full cycle, which judges
every device's newest reading whatever its id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Set
from typing import Final

from sqlalchemy import Column, Connection, Engine, Integer, MetaData, Table, func, or_, select

from reef_alerts.adapters.database import READ_ALONE

GAP_GRACE: Final = 60.0
"""Seconds a skipped id is looked for again: longer than the web app's insert of a reading."""
MAX_GAPS: Final = 1_000
"""Skipped ids looked for at most; beyond, the oldest are given up (to the full cycle)."""
MAX_ROWS: Final = 10_000
"""New readings read at most per call; a bigger burst (an import) is read over several calls."""
LOOK_BACK: Final = 1_000
"""Ids below the newest that `start` reads, when it starts afresh, for gaps still to commit."""

_history = Table("history", MetaData(), Column("id", Integer), Column("device_id", Integer))
"""The two columns of history the watcher reads, alike in both generations of the schema."""


class SqlReadingWatcher:
    """ReadingWatcher over `history`: one indexed range on its primary key per call.
    `monotonic`: the clock gaps age by; tests pass a fake."""

    def __init__(self, engine: Engine, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._engine = engine
        self._monotonic = monotonic
        self._last: int | None = None
        self._gaps: dict[int, float] = {}
        """Ids skipped over, with when they were first missed."""

    def start(self) -> None:
        with self._connect() as connection:
            newest = connection.execute(select(func.max(_history.c.id))).scalar() or 0
            floor = max(int(newest) - LOOK_BACK, 0)
            if self._last is None or not floor <= self._last <= newest:
                # Far behind, never started, or ahead of the newest (the newest rows deleted
                # and their ids handed out again, a database restored from an older copy):
                # what lies below the floor is the cycle's. The ids just below the newest are
                # read, so that one still to commit is a gap.
                self._last = floor
                self._gaps = {gap: since for gap, since in self._gaps.items() if gap > floor}
            self._read(connection)

    def noticed(self) -> Set[int]:
        if self._last is None:
            self.start()
            return frozenset()
        with self._connect() as connection:
            return self._read(connection)

    def _connect(self) -> Connection:
        connection = self._engine.connect().execution_options(**{READ_ALONE: True})
        if connection.dialect.name == "postgresql":  # no BEGIN and ROLLBACK round trips
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        return connection

    def _read(self, connection: Connection) -> frozenset[int]:
        """The devices of the readings after the last id seen, and of the gaps that filled."""
        c, last = _history.c, self._last
        assert last is not None
        newer = c.id > last
        if self._gaps:
            newer = or_(newer, c.id.in_(sorted(self._gaps)))
        rows = connection.execute(
            select(c.id, c.device_id).where(newer).order_by(c.id).limit(MAX_ROWS)
        ).all()
        self._track_gaps(last, [row.id for row in rows])
        return frozenset(row.device_id for row in rows)

    def _track_gaps(self, last: int, ids: list[int]) -> None:
        """Forget the gaps now filled and those too old; add the ids skipped by this read."""
        now = self._monotonic()
        gaps = self._gaps
        for seen in ids:
            gaps.pop(seen, None)
        newest = max(ids, default=last)
        if newest > last:
            found = set(ids)
            # A range the size of the rows read: a gap wider than MAX_ROWS is given up at once.
            for missing in range(max(last + 1, newest - MAX_ROWS), newest):
                if missing not in found:
                    gaps[missing] = now
            self._last = newest
        expired = [gap for gap, since in gaps.items() if now - since > GAP_GRACE]
        for gap in expired:
            del gaps[gap]
        if len(gaps) > MAX_GAPS:
            for gap in sorted(gaps)[: len(gaps) - MAX_GAPS]:
                del gaps[gap]
