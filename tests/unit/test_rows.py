"""How a snapshot row becomes the domain's values: timestamps, JSON by one rule, device columns
checked, and a row that cannot be read named instead of raised."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reef_alerts.adapters.rows import (
    LazyJSONObject,
    UnreadableColumnError,
    decode_context,
    decode_json,
    decode_json_lazily,
    parse_timestamp,
)
from reef_alerts.adapters.snapshot_queries import CONTEXT_COLUMNS
from reef_alerts.domain import Metric, Reading, UnreadableValueError, extract_metric
from tests.strategies import metric_names

END_OF_TIME = datetime.max.replace(tzinfo=UTC)
START_OF_TIME = datetime.min.replace(tzinfo=UTC)
AT = datetime(2024, 6, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2024-06-01 12:00:00+00", datetime(2024, 6, 1, 12, tzinfo=UTC)),
        ("2024-06-01 12:00:00.5+00", datetime(2024, 6, 1, 12, 0, 0, 500_000, tzinfo=UTC)),
        ("0999-01-02 03:04:05+00", datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-06-01 12:00:00.123456", datetime(2024, 6, 1, 12, 0, 0, 123_456, tzinfo=UTC)),
        ("2024-06-01T14:00:00+02:00", datetime(2024, 6, 1, 12, tzinfo=UTC)),
        ("infinity", END_OF_TIME),
        ("10000-01-01 00:00:00+00", END_OF_TIME),
        ("294276-12-31 23:59:59.999999+00", END_OF_TIME),
        ("-infinity", START_OF_TIME),
        ("0044-03-15 12:00:00+00 BC", START_OF_TIME),
    ],
    ids=[
        "postgresql",
        "fraction",
        "year 999",
        "naive sqlite",
        "offset",
        "infinity",
        "year 10000",
        "postgresql's last",
        "-infinity",
        "BC",
    ],
)
def test_a_timestamp_reads_as_an_aware_utc_datetime(text: str, instant: datetime) -> None:
    read = parse_timestamp(text)

    assert read == instant
    assert read.tzinfo is UTC


@pytest.mark.parametrize("stored", ["yesterday", "", "2026-13-45", "+275760-09-13", 12345, 1e308])
def test_a_timestamp_that_is_no_timestamp_is_an_error_that_shows_it(stored: object) -> None:
    with pytest.raises(UnreadableColumnError, match=r"history\.timestamp .* is not a date"):
        parse_timestamp(stored)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
blanks = st.text(alphabet=" \t\r\n", max_size=3)


@given(json_values, blanks, blanks, st.booleans())
def test_a_json_column_reads_as_json_loads_reads_it_blanks_and_all(
    value: object, before: str, after: str, indented: bool
) -> None:
    text = before + json.dumps(value, indent=2 if indented else None) + after

    assert decode_json(text, "c") == json.loads(text)
    assert decode_json_lazily(text, "c") == json.loads(text)


@given(st.sampled_from(["Inf", "-Inf", "[1, 2", "", "warm"]))
def test_text_that_is_not_json_reads_as_itself(text: str) -> None:
    assert decode_json(text, "c") == text


@given(st.sampled_from(["{", '{"ph": 8.1} trailing', ' {"ph": 8.1', "{oops}"]))
def test_text_that_only_begins_as_an_object_reads_as_an_empty_one(text: str) -> None:
    assert decode_json(text, "c") == {}


def test_a_broken_multi_sensor_document_never_lends_its_value_to_another_metric() -> None:
    """A multi-sensor's `value` is one of its channels (ADR 2): a json_value that begins as an
    object but does not decode must not turn the reading into a simple one."""
    reading = Reading(1, 1, AT, value=7.0, json_value=decode_json('{"ph": 8.1} x', "c"))

    assert not isinstance(extract_metric(reading, "ph"), Metric)


json_texts = (
    json_values.map(json.dumps)
    | st.text(max_size=12)
    | st.sampled_from(['{"a": 1} trailing', '{"a": 1', ' {"a": {"b": 2}} x', "{}"])
)


@given(json_texts, metric_names)
def test_metadata_read_lazily_or_not_names_the_same_metrics(text: str, metric: str) -> None:
    """One decoding rule: metadata decoded on first use finds a metric exactly when metadata
    decoded at once does, whatever the text."""
    eager = Reading(1, 1, AT, metadata=decode_json(text, "history.metadata"))
    lazy = Reading(1, 1, AT, metadata=decode_json_lazily(text, "history.metadata"))

    assert extract_metric(lazy, metric) == extract_metric(eager, metric)


DEEP = "[" * 10_000 + "]" * 10_000
DEEP_OBJECT = '{"a": ' * 10_000 + "1" + "}" * 10_000


def test_json_nested_deeper_than_it_can_be_decoded_is_an_error_naming_the_column() -> None:
    with pytest.raises(UnreadableColumnError, match=r"history\.json_value nests JSON deeper"):
        decode_json(DEEP, "history.json_value")


def test_lazy_metadata_nested_too_deep_fails_when_looked_into_naming_the_column() -> None:
    lazy = decode_json_lazily(DEEP_OBJECT, "history.metadata")
    assert isinstance(lazy, LazyJSONObject)

    with pytest.raises(UnreadableValueError, match=r"history\.metadata nests JSON deeper"):
        _ = "a" in lazy


def test_a_json_column_that_is_not_text_is_an_error() -> None:
    with pytest.raises(UnreadableColumnError, match="is bytes, not JSON text"):
        decode_json(b"{}", "history.json_value")


def context(**overrides: Any) -> tuple[Any, ...]:
    """The columns of CONTEXT_COLUMNS for device 7 and its reading 12."""
    columns = {
        "device_row_id": 7,
        "name": "Display Tank Heater",
        "device_type": "heater",
        "unit": "°F",
        "is_active": True,
        "poll_enabled": True,
        "poll_interval": 60,
        "reading_id": 12,
        "timestamp": "2024-06-01 12:00:00+00",
        "value": 81.5,
        "json_value": None,
        "metadata": None,
        "untimed_reading_id": None,
    }
    return tuple((columns | overrides)[name] for name in CONTEXT_COLUMNS)


def test_a_device_and_its_newest_reading_are_decoded_once_checked() -> None:
    device, reading, problem = decode_context(context())

    assert problem is None
    assert device is not None
    assert reading is not None
    assert (device.id, device.name, device.poll_interval) == (
        7,
        "Display Tank Heater",
        timedelta(seconds=60),
    )
    assert (reading.id, reading.timestamp, reading.value) == (12, AT, 81.5)


@pytest.mark.parametrize(
    ("column", "stored", "said"),
    [
        ("poll_interval", "fast", "devices.poll_interval 'fast' is not a number of seconds"),
        ("name", b"\xff", "devices.name b'\\xff' is not text"),
        ("is_active", "yes", "devices.is_active 'yes' is not a boolean"),
        ("unit", 3, "devices.unit 3 is not text"),
    ],
)
def test_a_device_column_of_the_wrong_type_is_the_devices_problem(
    column: str, stored: object, said: str
) -> None:
    device, reading, problem = decode_context(context(**{column: stored}))

    assert (device, reading) == (None, None)
    assert problem == f"device 7: {said}"


@pytest.mark.parametrize("stored", ["yesterday", "", "2026-13-45", 20240601])
def test_an_unreadable_timestamp_is_the_problem_of_its_reading_and_device(stored: object) -> None:
    device, reading, problem = decode_context(context(timestamp=stored))

    assert (device, reading) == (None, None)
    assert problem is not None
    assert problem.startswith("reading 12 of device 7: history.timestamp ")


@pytest.mark.parametrize(
    ("stored", "interval"),
    [
        (None, timedelta(seconds=60)),
        (0, timedelta(seconds=60)),
        (-5, timedelta(seconds=60)),
        (2_147_483_647, timedelta(seconds=2_147_483_647)),
        (1e300, timedelta(seconds=10**12)),
        (1.5, timedelta(seconds=1.5)),
    ],
)
def test_a_poll_interval_is_the_schemas_default_unless_positive_and_never_overflows(
    stored: object, interval: timedelta
) -> None:
    device, _, problem = decode_context(context(poll_interval=stored))

    assert problem is None
    assert device is not None
    assert device.poll_interval == interval


def test_a_device_with_only_untimed_readings_has_its_newest_as_a_reading_without_a_time() -> None:
    _, reading, problem = decode_context(
        context(reading_id=None, timestamp=None, value=None, untimed_reading_id=40)
    )

    assert problem is None
    assert reading == Reading(40, 7, None)
