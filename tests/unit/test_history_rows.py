"""A preview's history rows: decoded as the cycle's are, oldest first, and cut where the range
held more than one preview reads."""

from datetime import timedelta

from reef_alerts.adapters.history import history_of
from tests.fakes import T0


def row(reading_id: int, minutes: int, value: float = 80.0) -> tuple:
    at = (T0 + timedelta(minutes=minutes)).isoformat()
    return (reading_id, at, value, None, None)


def test_rows_become_readings_oldest_first_with_unreadable_ones_counted():
    history = history_of(1, [row(2, 5), row(1, 0), (3, "yesterday", 1.0, None, None)])
    assert [r.id for r in history.readings] == [1, 2]
    assert history.unreadable == 1
    assert history.complete_until is None


def test_a_range_with_more_rows_than_the_limit_is_complete_only_before_the_last_instant_read():
    rows = [row(1, 0), row(2, 1), row(3, 2), row(4, 3), row(5, 3)]  # two readings at minute 3
    history = history_of(1, rows, limit=3)
    assert [r.id for r in history.readings] == [1, 2, 3]
    assert history.complete_until == T0 + timedelta(minutes=3)
