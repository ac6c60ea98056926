"""The live path's bookkeeping (issue 16, ADR 23): when time alone may next change how each
device's newest reading is judged, and each alert's state, so that a live pass judges, besides
the alerts of devices with new readings, only those whose instant has come."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Final

from reef_alerts.ports import Focus

_DEVICE: Final = 0
_ALERT: Final = 1


class Deadlines:
    """Instants at which a device's alerts, or one alert, must be judged again although no new
    reading came: a reading goes stale or stops being from the future (by device), a pending
    duration ends or a device falls silent (by alert). What is due stays due until a pass has
    judged it.

    A heap of instants, its entries checked against the current ones when they come up (an
    instant a pass replaced is dropped then), so that a pass costs what is due, not what is
    known: a fleet whose 100,000 alerts all have options has as many instants."""

    def __init__(self) -> None:
        self._instants: tuple[dict[int, datetime], dict[int, datetime]] = ({}, {})
        self._heap: list[tuple[datetime, int, int]] = []
        """(instant, kind, key), some of them replaced since: checked when they come up."""
        self._overdue: tuple[set[int], set[int]] = (set(), set())

    def __len__(self) -> int:
        return sum(map(len, self._instants))

    def due(self, now: datetime) -> Focus:
        """The devices and alerts whose instant is `now` or earlier."""
        heap, instants, overdue = self._heap, self._instants, self._overdue
        while heap and heap[0][0] <= now:
            at, kind, key = heapq.heappop(heap)
            if instants[kind].get(key) == at:
                overdue[kind].add(key)
        return Focus(frozenset(overdue[_DEVICE]), frozenset(overdue[_ALERT]))

    def replace(
        self, devices: Mapping[int, datetime | None], alerts: Mapping[int, datetime]
    ) -> None:
        """Forget every instant; keep those a full cycle found."""
        self._instants, self._heap, self._overdue = ({}, {}), [], (set(), set())
        self._add(devices, alerts, self._heap.append)
        heapq.heapify(self._heap)

    def update(
        self,
        devices: Mapping[int, datetime | None],
        alerts: Mapping[int, datetime],
        judged: Iterable[int],
        focus: Focus,
    ) -> None:
        """After a live pass over `focus` that judged the alerts `judged`: their instants and
        their devices' are the pass's. A device or alert of the focus that the pass did not
        judge (none of the device's alerts is enabled now, the alert was disabled) has none."""
        for kind, keys in ((_DEVICE, focus.devices), (_ALERT, (*focus.alerts, *judged))):
            known, overdue = self._instants[kind], self._overdue[kind]
            for key in keys:
                known.pop(key, None)
                overdue.discard(key)
        heap = self._heap
        self._add(devices, alerts, lambda entry: heapq.heappush(heap, entry))

    def _add(
        self,
        devices: Mapping[int, datetime | None],
        alerts: Mapping[int, datetime],
        push: Callable[[tuple[datetime, int, int]], None],
    ) -> None:
        for kind, found in ((_DEVICE, devices), (_ALERT, alerts)):
            known, overdue = self._instants[kind], self._overdue[kind]
            for key, at in found.items():
                overdue.discard(key)
                if at is None:
                    known.pop(key, None)
                else:
                    known[key] = at
                    push((at, kind, key))
