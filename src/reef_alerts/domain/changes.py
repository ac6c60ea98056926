"""What a decision changes in storage: an event to open, or the open event to close.

One function, shared by the live cycle and by anything that replays decisions, so that both
change events by the same rule.
"""

from __future__ import annotations

from datetime import datetime
from typing import assert_never

from reef_alerts.domain.evaluation import Decision, NoChange, Pending, Resolve, Skip, Trigger
from reef_alerts.domain.model import AlertEvent, Resolution

EventChange = AlertEvent | Resolution
"""An event to open, or an open event to close."""


def fold(
    alert_id: int | None, decision: Decision, open_event_id: int | None, now: datetime
) -> EventChange | None:
    """The change `decision` makes to the events of alert `alert_id`, whose open event is
    `open_event_id` (None when none is open), at `now`; None when it changes nothing."""
    match decision:
        case Trigger(event=event):
            if open_event_id is not None:
                raise ValueError(f"alert {alert_id} triggered while event {open_event_id} is open")
            return event
        case Resolve(value=value):
            if open_event_id is None:
                raise ValueError(f"alert {alert_id} resolved with no event open")
            return Resolution(open_event_id, alert_id, now, value)
        case Skip() | NoChange() | Pending():
            return None
        case _:
            assert_never(decision)
