"""The history port: what a preview reads (issue 14)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple, Protocol

import attrs

from reef_alerts.domain import Device, Reading
from reef_alerts.ports.storage import StoredAlert, StoredRule, StoredTrend


class FoundAlert(NamedTuple):
    """An alert as stored, with its options and trend options (None where it has none)."""

    alert: StoredAlert
    rule: StoredRule | None = None
    trend: StoredTrend | None = None


@attrs.frozen
class History:
    """A device's readings in a range, oldest first."""

    readings: tuple[Reading, ...]
    unreadable: int = 0
    """Rows left out because they could not be decoded."""
    complete_until: datetime | None = None
    """Where the range held more readings than one preview reads: the instant before which
    the readings are complete, and the replay must stop. None: complete to the end."""


class HistoryReader(Protocol):
    """Reads one alert, its device and the device's history, bounded by a range."""

    def alert(self, alert_id: int) -> FoundAlert | None:
        """The alert as stored and its options; None when there is no such alert."""
        ...

    def device(self, device_id: int) -> Device | None:
        """The device; None when there is none."""
        ...

    def history(self, device_id: int, start: datetime, end: datetime) -> History:
        """What a replay from `start` to `end` needs: the device's newest timestamped reading
        at or before `start`, and its readings after it up to `end`, oldest first."""
        ...


class AsyncHistoryReader(Protocol):
    """HistoryReader for an event loop: the same reads, awaited."""

    async def alert(self, alert_id: int) -> FoundAlert | None:
        """The alert as stored and its options; None when there is no such alert."""
        ...

    async def device(self, device_id: int) -> Device | None:
        """The device; None when there is none."""
        ...

    async def history(self, device_id: int, start: datetime, end: datetime) -> History:
        """As HistoryReader.history."""
        ...
