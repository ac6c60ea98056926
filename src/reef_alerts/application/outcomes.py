"""What a cycle or live pass did: its statistics, the event changes it wrote, and the lines it
logs about them."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

import attrs

from reef_alerts.application.statuses import ERROR, SKIPPED
from reef_alerts.domain import (
    EventKind,
    OpenNoData,
    OpenTrend,
    Pending,
    Resolution,
    Resolve,
    ResolveNoData,
    ResolveTrend,
    Trigger,
)
from reef_alerts.ports import AppliedChanges, RecordedStatus, StatusChange

STATUS_LINES = 20
"""Status changes a cycle and the live passes before it log one by one; the cycle counts the
rest in one line."""


@attrs.frozen
class WrittenChange:
    """An event a cycle opened or resolved (or, in a dry run, would have)."""

    change: Literal[
        "trigger",
        "resolve",
        "no_data",
        "no_data_resolved",
        "forecast",
        "forecast_resolved",
        "rate",
        "rate_resolved",
    ]
    alert_id: int | None
    value: float | None
    reason: str
    reading_at: datetime | None = None
    """For a trigger: the timestamp of the reading that opened the event."""


_RULE_COUNTS = frozenset(
    {"pending", "no_data_opened", "no_data_resolved", "trend_opened", "trend_resolved"}
)

ALERT_STATES = ("ok", "pending", "firing", "no_data", "skipped", "error")
"""What a cycle leaves an alert in (CycleStats.states)."""


@attrs.define
class CycleStats:
    """What one cycle did. `total_alerts` = `evaluated` + `skipped` + `errors`."""

    total_alerts: int = 0
    evaluated: int = 0
    """Alerts whose condition was checked against a reading."""
    triggered: int = 0
    resolved: int = 0
    skipped: int = 0
    """Alerts that could not be judged now: no device, no fresh reading, no usable metric."""
    errors: int = 0
    """Alerts whose stored definition is broken, or whose evaluation raised."""
    pending: int = 0
    """Of the evaluated, alerts whose condition holds but has not held for long enough yet."""
    no_data_opened: int = 0
    """No-data events opened: devices that fell silent."""
    no_data_resolved: int = 0
    trend_opened: int = 0
    """Forecast and rate events opened (issue 13)."""
    trend_resolved: int = 0
    changes: list[WrittenChange] = attrs.field(factory=list, repr=False)
    """The events the cycle opened and resolved, in that order."""
    states: dict[str, int] = attrs.field(factory=dict, repr=False)
    """The alerts by the state the cycle left them in (ALERT_STATES), as `reef-alerts alerts`
    tells them: no data first, then skipped or error, firing, pending, ok."""

    def as_dict(self) -> dict[str, int]:
        """The counts (not the changes): the specification's six, and the rule options' where
        any is not 0, so that a fleet without options logs what the specification shows."""
        counts = attrs.asdict(
            self, filter=lambda attribute, _: attribute.name not in ("changes", "states")
        )
        return {k: v for k, v in counts.items() if v or k not in _RULE_COUNTS}


@attrs.define
class Decided:
    """What a cycle decided to write, for its report once the writes are known."""

    triggers: list[Trigger] = attrs.Factory(list)
    resolves: list[tuple[Resolution, Resolve]] = attrs.Factory(list)
    statuses: list[tuple[StatusChange, RecordedStatus | None]] = attrs.Factory(list)
    """Status changes, with the status each replaces."""
    no_data_opened: list[OpenNoData] = attrs.Factory(list)
    no_data_resolved: list[tuple[Resolution, ResolveNoData]] = attrs.Factory(list)
    pending: list[tuple[int, Pending]] = attrs.Factory(list)
    """The alerts whose condition began to hold, and must go on holding, in this cycle."""
    trend_opened: list[OpenTrend] = attrs.Factory(list)
    trend_resolved: list[tuple[Resolution, ResolveTrend]] = attrs.Factory(list)

    def as_applied(self) -> AppliedChanges:
        """Every decided change, as if all were written."""
        events = [t.event for t in self.triggers] + [o.event for o in self.no_data_opened]
        events += [o.event for o in self.trend_opened]
        resolutions = [r for r, _ in self.resolves] + [r for r, _ in self.no_data_resolved]
        resolutions += [r for r, _ in self.trend_resolved]
        return AppliedChanges(
            frozenset((e.alert_id, e.kind.value) for e in events if e.alert_id is not None),
            frozenset(resolution.event_id for resolution in resolutions),
        )


class CycleReport:
    """Logs and counts what cycles and live passes wrote; keeps, between a cycle and the next,
    what the live passes between them have said."""

    def __init__(self, log: logging.Logger, *, dry_run: bool = False) -> None:
        self._log = log
        self._dry_run = dry_run
        self._lines_left = STATUS_LINES
        self._unsaid: list[StatusChange] = []
        """Status changes of live passes beyond STATUS_LINES, for the next cycle to count."""

    def _say(
        self, statuses: list[tuple[StatusChange, RecordedStatus | None]], *, live: bool
    ) -> None:
        """One line for each alert whose status changed, up to STATUS_LINES from a cycle and
        the live passes before it, and one for the rest, said by the cycle: a WARNING when an
        alert cannot be judged, so that a keeper never needs DEBUG to learn that an alert is
        dead, and no flood when a thousand change at once (a worker's first cycle on a big
        fleet, a controller that went down, its probes going stale one pass after another)."""
        said = statuses[: self._lines_left]
        for change, was in said:
            self._say_one(change, was)
        self._lines_left -= len(said)
        rest = [change for change, _ in statuses[len(said) :]]
        if live:
            self._unsaid.extend(rest)
            return
        when = "since the last cycle" if self._unsaid else "in this cycle"
        rest, self._unsaid, self._lines_left = self._unsaid + rest, [], STATUS_LINES
        if rest:
            states = [change.state for change in rest]
            ids = ", ".join(str(change.alert_id) for change in rest[:STATUS_LINES])
            self._log.warning(
                "... and %d more alerts changed status %s (%d skipped, %d could not "
                "be evaluated, %d judged again): alerts %s%s; `reef-alerts alerts` says why",
                len(rest),
                when,
                states.count(SKIPPED),
                states.count(ERROR),
                states.count(None),
                ids,
                ", ..." if len(rest) > STATUS_LINES else "",
            )

    def _say_one(self, change: StatusChange, was: RecordedStatus | None) -> None:
        if change.state == ERROR:
            self._log.warning("Alert %d could not be evaluated: %s", change.alert_id, change.reason)
        elif change.state == SKIPPED:
            self._log.warning("Alert %d is skipped: %s", change.alert_id, change.reason)
        elif was is not None:
            self._log.info(
                "Alert %d is judged again (it was %s since %s)",
                change.alert_id,
                was.state,
                f"{was.since:%Y-%m-%d %H:%M:%S} UTC",
            )

    def __call__(
        self, decided: Decided, applied: AppliedChanges, stats: CycleStats, *, live: bool
    ) -> None:
        """Count and log what was written, which under concurrency can be less than decided."""
        self._say(decided.statuses, live=live)
        for trigger in decided.triggers:
            event = trigger.event
            if (event.alert_id, event.kind.value) not in applied.opened:
                self._log.debug("Alert %d: another worker opened its event first", event.alert_id)
                continue
            stats.triggered += 1
            stats.changes.append(
                WrittenChange(
                    "trigger",
                    event.alert_id,
                    event.current_value,
                    trigger.reason,
                    trigger.reading_at,
                )
            )
            if self._dry_run:
                continue
            self._log.info("Alert %d triggered: %s", event.alert_id, trigger.reason)
            self._log.info(
                "Created alert event for alert %d, device %s, value %s",
                event.alert_id,
                event.metadata["device_name"],
                event.current_value,
            )
        for resolution, resolve in decided.resolves:
            if resolution.event_id not in applied.resolved:
                self._log.debug(
                    "Alert %d: another worker resolved its event first", resolution.alert_id
                )
                continue
            stats.resolved += 1
            stats.changes.append(
                WrittenChange("resolve", resolution.alert_id, resolution.value, resolve.reason)
            )
            if not self._dry_run:
                self._log.info("Alert %d resolved: %s", resolution.alert_id, resolve.reason)
        self._report_no_data(decided, applied, stats)
        self._report_trend(decided, applied, stats)
        if not self._dry_run:
            for alert_id, pending in decided.pending:
                self._log.info("Alert %d pending: %s", alert_id, pending.reason)

    def _report_no_data(self, decided: Decided, applied: AppliedChanges, stats: CycleStats) -> None:
        for opening in decided.no_data_opened:
            event = opening.event
            if (event.alert_id, event.kind.value) not in applied.opened:
                self._log.debug(
                    "Alert %d: another worker opened its no-data event first", event.alert_id
                )
                continue
            stats.no_data_opened += 1
            stats.changes.append(WrittenChange("no_data", event.alert_id, None, opening.reason))
            if not self._dry_run:
                self._log.warning(
                    "Alert %d: no data: %s; opened a no-data event", event.alert_id, opening.reason
                )
        for resolution, resolve in decided.no_data_resolved:
            if resolution.event_id not in applied.resolved:
                continue
            stats.no_data_resolved += 1
            stats.changes.append(
                WrittenChange(
                    "no_data_resolved", resolution.alert_id, resolution.value, resolve.reason
                )
            )
            if not self._dry_run:
                self._log.info(
                    "Alert %d: %s; resolved its no-data event", resolution.alert_id, resolve.reason
                )

    def _report_trend(self, decided: Decided, applied: AppliedChanges, stats: CycleStats) -> None:
        for opening in decided.trend_opened:
            event = opening.event
            if (event.alert_id, event.kind.value) not in applied.opened:
                continue
            stats.trend_opened += 1
            stats.changes.append(
                WrittenChange(
                    _opened_kind(event.kind), event.alert_id, event.current_value, opening.reason
                )
            )
            if not self._dry_run:
                self._log.warning(
                    "Alert %d: %s; opened a %s event",
                    event.alert_id,
                    opening.reason,
                    event.kind.value,
                )
        for resolution, resolve in decided.trend_resolved:
            if resolution.event_id not in applied.resolved:
                continue
            stats.trend_resolved += 1
            stats.changes.append(
                WrittenChange(
                    _resolved_kind(resolve.kind),
                    resolution.alert_id,
                    resolution.value,
                    resolve.reason,
                )
            )
            if not self._dry_run:
                self._log.info(
                    "Alert %d: %s; resolved its %s event",
                    resolution.alert_id,
                    resolve.reason,
                    resolve.kind.value,
                )


def _opened_kind(kind: EventKind) -> Literal["forecast", "rate"]:
    return "forecast" if kind is EventKind.FORECAST else "rate"


def _resolved_kind(kind: EventKind) -> Literal["forecast_resolved", "rate_resolved"]:
    return "forecast_resolved" if kind is EventKind.FORECAST else "rate_resolved"
