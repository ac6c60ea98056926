"""A preview as plain data: what `reef-alerts preview --json` prints and the web app's router
returns, written once for both (ADR 19)."""

from __future__ import annotations

from typing import Any

from reef_alerts.application.preview import Preview
from reef_alerts.domain import Alert, EventKind, RuleOptions, Timeline


def preview_json(preview: Preview) -> dict[str, Any]:
    """The preview as plain data, ready for json.dumps."""
    return {
        "alert": _alert(preview.alert),
        "options": _options(preview.options),
        "timeline": _timeline(preview.timeline),
        "compared": None
        if preview.compared is None or preview.compared_with is None
        else {
            "alert": _alert(preview.compared_with[0]),
            "options": _options(preview.compared_with[1]),
            "timeline": _timeline(preview.compared),
        },
    }


def _alert(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "device_id": alert.device_id,
        "metric": alert.metric,
        "operator": alert.operator.value,
        "threshold_value": alert.threshold,
    }


def _options(options: RuleOptions) -> dict[str, Any]:
    return {
        "pending_seconds": options.pending.total_seconds(),
        "recovery_margin": options.recovery_margin,
        "no_data_after_seconds": None
        if options.no_data_after is None
        else options.no_data_after.total_seconds(),
    }


def _timeline(timeline: Timeline) -> dict[str, Any]:
    return {
        "from": timeline.start.isoformat(),
        "to": timeline.end.isoformat(),
        "step_seconds": timeline.step.total_seconds(),
        "counts": {
            "events": len(timeline.threshold_events),
            "no_data_events": len(timeline.no_data_events),
            "forecast_events": len(timeline.events_of(EventKind.FORECAST)),
            "rate_events": len(timeline.events_of(EventKind.RATE)),
            "time_in_alert_seconds": timeline.time_in_alert.total_seconds(),
            "flaps": timeline.flaps,
            "evaluations": timeline.evaluations,
        },
        "events": [
            {
                "kind": e.kind.value,
                "opened_at": e.opened_at.isoformat(),
                "value": e.value,
                "resolved_at": None if e.resolved_at is None else e.resolved_at.isoformat(),
                "resolution_value": e.resolution_value,
                "condition_since": None
                if e.condition_since is None
                else e.condition_since.isoformat(),
            }
            for e in timeline.events
        ],
        "segments": [
            {
                "from": s.start.isoformat(),
                "to": s.end.isoformat(),
                "outcome": s.outcome,
                "evaluations": s.evaluations,
                "reason": s.reason,
            }
            for s in timeline.segments
        ],
        "warnings": list(timeline.warnings),
    }
