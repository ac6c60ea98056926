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
    capped_end,
    format_duration,
)
from reef_alerts.domain.rules import PENDING_GAP
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
    """The alert as stored (or, for a draft, with the default options alone); None when that
    is what `timeline` already is."""
    compared_with: tuple[Alert, RuleOptions] | None
    """What `compared` replayed."""
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
        """Stored alert `alert_id` as it is, and with `changes` where they change anything.
        Raises NotFoundError, and InvalidAlertError for a row the worker could not judge
        either. A disabled alert is previewed as if enabled, and says so."""
        found = self._reader.alert(alert_id)
        if found is None:
            raise NotFoundError(f"there is no alert {alert_id}")
        stored, rule = found
        notes = []
        if stored.enabled is not None and not stored.enabled:
            notes.append(f"alert {alert_id} is disabled: previewed as if enabled")
        alert = Judge(self._policy.at(span.start)).build(stored._replace(enabled=True))
        options = effective_options(rule, self._defaults)
        tried, tried_options = changes.applied(alert, options)
        as_stored = None if (tried, tried_options) == (alert, options) else (alert, options)
        return self._preview(tried, tried_options, span, as_stored, notes)

    def draft(self, alert: Alert, changes: Changes, span: Span) -> Preview:
        """A draft alert with `changes` on the worker's default options, and with the
        defaults alone where that differs."""
        tried, options = changes.applied(alert, self._defaults)
        plain = None if options == self._defaults else (alert, self._defaults)
        return self._preview(tried, options, span, plain, [])

    def _preview(
        self,
        alert: Alert,
        options: RuleOptions,
        span: Span,
        compared: tuple[Alert, RuleOptions] | None,
        notes: list[str],
    ) -> Preview:
        device = self._reader.device(alert.device_id)
        if device is None:
            raise NotFoundError(f"there is no device {alert.device_id}")
        end = capped_end(span.start, span.end, span.step)
        history = self._reader.history(device.id, span.start, end)
        if history.complete_until is not None and history.complete_until <= end:
            end = history.complete_until - _INSTANT
            notes.append(
                f"the range holds more readings than one preview reads: replayed up to "
                f"{end:%Y-%m-%d %H:%M:%S} UTC; use a shorter range"
            )
        if history.unreadable:
            notes.append(
                f"{history.unreadable:,} readings could not be read and were left out; the "
                "worker could not have judged the alert while one was the newest"
            )
        span = attrs.evolve(span, end=max(end, span.start))
        timeline = self._backtest(alert, device, history, options, span, notes)
        other = None
        if compared is not None:
            other = self._backtest(compared[0], device, history, compared[1], span, notes)
        return Preview(
            alert,
            device,
            options,
            timeline,
            other,
            None if compared is None else compared,
            history,
        )

    def _backtest(
        self,
        alert: Alert,
        device: Device,
        history: History,
        options: RuleOptions,
        span: Span,
        notes: list[str],
    ) -> Timeline:
        timeline = backtest(
            alert, device, history.readings, span.start, span.end, span.step, options, self._policy
        )
        if options.pending and span.step > PENDING_GAP:
            notes = [
                *notes,
                f"a step of {format_duration(span.step)} is longer than the "
                f"{format_duration(PENDING_GAP)} a pending condition may go unseen: pending "
                "events never open; use a shorter step",
            ]
        return attrs.evolve(timeline, warnings=(*notes, *timeline.warnings)) if notes else timeline


_INSTANT = timedelta(microseconds=1)


__all__ = ["Changes", "InvalidAlertError", "NotFoundError", "Preview", "PreviewAlert", "Span"]
