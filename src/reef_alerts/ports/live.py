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

    def noticed(self) -> Set[int]:
        """The devices with readings committed since the last call, in a transaction of its
        own. The first call only marks where to start, and notices nothing: the full cycle that
        follows it judges everything. Raises when the database cannot be read; what was not
        noticed then is noticed by the next call."""
        ...
