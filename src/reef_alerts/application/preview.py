"""Use case: what an alert, stored or drafted, would have done over its device's history
(issue 14). Reads through the history port and replays with the domain's `backtest`, the live
state machine; writes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from reef_alerts.application.judging import Judge, effective_options
from reef_alerts.domain import (
    DEFAULT_OPTIONS,
    Alert,
    Device,
    EvaluationPolicy,
    InvalidAlertError,
    RuleOptions,
    Timeline,
    backtest,
)
from reef_alerts.ports import History, HistoryReader


@attrs.frozen
class Span:
    """Where a replay evaluates: from `start` to `end`, every `step`."""

    start: datetime
    end: datetime
    step: timedelta


class NotFoundError(LookupError):
    """The alert or device to preview does not exist."""


@attrs.frozen
class Changes:
    """What to try on a stored alert; None keeps what it has."""

    threshold: float | None = None
    operator: str | None = None
    pending: timedelta | None = None
    recovery_margin: float | None = None
    no_data_after: timedelta | None = None
    no_data_off: bool = False

    def __bool__(self) -> bool:
        return self != Changes()

    def applied(self, alert: Alert, options: RuleOptions) -> tuple[Alert, RuleOptions]:
        """`alert` and `options` with these changes."""
        alert = attrs.evolve(
            alert,
            threshold=alert.threshold if self.threshold is None else self.threshold,
            operator=alert.operator if self.operator is None else self.operator,
        )
        options = attrs.evolve(
            options,
            pending=options.pending if self.pending is None else self.pending,
            recovery_margin=(
                options.recovery_margin if self.recovery_margin is None else self.recovery_margin
            ),
            no_data_after=None
            if self.no_data_off
            else options.no_data_after
            if self.no_data_after is None
            else self.no_data_after,
        )
        return alert, options


@attrs.frozen
class Preview:
    """A backtest, and the same without the options or changes tried, to compare with."""

    alert: Alert
    device: Device
    options: RuleOptions
    timeline: Timeline
    compared: Timeline | None
    """The alert as stored (or, for a draft, by the specification's rule); None when that is
    what `timeline` already is."""
    compared_options: RuleOptions | None
    history: History


class PreviewAlert:
    """Runs previews against one history reader, with the worker's policy and defaults."""

    def __init__(
        self,
        reader: HistoryReader,
        policy: EvaluationPolicy,
        defaults: RuleOptions = DEFAULT_OPTIONS,
    ) -> None:
        self._reader = reader
        self._policy = policy
        self._defaults = defaults

    def stored(self, alert_id: int, changes: Changes, span: Span) -> Preview:
        """Stored alert `alert_id` as it is, and with `changes`. Raises NotFoundError, and
        InvalidAlertError for a row the worker could not judge either."""
        found = self._reader.alert(alert_id)
        if found is None:
            raise NotFoundError(f"there is no alert {alert_id}")
        stored, rule = found
        alert = Judge(self._policy.at(span.start)).build(stored)
        options = effective_options(rule, self._defaults)
        tried, tried_options = changes.applied(alert, options) if changes else (alert, options)
        return self._preview(tried, tried_options, span, (alert, options) if changes else None)

    def draft(self, alert: Alert, options: RuleOptions, span: Span) -> Preview:
        """A draft alert with `options`, and by the specification's rule where they differ."""
        plain = None if options == DEFAULT_OPTIONS else (alert, DEFAULT_OPTIONS)
        return self._preview(alert, options, span, plain)

    def _preview(
        self,
        alert: Alert,
        options: RuleOptions,
        span: Span,
        compared: tuple[Alert, RuleOptions] | None,
    ) -> Preview:
        device = self._reader.device(alert.device_id)
        if device is None:
            raise NotFoundError(f"there is no device {alert.device_id}")
        # From as far back as a reading can stay fresh, so the first evaluations have one.
        since = span.start - self._policy.max_age_for(device)
        history = self._reader.history(device.id, since, span.end)
        timeline = self._backtest(alert, device, history, options, span)
        other = None
        if compared is not None:
            other = self._backtest(compared[0], device, history, compared[1], span)
        return Preview(
            alert,
            device,
            options,
            timeline,
            other,
            None if compared is None else compared[1],
            history,
        )

    def _backtest(
        self,
        alert: Alert,
        device: Device,
        history: History,
        options: RuleOptions,
        span: Span,
    ) -> Timeline:
        timeline = backtest(
            alert, device, history.readings, span.start, span.end, span.step, options, self._policy
        )
        notes = []
        if history.unreadable:
            notes.append(f"{history.unreadable:,} readings could not be read and were left out")
        if history.truncated:
            notes.append("the range holds too many readings: only the newest were read")
        return attrs.evolve(timeline, warnings=(*notes, *timeline.warnings)) if notes else timeline


__all__ = ["Changes", "InvalidAlertError", "NotFoundError", "Preview", "PreviewAlert", "Span"]
