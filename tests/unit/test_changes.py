"""fold: the one rule by which a decision changes an alert's events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reef_alerts.domain import (
    Alert,
    Device,
    NoChange,
    Reading,
    Resolution,
    Resolve,
    Skip,
    SkipCode,
    Trigger,
    evaluate,
    fold,
)

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)
TOO_HOT = Alert(3, 1, "temperature", ">", 82.0)
TANK = Device(1, "Main Tank", "heater")


def test_a_trigger_opens_its_event() -> None:
    decision = evaluate(TOO_HOT, TANK, Reading(12, 1, NOW, 85.2), False, NOW)
    assert isinstance(decision, Trigger)

    assert fold(3, decision, None, NOW) is decision.event


def test_a_resolve_closes_the_open_event_at_now_with_the_value() -> None:
    assert fold(3, Resolve(80.1, "cleared"), 41, NOW) == Resolution(41, 3, NOW, 80.1)


@pytest.mark.parametrize(
    "decision", [Skip(SkipCode.STALE_READING, "old"), NoChange(81.0)], ids=["skip", "no change"]
)
@pytest.mark.parametrize("open_event_id", [None, 41])
def test_a_skip_or_no_change_changes_nothing(
    decision: Skip | NoChange, open_event_id: int | None
) -> None:
    assert fold(3, decision, open_event_id, NOW) is None


def test_a_trigger_with_an_event_open_or_a_resolve_with_none_is_refused() -> None:
    trigger = evaluate(TOO_HOT, TANK, Reading(12, 1, NOW - timedelta(seconds=1), 85.2), False, NOW)
    assert isinstance(trigger, Trigger)

    with pytest.raises(ValueError, match="while event 41 is open"):
        fold(3, trigger, 41, NOW)
    with pytest.raises(ValueError, match="resolved with no event open"):
        fold(3, Resolve(80.1, "cleared"), None, NOW)
