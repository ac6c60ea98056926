"""How the snapshot reads a reading's columns from their text: the timestamp as an aware UTC
datetime, and the JSON columns as json.loads would, whatever their layout."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reef_alerts.adapters.snapshots import _decode, _decode_lazily, _timestamp

END_OF_TIME = datetime.max.replace(tzinfo=UTC)
START_OF_TIME = datetime.min.replace(tzinfo=UTC)


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
    read = _timestamp(text)

    assert read == instant
    assert read.tzinfo is UTC


def test_a_timestamp_that_is_no_timestamp_is_an_error_that_shows_it() -> None:
    with pytest.raises(ValueError, match="unreadable reading timestamp 'yesterday'"):
        _timestamp("yesterday")


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

    assert _decode(text) == json.loads(text)
    assert _decode_lazily(text) == json.loads(text)


@given(st.sampled_from(["Inf", "-Inf", "{", '{"a": 1} trailing', "[1, 2", ""]))
def test_text_that_is_not_json_reads_as_itself(text: str) -> None:
    assert _decode(text) == text
