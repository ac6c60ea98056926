"""Judging: what each alert of a batch of snapshots should do now, as values. No I/O, no clock.

A snapshot whose rows cannot make an alert, or cannot be read, is a `Fault`: it costs that alert
alone, never the batch (ADR 12). An alert with options, or with something remembered, is stepped
through the state machine (ADR 15); any other by the specification's rule, which the machine
equals on such alerts (a law the tests prove) at a fraction of its cost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta

import attrs

from reef_alerts.domain import (
    DEFAULT_OPTIONS,
    Alert,
    AlertState,
    Decision,
    Evaluator,
    InvalidAlertError,
    Machine,
    RuleOptions,
    Transition,
    UnreadableValueError,
    quoted,
)
from reef_alerts.ports import AlertSnapshot, StoredAlert, StoredRule


@attrs.frozen
class Fault:
    """The alert cannot be judged: its row, or a row it depends on, is broken, or judging it
    raised. `reason` names the device and reading and says what is wrong."""

    reason: str


_STATES = {firing: AlertState(None, firing, False) for firing in (False, True)}
"""The states of nearly every alert with options, made once (they are frozen)."""

Verdict = Decision | Transition | Fault
"""A Decision for an alert judged by the specification's rule, a Transition for one stepped
through the state machine."""


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
        defaults: RuleOptions = DEFAULT_OPTIONS,
    ) -> None:
        """`metric_limit`: the most characters an event's metric can hold where events are
        written, None when unlimited. `defaults`: the options of an alert that sets none of its
        own (REEF_ALERTS_DEFAULT_*)."""
        self._evaluator = evaluator
        self._machine = Machine(evaluator)
        self._metric_limit = metric_limit
        self._known = known or {}
        self._defaults = defaults
        self._options: dict[StoredRule, RuleOptions] = {}
        self.built: dict[StoredAlert, Alert] = {}
        self.notes: list[tuple[int, str]] = []
        """Alerts built by this judge that were judged in a way worth telling: (id, note)."""

    def __call__(self, batch: Iterable[AlertSnapshot]) -> list[Verdict]:
        """What each snapshot of `batch` calls for, in order."""
        return [self.judge(snapshot) for snapshot in batch]

    def judge(self, snapshot: AlertSnapshot) -> Verdict:
        """What `snapshot`'s alert calls for now."""
        stored, device, reading, open_event_id, problem, _, no_data_id, rule, since = snapshot
        if problem is not None:
            return Fault(problem)
        try:
            alert = self._known.get(stored) or self._build(stored)
            self.built[stored] = alert
            options = self._defaults if rule is None else self._options_of(rule)
            firing = open_event_id is not None
            if options is DEFAULT_OPTIONS and since is None and no_data_id is None:
                return self._evaluator.evaluate(alert, device, reading, firing)
            state = _STATES[firing] if since is None and no_data_id is None else None
            if state is None:
                state = AlertState(since, firing, no_data_id is not None)
            return self._machine.step(state, alert, device, reading, options)
        except Exception as error:  # noqa: BLE001 - one bad alert must not stop the others
            shown = "none" if reading is None else reading.id
            return Fault(f"device {stored.device_id}, reading {shown}: {_said(error)}")

    def build(self, stored: StoredAlert) -> Alert:
        """The alert `stored` makes; raises InvalidAlertError for a row that makes none."""
        return self._build(stored)

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

    def _options_of(self, rule: StoredRule) -> RuleOptions:
        """An alert's options from its row, its NULLs the defaults; built once per distinct
        row. Raises InvalidAlertError on a row the rules table's checks should have refused."""
        options = self._options.get(rule)
        if options is None:
            options = self._options[rule] = effective_options(rule, self._defaults)
        return options


def effective_options(rule: StoredRule | None, defaults: RuleOptions) -> RuleOptions:
    """An alert's options: its own row's, each NULL the default; `defaults` without a row.
    Raises InvalidAlertError on a row the rules table's checks should have refused."""
    if rule is None:
        return defaults
    pending, margin, no_data_after = rule
    try:
        return RuleOptions(
            defaults.pending if pending is None else _duration(pending, "pending_seconds"),
            defaults.recovery_margin if margin is None else margin,
            defaults.no_data_after
            if no_data_after is None
            else _duration(no_data_after, "no_data_after_seconds") or None,
        )
    except (TypeError, ValueError) as error:
        raise InvalidAlertError(f"its options in reef_alerts_rules are invalid: {error}") from None


def _duration(seconds: object, column: str) -> timedelta:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"{column} {quoted(seconds)} is not a number of seconds")
    if not math.isfinite(seconds) or abs(seconds) > 1e9:
        raise ValueError(f"{column} {seconds!r} is not a number of seconds it can use")
    return timedelta(seconds=seconds)


def _said(error: Exception) -> str:
    """What went wrong, for a person: the domain's own errors say it; others name their type."""
    if isinstance(error, InvalidAlertError | UnreadableValueError):
        return str(error)
    return f"{type(error).__name__}: {error}"
