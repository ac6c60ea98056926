"""Judge: a batch of snapshots to verdicts; a broken row or a failing evaluation is a Fault for
its alert alone, and rows are built into alerts once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reef_alerts.application.judging import Fault, Judge
from reef_alerts.domain import Device, EvaluationPolicy, NoChange, Reading, Trigger
from reef_alerts.ports import AlertSnapshot, StoredAlert

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)
TANK = Device(1, "Main Tank", "heater", "°F")
WARM = Reading(12, 1, NOW - timedelta(seconds=10), 85.2)


def row(**overrides: object) -> StoredAlert:
    fields: dict[str, object] = {
        "id": 3,
        "device_id": 1,
        "metric": "temperature",
        "operator": ">",
        "threshold": 82.0,
        "trend_enabled": False,
        "enabled": True,
    }
    return StoredAlert(**(fields | overrides))  # type: ignore[arg-type]


def snapshot(alert: StoredAlert | None = None, **fields: object) -> AlertSnapshot:
    context: dict[str, object] = {"device": TANK, "reading": WARM, "open_event_id": None}
    return AlertSnapshot(alert or row(), **(context | fields))  # type: ignore[arg-type]


def judge(**options: object) -> Judge:
    return Judge(EvaluationPolicy().at(NOW), **options)  # type: ignore[arg-type]


def test_an_unreadable_row_is_a_fault_with_the_readers_reason() -> None:
    problem = "reading 12 of device 1: history.timestamp 'yesterday' is not a date and time"

    [verdict] = judge()([snapshot(device=None, reading=None, problem=problem)])

    assert verdict == Fault(problem)


def test_a_broken_alert_row_is_a_fault_naming_its_device_and_reading() -> None:
    [verdict] = judge()([snapshot(row(operator="=>"))])

    assert isinstance(verdict, Fault)
    assert verdict.reason.startswith("device 1, reading 12: unknown operator '=>'")


def test_one_faulty_alert_leaves_the_others_of_its_batch_judged() -> None:
    verdicts = judge()([snapshot(row(threshold=None)), snapshot(row(id=4))])

    assert isinstance(verdicts[0], Fault)
    assert isinstance(verdicts[1], Trigger)


def test_an_evaluation_that_raises_is_a_fault_naming_the_error() -> None:
    class Exploding(dict[str, object]):
        def __contains__(self, key: object) -> bool:
            raise RecursionError("maximum recursion depth exceeded")

    hostile = Reading(12, 1, WARM.timestamp, json_value=Exploding())

    [verdict] = judge()([snapshot(reading=hostile)])

    assert verdict == Fault(
        "device 1, reading 12: RecursionError: maximum recursion depth exceeded"
    )


def test_a_null_is_enabled_is_judged_as_enabled_and_noted_once() -> None:
    first = judge()
    [verdict] = first([snapshot(row(enabled=None))])
    later = judge(known=first.built)
    later([snapshot(row(enabled=None))])

    assert isinstance(verdict, Trigger)
    assert first.notes == [
        (
            3,
            "its is_enabled is NULL, neither true nor false; it is evaluated as the column's "
            "default, enabled (set it to true or false)",
        )
    ]
    assert later.notes == []


def test_an_is_enabled_that_is_no_boolean_is_a_fault() -> None:
    [verdict] = judge()([snapshot(row(enabled="yes"))])

    assert verdict == Fault("device 1, reading 12: is_enabled 'yes' is not a boolean")


def test_a_metric_longer_than_the_events_column_holds_is_a_fault_only_where_it_is_limited() -> None:
    long = "probe1." + "x" * 44

    [limited] = judge(metric_limit=50)([snapshot(row(metric=long))])
    [unlimited] = judge(metric_limit=None)([snapshot(row(metric=long))])

    assert isinstance(limited, Fault)
    assert "is longer than the 50 characters alert_events.metric can hold" in limited.reason
    assert not isinstance(unlimited, Fault)


def test_an_unchanged_row_is_built_once_across_judges() -> None:
    first = judge()
    first([snapshot()])
    later = judge(known=first.built)
    later([snapshot(open_event_id=5)])

    assert later.built[row()] is first.built[row()]
    assert list(later.built) == [row()]


def test_a_snapshot_whose_alert_holds_and_has_an_open_event_changes_nothing() -> None:
    [verdict] = judge()([snapshot(open_event_id=5)])

    assert verdict == NoChange(85.2)


def test_a_null_is_enabled_of_a_broken_row_is_not_noted_as_evaluated() -> None:
    judging = judge()

    [verdict] = judging([snapshot(row(enabled=None, operator="=>"))])

    assert isinstance(verdict, Fault)
    assert judging.notes == []
