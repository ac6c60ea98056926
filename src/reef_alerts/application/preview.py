"""Use case: what an alert, stored or drafted, would have done over its device's history
(issue 14). Reads through the history port and replays with the domain's `backtest`, the live
state machine; writes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import attrs

from reef_alerts.application.judging import Judge, effective_options
from reef_alerts.domain import (
    DEFAULT_OPTIONS,
    MAX_EVALUATIONS,
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
from reef_alerts.domain.evaluation import PENDING_GAP
from reef_alerts.ports import (
    AsyncHistoryReader,
    FoundAlert,
    History,
    HistoryReader,
    StoredAlert,
)


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

    def applied_to_row(self, stored: StoredAlert) -> StoredAlert:
        """A stored alert's row with the threshold and operator tried, before it is built."""
        return stored._replace(
            threshold=stored.threshold if self.threshold is None else self.threshold,
            operator=stored.operator if self.operator is None else self.operator,
        )


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


@attrs.frozen
class Plan:
    """What a preview will replay, known before its device and history are read."""

    alert: Alert
    options: RuleOptions
    compared_with: tuple[Alert, RuleOptions] | None
    span: Span
    """The range asked for, cut to the evaluation cap (its newest part kept)."""
    notes: tuple[str, ...] = ()

    @property
    def history_start(self) -> datetime:
        """Where its reads begin: the span's start, earlier by the longest trend window it
        replays, so that the first evaluation's window is whole."""
        replayed = [(self.alert, self.options)]
        if self.compared_with is not None:
            replayed.append(self.compared_with)
        windows = [options.trend.window for alert, options in replayed if alert.trend_enabled]
        return self.span.start - max(windows, default=timedelta(0))


class Previews:
    """The steps of a preview that need no database: what to replay, and the replay. The
    readers below run them around their reads, one synchronously, one asynchronously."""

    def __init__(self, policy: EvaluationPolicy, defaults: RuleOptions = DEFAULT_OPTIONS) -> None:
        self._policy = policy
        self._defaults = defaults

    def of_stored(
        self,
        alert_id: int,
        found: FoundAlert | None,
        changes: Changes,
        span: Span,
    ) -> Plan:
        """The plan for stored alert `alert_id`, as read (`found`), as it is and with
        `changes` where they change anything. Raises NotFoundError, and InvalidAlertError for
        a row the worker could not judge even with the changes (a threshold or operator tried
        mends a broken one: it is then not compared). A disabled alert is previewed as if
        enabled, and says so."""
        if found is None:
            raise NotFoundError(f"there is no alert {alert_id}")
        stored, rule, trend = found
        notes = []
        if stored.enabled is not None and not stored.enabled:
            notes.append(f"alert {alert_id} is disabled: previewed as if enabled")
        stored = stored._replace(enabled=True)
        judge = Judge(self._policy.at(span.start))
        tried = judge.build(changes.applied_to_row(stored))
        options = effective_options(rule, self._defaults, trend)
        tried, tried_options = changes.applied(tried, options)
        try:
            alert: Alert | None = judge.build(stored)
        except InvalidAlertError as error:
            alert = None
            notes.append(f"as stored, alert {alert_id} cannot be judged ({error}): not compared")
        as_stored = None
        if alert is not None and (tried, tried_options) != (alert, options):
            as_stored = (alert, options)
        return Plan(tried, tried_options, as_stored, self._capped(span, notes), tuple(notes))

    def of_draft(self, alert: Alert, changes: Changes, span: Span) -> Plan:
        """The plan for a draft alert with `changes` on the worker's default options, and with
        the defaults alone where that differs."""
        tried, options = changes.applied(alert, self._defaults)
        plain = None if options == self._defaults else (alert, self._defaults)
        notes: list[str] = []
        return Plan(tried, options, plain, self._capped(span, notes), tuple(notes))

    @staticmethod
    def _capped(span: Span, notes: list[str]) -> Span:
        """`span` cut to the evaluation cap before anything is read, keeping its newest part
        (what a keeper tuning a rule looks at), and saying so."""
        if capped_end(span.start, span.end, span.step) == span.end:
            return span
        start = span.end - (MAX_EVALUATIONS - 1) * span.step
        notes.append(
            f"the range holds more than {MAX_EVALUATIONS:,} evaluations at a step of "
            f"{format_duration(span.step)}: replayed from {start:%Y-%m-%d %H:%M:%S} UTC; use a "
            "longer step or a shorter range"
        )
        return attrs.evolve(span, start=start)

    @staticmethod
    def found(plan: Plan, device: Device | None) -> Device:
        """`device`, read for `plan`; raises NotFoundError when there is none."""
        if device is None:
            raise NotFoundError(f"there is no device {plan.alert.device_id}")
        return device

    def replay(self, plan: Plan, device: Device, history: History) -> Preview:
        """The preview of `plan` over `device`'s `history`, read from `plan.span`."""
        span, notes = plan.span, list(plan.notes)
        end = span.end
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
        timeline = self._backtest(plan.alert, device, history, plan.options, span, notes)
        compared = plan.compared_with
        other = None
        if compared is not None:
            other = self._backtest(compared[0], device, history, compared[1], span, notes)
        return Preview(plan.alert, device, plan.options, timeline, other, compared, history)

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


class PreviewAlert:
    """Previews through a synchronous history reader: what the CLI runs."""

    def __init__(self, reader: HistoryReader, previews: Previews) -> None:
        self._reader = reader
        self._previews = previews

    def stored(self, alert_id: int, changes: Changes, span: Span) -> Preview:
        """Stored alert `alert_id` as it is, and with `changes` (Previews.of_stored)."""
        found = self._reader.alert(alert_id)
        return self._replay(self._previews.of_stored(alert_id, found, changes, span))

    def draft(self, alert: Alert, changes: Changes, span: Span) -> Preview:
        """A draft alert with `changes` (Previews.of_draft)."""
        return self._replay(self._previews.of_draft(alert, changes, span))

    def _replay(self, plan: Plan) -> Preview:
        device = self._previews.found(plan, self._reader.device(plan.alert.device_id))
        history = self._reader.history(device.id, plan.history_start, plan.span.end)
        return self._previews.replay(plan, device, history)


class AsyncPreviewAlert:
    """Previews through an asynchronous history reader: what the web app's router runs. The
    replay, pure and CPU-bound, runs through `offload` (by default a worker thread of the
    loop's) so that it never blocks the event loop."""

    def __init__(
        self,
        reader: AsyncHistoryReader,
        previews: Previews,
        offload: Offload = asyncio.to_thread,
    ) -> None:
        self._reader = reader
        self._previews = previews
        self._offload = offload

    async def stored(self, alert_id: int, changes: Changes, span: Span) -> Preview:
        """Stored alert `alert_id` as it is, and with `changes` (Previews.of_stored)."""
        found = await self._reader.alert(alert_id)
        return await self._replay(self._previews.of_stored(alert_id, found, changes, span))

    async def draft(self, alert: Alert, changes: Changes, span: Span) -> Preview:
        """A draft alert with `changes` (Previews.of_draft)."""
        return await self._replay(self._previews.of_draft(alert, changes, span))

    async def _replay(self, plan: Plan) -> Preview:
        device = self._previews.found(plan, await self._reader.device(plan.alert.device_id))
        history = await self._reader.history(device.id, plan.history_start, plan.span.end)
        return await self._offload(self._previews.replay, plan, device, history)


Offload = Callable[
    [Callable[[Plan, Device, History], Preview], Plan, Device, History], Awaitable[Preview]
]
"""Runs a replay away from the event loop: asyncio.to_thread, or a bounded pool's."""

_INSTANT = timedelta(microseconds=1)


__all__ = [
    "AsyncPreviewAlert",
    "Changes",
    "InvalidAlertError",
    "NotFoundError",
    "Offload",
    "Plan",
    "Preview",
    "PreviewAlert",
    "Previews",
    "Span",
]
