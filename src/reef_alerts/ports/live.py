"""Live-path ports (issue 16): which readings are new since the worker last looked, and which
alerts a live pass judges."""

from __future__ import annotations

from collections.abc import Set
from typing import Protocol

import attrs


@attrs.frozen
class Focus:
    """The alerts a live pass judges: every enabled alert of `devices`, and the alerts
    `alerts`."""

    devices: frozenset[int] = frozenset()
    alerts: frozenset[int] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.devices or self.alerts)

    def __or__(self, other: Focus) -> Focus:
        return Focus(self.devices | other.devices, self.alerts | other.alerts)


class ReadingWatcher(Protocol):
    """Tells the devices that have new readings, cheaply enough to ask every second."""

    def start(self) -> None:
        """Mark the readings committed so far as seen: a full cycle is about to read them all.
        Called before each full cycle's read, so that live passes never judge a backlog the
        cycle has judged (after the database was down, say)."""
        ...

    def noticed(self) -> Set[int]:
        """The devices with readings committed since `start` or the last call. Raises when the
        database cannot be read; what was not noticed then is noticed by the next call."""
        ...
