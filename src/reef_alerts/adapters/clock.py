"""The system clock adapter."""

from datetime import UTC, datetime


class SystemClock:
    """The machine's wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)
