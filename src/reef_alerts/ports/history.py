"""The history port: what a preview reads (issue 14)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import attrs

from reef_alerts.domain import Device, Reading
from reef_alerts.ports.storage import StoredAlert, StoredRule


@attrs.frozen
class History:
    """A device's readings in a range, oldest first."""

    readings: tuple[Reading, ...]
    unreadable: int = 0
    """Rows left out because they could not be decoded."""
    truncated: bool = False
    """The range held more rows than one preview reads: only the newest were read."""


class HistoryReader(Protocol):
    """Reads one alert, its device and the device's history, bounded by a range."""

    def alert(self, alert_id: int) -> tuple[StoredAlert, StoredRule | None] | None:
        """The alert as stored and its options; None when there is no such alert."""
        ...

    def device(self, device_id: int) -> Device | None:
        """The device; None when there is none."""
        ...

    def history(self, device_id: int, since: datetime, until: datetime) -> History:
        """The device's timestamped readings from `since` to `until`."""
        ...
