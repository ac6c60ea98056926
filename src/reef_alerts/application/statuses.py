"""Why an alert cannot be judged, kept from cycle to cycle: a change is worth a log line and a
row (ADR 13); the same reason again is not."""

from __future__ import annotations

from datetime import datetime

from reef_alerts.application.judging import Fault, Verdict
from reef_alerts.domain import Skip
from reef_alerts.ports import RecordedStatus, StatusChange

SKIPPED = "skipped"
ERROR = "error"

REASON_LIMIT = 1_000
"""Characters of a reason a status keeps."""


def status_change(
    alert_id: int, recorded: RecordedStatus | None, verdict: Verdict, now: datetime
) -> StatusChange | None:
    """How `verdict` changes the alert's recorded status; None when it does not."""
    if isinstance(verdict, Skip):
        state, code, reason = SKIPPED, verdict.code.value, verdict.reason
    elif isinstance(verdict, Fault):
        state, code, reason = ERROR, ERROR, verdict.reason
    else:
        if recorded is None:
            return None
        return StatusChange(alert_id, None, None, None, now)
    if recorded is not None and (recorded.state, recorded.code) == (state, code):
        return None
    return StatusChange(alert_id, state, code, reason[:REASON_LIMIT], now)
