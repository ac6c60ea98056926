"""The live path's bookkeeping (issue 16, ADR 23): when time alone may next change how each
device's newest reading is judged, and each alert's state, so that a live pass judges, besides
the alerts of devices with new readings, only those whose instant has come."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from reef_alerts.ports import Focus


class Deadlines:
    """Instants at which a device's alerts, or one alert, must be judged again although no new
    reading came: a reading goes stale or stops being from the future (by device), a pending
    duration ends or a device falls silent (by alert)."""

    def __init__(self) -> None:
        self._devices: dict[int, datetime] = {}
        self._alerts: dict[int, datetime] = {}
        self._earliest: datetime | None = None

    def __len__(self) -> int:
        return len(self._devices) + len(self._alerts)

    def due(self, now: datetime) -> Focus:
        """The devices and alerts whose instant is `now` or earlier."""
        if self._earliest is None or self._earliest > now:
            return Focus()
        return Focus(
            frozenset(key for key, at in self._devices.items() if at <= now),
            frozenset(key for key, at in self._alerts.items() if at <= now),
        )

    def replace(
        self, devices: Mapping[int, datetime | None], alerts: Mapping[int, datetime]
    ) -> None:
        """Forget every instant; keep those a full cycle found."""
        self._devices = {key: at for key, at in devices.items() if at is not None}
        self._alerts = dict(alerts)
        self._find_earliest()

    def update(
        self,
        devices: Mapping[int, datetime | None],
        alerts: Mapping[int, datetime],
        judged: Iterable[int],
        focus: Focus,
    ) -> None:
        """After a live pass over `focus` that judged the alerts `judged`: their instants and
        their devices' are the pass's; a focused device none of whose alerts was judged (none
        is enabled now) has none."""
        for key in focus.devices:
            self._devices.pop(key, None)
        for key, at in devices.items():
            if at is None:
                self._devices.pop(key, None)
            else:
                self._devices[key] = at
        for key in judged:
            self._alerts.pop(key, None)
        self._alerts.update(alerts)
        self._find_earliest()

    def _find_earliest(self) -> None:
        self._earliest = min((*self._devices.values(), *self._alerts.values()), default=None)
