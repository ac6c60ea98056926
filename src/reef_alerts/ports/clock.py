"""The clock port: the only source of "now" for evaluation."""

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """Tells the time."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...
