"""The preview use case against an in-memory history: what it plans, what it refuses, and that
its synchronous and asynchronous drivers answer alike."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from reef_alerts.application.preview import (
    AsyncPreviewAlert,
    Changes,
    NotFoundError,
    Preview,
    PreviewAlert,
    Previews,
    Span,
)
from reef_alerts.domain import (
    MAX_EVALUATIONS,
    Alert,
    Device,
    EvaluationPolicy,
    InvalidAlertError,
    Reading,
)
from reef_alerts.ports import FoundAlert, History, StoredAlert, StoredRule
from tests.fakes import T0

HEATER = Device(1, "Frag Tank Heater", "heater", "°F")
STORED = StoredAlert(7, 1, "temperature", ">", 82.0, False, True)
STEP = timedelta(seconds=30)
HOUR = Span(T0, T0 + timedelta(hours=1), STEP)


class InMemoryHistory:
    """The history port over one device's readings, oldest first, and stored alerts."""

    def __init__(self, alerts: dict[int, tuple[StoredAlert, StoredRule | None]]) -> None:
        self.alerts = alerts
        self.readings = [
            Reading(n, 1, T0 + timedelta(minutes=n), value=82.0 + 0.3 * math.sin(n * math.pi / 5))
            for n in range(60)
        ]
        self.reads: list[tuple[datetime, datetime]] = []

    def alert(self, alert_id: int) -> FoundAlert | None:
        found = self.alerts.get(alert_id)
        return None if found is None else FoundAlert(*found)

    def device(self, device_id: int) -> Device | None:
        return HEATER if device_id == HEATER.id else None

    def history(self, device_id: int, start: datetime, end: datetime) -> History:
        self.reads.append((start, end))
        assert device_id == HEATER.id
        return History(tuple(r for r in self.readings if r.timestamp and r.timestamp <= end))


class Awaited:
    """The same history, behind the asynchronous port."""

    def __init__(self, history: InMemoryHistory) -> None:
        self._history = history

    async def alert(self, alert_id: int) -> FoundAlert | None:
        return self._history.alert(alert_id)

    async def device(self, device_id: int) -> Device | None:
        return self._history.device(device_id)

    async def history(self, device_id: int, start: datetime, end: datetime) -> History:
        return self._history.history(device_id, start, end)


def previews() -> Previews:
    return Previews(EvaluationPolicy())


def test_a_stored_alert_with_a_pending_time_tried_is_compared_with_it_as_stored() -> None:
    reader = InMemoryHistory({7: (STORED, None)})

    preview = PreviewAlert(reader, previews()).stored(
        7, Changes(pending=timedelta(minutes=5)), HOUR
    )

    assert preview.options.pending == timedelta(minutes=5)
    assert preview.timeline.threshold_events == ()
    assert preview.compared is not None
    assert len(preview.compared.threshold_events) == 6


def test_unknown_alerts_and_devices_are_not_found() -> None:
    reader = InMemoryHistory({7: (STORED._replace(device_id=2), None)})
    use = PreviewAlert(reader, previews())

    with pytest.raises(NotFoundError, match="there is no alert 8"):
        use.stored(8, Changes(), HOUR)
    with pytest.raises(NotFoundError, match="there is no device 2"):
        use.stored(7, Changes(), HOUR)
    assert reader.reads == []  # nothing read for an alert that cannot be previewed


def test_a_broken_stored_row_is_previewed_with_the_operator_that_mends_it() -> None:
    reader = InMemoryHistory({7: (STORED._replace(operator="=>"), None)})
    use = PreviewAlert(reader, previews())

    with pytest.raises(InvalidAlertError):
        use.stored(7, Changes(), HOUR)
    mended = use.stored(7, Changes(operator=">="), HOUR)

    assert mended.alert.operator.value == ">="
    assert mended.compared is None
    assert any("as stored, alert 7 cannot be judged" in w for w in mended.timeline.warnings)


def test_a_disabled_alert_is_previewed_as_if_enabled_and_says_so() -> None:
    reader = InMemoryHistory({7: (STORED._replace(enabled=False), None)})

    preview = PreviewAlert(reader, previews()).stored(7, Changes(), HOUR)

    assert preview.timeline.threshold_events
    assert "alert 7 is disabled: previewed as if enabled" in preview.timeline.warnings


def test_a_range_beyond_the_evaluation_cap_keeps_its_newest_part_and_says_so() -> None:
    reader = InMemoryHistory({7: (STORED, None)})
    end = T0 + timedelta(hours=1)
    span = Span(end - timedelta(days=30), end, STEP)

    preview = PreviewAlert(reader, previews()).stored(7, Changes(), span)

    assert preview.timeline.end == end
    assert preview.timeline.start == end - (MAX_EVALUATIONS - 1) * STEP
    assert preview.timeline.evaluations == MAX_EVALUATIONS
    assert reader.reads == [(preview.timeline.start, end)]  # read only what is replayed
    assert any("replayed from" in w for w in preview.timeline.warnings)


def test_the_asynchronous_driver_answers_as_the_synchronous_one_replaying_off_the_loop() -> None:
    reader = InMemoryHistory({7: (STORED, StoredRule(60.0, 0.1, None))})
    changes = Changes(threshold=82.1)
    offloaded: list[str] = []

    async def offload(replay: Callable[..., Preview], *args: Any) -> Preview:
        offloaded.append(replay.__name__)
        return await asyncio.to_thread(replay, *args)

    async def previewed() -> tuple[Preview, Preview]:
        use = AsyncPreviewAlert(Awaited(reader), previews(), offload)
        draft = Alert(None, 1, "temperature", "<", 81.9)
        return await use.stored(7, changes, HOUR), await use.draft(draft, Changes(), HOUR)

    stored, draft = asyncio.run(previewed())

    use = PreviewAlert(reader, previews())
    assert stored == use.stored(7, changes, HOUR)
    assert draft == use.draft(Alert(None, 1, "temperature", "<", 81.9), Changes(), HOUR)
    assert offloaded == ["replay", "replay"]
