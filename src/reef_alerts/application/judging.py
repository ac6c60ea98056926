"""Judging: what each alert of a batch of snapshots should do now, as values. No I/O, no clock.

A snapshot whose rows cannot make an alert, or cannot be read, is a `Fault`: it costs that alert
alone, never the batch (ADR 12). An alert with options, or with something remembered, is stepped
through the state machine (ADR 15); any other by the specification's rule, which the machine
equals on such alerts (a law the tests prove) at a fraction of its cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import attrs

from reef_alerts.domain import (
    DEFAULT_OPTIONS,
    NO_MEMORY,
    Alert,
    AlertState,
    Decision,
    Evaluator,
    InvalidAlertError,
    Machine,
    Reading,
    RuleOptions,
    Transition,
    TrendMemory,
    UnreadableValueError,
    quoted,
    window_starts,
)
from reef_alerts.ports import AlertSnapshot, StoredAlert, StoredRule, StoredTrend, stored_seconds


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
        trends: bool = False,
    ) -> None:
        """`metric_limit`: the most characters an event's metric can hold where events are
        written, None when unlimited. `defaults`: the options of an alert that sets none of its
        own (REEF_ALERTS_DEFAULT_*). `trends`: whether trend alerts are judged on their windows
        (the storage keeps their options and state)."""
        self._evaluator = evaluator
        self._machine = Machine(evaluator)
        self._metric_limit = metric_limit
        self._known = known or {}
        self._defaults = defaults
        self.trends = trends
        self._options: dict[tuple[StoredRule | None, StoredTrend | None], RuleOptions] = {}
        self.built: dict[StoredAlert, Alert] = {}
        self.notes: list[tuple[int, str]] = []
        """Alerts built by this judge that were judged in a way worth telling: (id, note)."""

    def __call__(
        self,
        batch: Iterable[AlertSnapshot],
        windows: Mapping[int, Sequence[Reading]] | None = None,
    ) -> list[Verdict]:
        """What each snapshot of `batch` calls for, in order; `windows`: the readings of the
        trend windows `windows_of(batch)` asked for, by device."""
        return [self.judge(snapshot, windows) for snapshot in batch]

    @property
    def until(self) -> datetime:
        """The newest instant a window's reading may have: the newest a reading is trusted."""
        return self._evaluator.newest_trusted

    def windows_of(self, batch: Iterable[AlertSnapshot]) -> dict[int, datetime]:
        """The windows `batch`'s trend alerts are judged on: for each device one of them
        watches, the instant its readings must be newer than (the longest of their windows).
        An alert whose options are broken asks for none; judging it says why."""
        if not self.trends:
            return {}
        windows = []
        for snapshot in batch:
            if not snapshot.alert.trend_enabled or snapshot.device is None:
                continue
            try:
                options = self._options_of(snapshot.rule, snapshot.trend)
            except InvalidAlertError:
                continue
            windows.append((snapshot.device.id, options.trend.window))
        return window_starts(windows, self._evaluator.now)

    def judge(
        self, snapshot: AlertSnapshot, windows: Mapping[int, Sequence[Reading]] | None = None
    ) -> Verdict:
        """What `snapshot`'s alert calls for now."""
        # One unpacking of the whole tuple: two slices of it cost 0.4 µs more an alert, 4 % of
        # a plain alert's judging (docs/performance.md, issue 13).
        (
            stored,
            device,
            reading,
            open_event_id,
            problem,
            _,
            no_data_id,
            rule,
            since,
            forecast_id,
            rate_id,
            trend,
            forecast_since,
            rate_since,
        ) = snapshot
        if problem is not None:
            return Fault(problem)
        try:
            alert = self._known.get(stored) or self._build(stored)
            self.built[stored] = alert
            options = (
                self._defaults if rule is None and trend is None else self._options_of(rule, trend)
            )
            firing = open_event_id is not None
            memory = None
            if not (
                forecast_id is None
                and rate_id is None
                and forecast_since is None
                and rate_since is None
            ):  # nearly never
                memory = TrendMemory(
                    forecast_since, forecast_id is not None, rate_since, rate_id is not None
                )
            judged_on_trend = self.trends and alert.trend_enabled
            if (
                options is DEFAULT_OPTIONS
                and since is None
                and no_data_id is None
                and memory is None
                and not judged_on_trend
            ):
                return self._evaluator.evaluate(alert, device, reading, firing)
            state = _STATES[firing] if since is None and no_data_id is None else None
            if state is None or memory is not None:
                state = AlertState(since, firing, no_data_id is not None, memory or NO_MEMORY)
            window = None
            if judged_on_trend and device is not None and windows is not None:
                window = windows.get(device.id, ())
            return self._machine.step(state, alert, device, reading, options, window)
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

    def _options_of(self, rule: StoredRule | None, trend: StoredTrend | None) -> RuleOptions:
        """An alert's options from its rows, their NULLs the defaults; built once per distinct
        pair of rows. Raises InvalidAlertError on a row the tables' checks should have
        refused."""
        key = (rule, trend)
        options = self._options.get(key)
        if options is None:
            options = self._options[key] = effective_options(rule, self._defaults, trend)
        return options


def effective_options(
    rule: StoredRule | None, defaults: RuleOptions, trend: StoredTrend | None = None
) -> RuleOptions:
    """An alert's options: its own rows', each NULL the default; `defaults` without rows.
    Raises InvalidAlertError on a row the tables' checks should have refused."""
    if rule is None and trend is None:
        return defaults
    options = defaults
    if rule is not None:
        pending, margin, no_data_after = rule
        try:
            options = RuleOptions(
                defaults.pending if pending is None else stored_seconds(pending, "pending_seconds"),
                defaults.recovery_margin if margin is None else margin,
                defaults.no_data_after
                if no_data_after is None
                else stored_seconds(no_data_after, "no_data_after_seconds") or None,
            )
        except (TypeError, ValueError) as error:
            raise InvalidAlertError(
                f"its options in reef_alerts_rules are invalid: {error}"
            ) from None
    if trend is None:
        return options
    try:
        return attrs.evolve(options, trend=trend.options(defaults.trend))
    except (TypeError, ValueError) as error:
        raise InvalidAlertError(
            f"its options in reef_alerts_trend_rules are invalid: {error}"
        ) from None


def _said(error: Exception) -> str:
    """What went wrong, for a person: the domain's own errors say it; others name their type."""
    if isinstance(error, InvalidAlertError | UnreadableValueError):
        return str(error)
    return f"{type(error).__name__}: {error}"
