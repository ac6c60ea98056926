"""RunCycle with trend alerts (issue 13), against the in-memory fakes: forecast events that open
hours before the threshold event, rate events, smoothing, too few readings, pending durations,
recovery margins, and trend rules turned off."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import attrs
import pytest

from reef_alerts.application import RunCycle
from reef_alerts.domain import AlertEvent, Device, EvaluationPolicy, EventKind, Reading
from reef_alerts.ports import StoredRule, StoredTrend
from tests.fakes import T0, AlertRow, FakeClock, InMemoryStore

LOGGER = "reef_alerts.tests.trend_cycle"
PH_PROBE = Device(
    id=1, name="Display Tank pH", type="ph", unit="pH", poll_interval=timedelta(minutes=5)
)
PH_LOW = AlertRow(
    id=1, device_id=1, metric="value", operator="<", threshold=7.9, trend_enabled=True
)
"""pH under 7.9, with trend rules on."""


def trend(
    window: float | None = None,
    min_samples: int | None = None,
    horizon: float | None = None,
    max_rate: float | None = None,
    smoothing: bool | None = None,
) -> StoredTrend:
    return StoredTrend(window, min_samples, horizon, max_rate, smoothing)


class Reef:
    """The pH probe's readings, one every five minutes, and the worker's cycles over them."""

    def __init__(self, alert: AlertRow = PH_LOW) -> None:
        self.store = InMemoryStore()
        self.store.add_device(PH_PROBE)
        self.store.add_alert(alert)
        self.clock = FakeClock(T0)
        self.next_id = 1
        self.cycle = RunCycle(
            self.store.unit_of_work, self.clock, EvaluationPolicy(), logging.getLogger(LOGGER)
        )

    def step(self, value: float, every: timedelta = timedelta(minutes=5)) -> None:
        """Move on, take a reading and run a cycle."""
        self.clock.advance(every)
        self.store.add_reading(Reading(self.next_id, 1, self.clock.now(), value=value))
        self.next_id += 1
        self.cycle()

    def drift(self, start: float, per_hour: float, hours: float) -> None:
        """A reading every five minutes for `hours`, moving `per_hour` from `start`."""
        for n in range(round(hours * 12)):
            self.step(start + per_hour * n / 12)

    def events(self, kind: EventKind) -> list[AlertEvent]:
        return sorted(
            (e for e in self.store.events().values() if e.kind is kind),
            key=lambda e: e.triggered_at,
        )

    def opened(self, kind: EventKind) -> datetime:
        (event,) = self.events(kind)
        return event.triggered_at


def test_a_forecast_event_opens_hours_before_the_threshold_event_on_a_sliding_ph() -> None:
    reef = Reef()

    reef.drift(8.30, -0.04, hours=12)  # crosses 7.9 after ten hours

    forecast, threshold = reef.opened(EventKind.FORECAST), reef.opened(EventKind.THRESHOLD)
    assert threshold - forecast >= timedelta(hours=1, minutes=30)
    (event,) = reef.events(EventKind.FORECAST)
    assert event.resolved
    assert event.resolved_at == threshold
    crossing = datetime.fromisoformat(event.metadata["predicted_crossing_at"])
    assert abs(crossing - threshold) <= timedelta(minutes=10)
    assert event.metadata["rate_per_hour"] == pytest.approx(-0.04)
    assert event.metadata["samples"] == 12


def test_a_forecast_event_resolves_when_the_trend_turns_back() -> None:
    reef = Reef()
    reef.drift(8.30, -0.1, hours=3)
    assert not reef.events(EventKind.FORECAST)[0].resolved

    reef.drift(8.00, +0.1, hours=2)

    (event,) = reef.events(EventKind.FORECAST)
    assert event.resolved
    assert not reef.events(EventKind.THRESHOLD)


def test_a_recovery_margin_holds_a_forecast_open_until_the_prediction_is_back_by_it() -> None:
    reef = Reef()
    reef.store.set_rule(1, StoredRule(None, 0.5, None))
    reef.drift(8.30, -0.1, hours=3)  # the forecast opens
    reef.drift(8.00, 0.0, hours=1)  # flat at 8.0: predicted 8.0, within 0.5 of 7.9

    (event,) = reef.events(EventKind.FORECAST)
    assert not event.resolved


def test_a_pending_duration_holds_a_forecast_back_until_it_has_said_so_that_long() -> None:
    quick, patient = Reef(), Reef()
    patient.store.set_rule(1, StoredRule(1800.0, None, None))

    for reef in (quick, patient):
        reef.drift(8.30, -0.04, hours=12)

    waited = patient.opened(EventKind.FORECAST) - quick.opened(EventKind.FORECAST)
    assert waited == timedelta(minutes=30)
    assert patient.store.trend_states() == {}  # nothing left pending


def test_a_rate_event_opens_when_the_value_moves_faster_than_the_limit_and_resolves_after() -> None:
    reef = Reef()
    reef.store.set_trend_rule(1, trend(max_rate=0.05, horizon=600.0))
    reef.drift(8.30, -0.02, hours=1)
    assert not reef.events(EventKind.RATE)

    reef.drift(8.28, -0.2, hours=1)
    assert len(reef.events(EventKind.RATE)) == 1

    reef.drift(8.08, 0.0, hours=2)
    (event,) = reef.events(EventKind.RATE)
    assert event.resolved
    assert event.metadata["max_rate_per_hour"] == 0.05
    assert event.metadata["rate_per_hour"] < -0.05


def test_a_rate_towards_the_other_side_of_the_condition_opens_no_rate_event() -> None:
    reef = Reef()
    reef.store.set_trend_rule(1, trend(max_rate=0.05))

    reef.drift(8.00, +0.3, hours=2)  # rising fast, away from < 7.9

    assert not reef.events(EventKind.RATE)


def test_smoothing_keeps_one_wild_reading_from_opening_the_threshold_event() -> None:
    plain, smoothed = Reef(), Reef()
    smoothed.store.set_trend_rule(1, trend(smoothing=True))
    for reef in (plain, smoothed):
        reef.drift(8.10, 0.0, hours=1)
        reef.step(6.5)  # a probe pulled out of the water for a moment
        reef.drift(8.10, 0.0, hours=1)

    assert len(plain.events(EventKind.THRESHOLD)) == 1
    assert not smoothed.events(EventKind.THRESHOLD)


def test_smoothing_opens_the_threshold_event_on_the_windows_median_once_it_crosses() -> None:
    reef = Reef()
    reef.store.set_trend_rule(1, trend(smoothing=True, window=3600.0))
    reef.drift(8.10, 0.0, hours=1)

    reef.drift(7.70, 0.0, hours=1)

    (event,) = reef.events(EventKind.THRESHOLD)
    assert event.current_value == pytest.approx(7.7)
    assert event.metadata["median_of"] == 12
    # Opened once seven of the window's twelve readings are below 7.9: with six, the median is
    # 7.9 itself.
    assert event.triggered_at - T0 == timedelta(minutes=95)


def test_a_smoothed_alert_with_too_few_readings_is_skipped_with_the_reason() -> None:
    reef = Reef()
    reef.store.set_trend_rule(1, trend(smoothing=True))

    reef.step(7.0)

    (status,) = reef.store.statuses().values()
    assert status[0].code == "too few readings to smooth"
    assert "1 readings in the last 1h, fewer than the 5 a trend needs" in status[1]
    assert not reef.events(EventKind.THRESHOLD)


def test_a_window_too_short_for_a_trend_opens_no_forecast() -> None:
    reef = Reef()

    reef.drift(8.30, -1.0, hours=0.4)  # steep, but only 24 minutes of a one-hour window

    assert not reef.events(EventKind.FORECAST)


@pytest.mark.parametrize("stale", [False, True], ids=["fresh", "stale"])
def test_a_trend_alert_keeps_its_forecast_event_while_its_device_is_stale(stale: bool) -> None:
    reef = Reef()
    reef.drift(8.30, -0.1, hours=3)
    for n in range(1, 4):  # turning sharply back up: a fresh judgement resolves the forecast
        at = reef.clock.now() + n * timedelta(minutes=5)
        reef.store.add_reading(Reading(100 + n, 1, at, value=8.0 + 0.3 * n))
    # Judged when the last reading is fresh, or eleven minutes old (stale after ten).
    reef.clock.advance(timedelta(minutes=15 + (11 if stale else 0)))

    reef.cycle()

    (event,) = reef.events(EventKind.FORECAST)
    assert event.resolved is not stale


def test_turning_trend_rules_off_resolves_the_open_forecast_event() -> None:
    reef = Reef()
    reef.drift(8.30, -0.1, hours=3)
    reef.store.add_alert(attrs.evolve(PH_LOW, trend_enabled=False))

    reef.step(8.0)

    (event,) = reef.events(EventKind.FORECAST)
    assert event.resolved


def test_without_the_trend_tables_an_open_forecast_still_resolves_when_its_threshold_opens() -> (
    None
):
    reef = Reef()
    reef.drift(8.30, -0.1, hours=3)
    reef.store.trend_tables = False  # dropped by hand, or a worker of before migration 0005

    reef.drift(7.95, -0.1, hours=1)

    (forecast,), (threshold,) = reef.events(EventKind.FORECAST), reef.events(EventKind.THRESHOLD)
    assert forecast.resolved_at == threshold.triggered_at


def test_an_alert_without_trend_rules_opens_no_forecast_however_steep_its_trend() -> None:
    reef = Reef(attrs.evolve(PH_LOW, trend_enabled=False))

    reef.drift(8.30, -0.1, hours=5)

    assert not reef.events(EventKind.FORECAST)
    assert len(reef.events(EventKind.THRESHOLD)) == 1


def test_a_broken_trend_rules_row_costs_its_alert_alone() -> None:
    reef = Reef()
    reef.store.add_alert(attrs.evolve(PH_LOW, id=2, trend_enabled=False, threshold=9.0))
    reef.store.set_trend_rule(1, trend(window=-5.0))

    reef.step(8.0)

    statuses = reef.store.statuses()
    assert statuses[1][0].state == "error"
    assert "reef_alerts_trend_rules" in statuses[1][1]
    assert [e.alert_id for e in reef.events(EventKind.THRESHOLD)] == [2]
