"""Judging: what each alert of a batch of snapshots should do now, as values. No I/O, no clock.

A snapshot whose rows cannot make an alert, or cannot be read, is a `Fault`: it costs that alert
alone, never the batch (ADR 12).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from reef_alerts.domain import (
    Alert,
    Decision,
    Evaluator,
    InvalidAlertError,
    UnreadableValueError,
    quoted,
)
from reef_alerts.ports import AlertSnapshot, StoredAlert


@attrs.frozen
class Fault:
    """The alert cannot be judged: its row, or a row it depends on, is broken, or judging it
    raised. `reason` names the device and reading and says what is wrong."""

    reason: str


Verdict = Decision | Fault


class Judge:
    """Judges snapshots with one evaluator, fixed at the cycle's instant.

    Builds each alert from its row once: `built` holds this judge's alerts, to hand to the next
    cycle's judge as `known`, so an unchanged row is not built again (ADR 7).
    """

    def __init__(
        self,
        evaluator: Evaluator,
        *,
        metric_limit: int | None = None,
        known: dict[StoredAlert, Alert] | None = None,
    ) -> None:
        """`metric_limit`: the most characters an event's metric can hold where events are
        written, None when unlimited."""
        self._evaluator = evaluator
        self._metric_limit = metric_limit
        self._known = known or {}
        self.built: dict[StoredAlert, Alert] = {}
        self.notes: list[tuple[int, str]] = []
        """Alerts built by this judge that were judged in a way worth telling: (id, note)."""

    def __call__(self, batch: Iterable[AlertSnapshot]) -> list[Verdict]:
        """What each snapshot of `batch` calls for, in order."""
        return [self.judge(snapshot) for snapshot in batch]

    def judge(self, snapshot: AlertSnapshot) -> Verdict:
        """What `snapshot`'s alert calls for now."""
        stored, device, reading, open_event_id, problem, _ = snapshot
        if problem is not None:
            return Fault(problem)
        try:
            alert = self._known.get(stored) or self._build(stored)
            self.built[stored] = alert
            return self._evaluator.evaluate(alert, device, reading, open_event_id is not None)
        except Exception as error:  # noqa: BLE001 - one bad alert must not stop the others
            shown = "none" if reading is None else reading.id
            return Fault(f"device {stored.device_id}, reading {shown}: {_said(error)}")

    def _build(self, stored: StoredAlert) -> Alert:
        if stored.enabled is not None and stored.enabled not in (True, 1):
            raise InvalidAlertError(f"is_enabled {quoted(stored.enabled)} is not a boolean")
        if stored.trend_enabled not in (None, True, False):
            raise InvalidAlertError(
                f"trend_enabled {quoted(stored.trend_enabled)} is not a boolean"
            )
        if not isinstance(stored.device_id, int):
            raise InvalidAlertError(f"device_id {quoted(stored.device_id)} is not a whole number")
        alert = Alert(
            id=stored.id,
            device_id=stored.device_id,
            metric=stored.metric,
            operator=stored.operator,
            threshold=stored.threshold,
            trend_enabled=bool(stored.trend_enabled),
        )
        if self._metric_limit is not None and len(alert.metric) > self._metric_limit:
            raise InvalidAlertError(
                f"metric {quoted(alert.metric)} is longer than the {self._metric_limit} "
                "characters alert_events.metric can hold here"
            )
        if stored.enabled is None:  # noted once the row is known to make an alert
            self.notes.append(
                (
                    stored.id,
                    "its is_enabled is NULL, neither true nor false; it is evaluated as the "
                    "column's default, enabled (set it to true or false)",
                )
            )
        return alert


def _said(error: Exception) -> str:
    """What went wrong, for a person: the domain's own errors say it; others name their type."""
    if isinstance(error, InvalidAlertError | UnreadableValueError):
        return str(error)
    return f"{type(error).__name__}: {error}"
