"""Snapshot rows as the domain's values: an alert's row kept raw, a device and its newest reading
decoded, and a row that cannot be decoded named instead of raised (ADR 12).

A row comes as the driver gives it: from PostgreSQL with the types its columns declare, from
SQLite with whatever was stored, since SQLite keeps any value in any column. So every column the
domain relies on is checked here; what does not fit becomes the `problem` of that device's
alerts, and the rest of the cycle goes on.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple

from reef_alerts.adapters.snapshot_queries import (
    ALERT_COLUMNS,
    CONTEXT_COLUMNS,
    DEVICE_COLUMNS,
    RULE_COLUMNS,
    SNAPSHOT_COLUMNS,
    STATUS_COLUMNS,
    TREND_COLUMNS,
)
from reef_alerts.domain import Device, Reading, UnreadableValueError, quoted
from reef_alerts.domain.model import JSON
from reef_alerts.ports import RecordedStatus, StoredRule, StoredTrend

# Where each group of columns lies in a snapshot row, from the column tuples.
ALERT: Final = slice(0, len(ALERT_COLUMNS))
CONTEXT: Final = slice(ALERT.stop, ALERT.stop + len(CONTEXT_COLUMNS))
EVENT_ID: Final = SNAPSHOT_COLUMNS.index("event_id")
NO_DATA_EVENT_ID: Final = SNAPSHOT_COLUMNS.index("no_data_event_id")
FORECAST_EVENT_ID: Final = SNAPSHOT_COLUMNS.index("forecast_event_id")
RATE_EVENT_ID: Final = SNAPSHOT_COLUMNS.index("rate_event_id")
STATUS: Final = slice(
    SNAPSHOT_COLUMNS.index(STATUS_COLUMNS[0]), SNAPSHOT_COLUMNS.index(STATUS_COLUMNS[-1]) + 1
)
STATUS_STATE: Final = STATUS.start
RULE: Final = slice(
    SNAPSHOT_COLUMNS.index(RULE_COLUMNS[0]), SNAPSHOT_COLUMNS.index(RULE_COLUMNS[-1]) + 1
)
TREND_MARK: Final = SNAPSHOT_COLUMNS.index(TREND_COLUMNS[0])
TREND: Final = slice(TREND_MARK + 1, len(SNAPSHOT_COLUMNS))
ALERT_DEVICE_ID: Final = ALERT_COLUMNS.index("device_id")
_DEVICE: Final = slice(0, len(DEVICE_COLUMNS))
_READING: Final = slice(len(DEVICE_COLUMNS), len(CONTEXT_COLUMNS))

DEFAULT_POLL_INTERVAL: Final = timedelta(seconds=60)
"""The schema's default, for a device whose poll_interval is NULL or not positive."""
_LONGEST_POLL_SECONDS: Final = 10**12
"""Beyond what any freshness limit needs (ADR 12), and within what a timedelta holds."""


class UnreadableColumnError(UnreadableValueError):
    """A column holds a value of a type or form its table does not allow."""


class Context(NamedTuple):
    """A watched device and its newest reading, or why they could not be read."""

    device: Device | None
    reading: Reading | None
    problem: str | None = None


def decode_context(columns: Sequence[Any]) -> Context:
    """The device and its newest reading from the columns of CONTEXT_COLUMNS; a Context with
    only a `problem` when either row cannot be decoded."""
    device_id = columns[0]
    if device_id is None:
        return Context(None, None)
    try:
        device = decode_device(columns[_DEVICE])
    except UnreadableColumnError as error:
        return Context(None, None, f"device {device_id}: {error}")
    # In CONTEXT_COLUMNS' order.
    reading_id, timestamp, value, json_value, metadata, untimed_id = columns[_READING]
    if reading_id is None:
        # None timestamped: its newest reading, if any, has a NULL timestamp (ADR 12).
        return Context(device, None if untimed_id is None else Reading(untimed_id, device_id, None))
    try:
        reading = decode_reading(reading_id, device_id, timestamp, value, json_value, metadata)
    except UnreadableColumnError as error:
        return Context(None, None, f"reading {reading_id} of device {device_id}: {error}")
    return Context(device, reading)


def decode_device(columns: Sequence[Any]) -> Device:
    """A device from the columns of DEVICE_COLUMNS; raises UnreadableColumnError."""
    (device_id, name, device_type, unit, is_active, poll_enabled, poll_interval) = columns
    return Device(
        device_id,
        *_texts(name, device_type, unit),
        *_flags(is_active, poll_enabled),
        _poll_interval(poll_interval),
    )


def decode_reading(
    reading_id: int, device_id: int, timestamp: Any, value: Any, json_value: Any, metadata: Any
) -> Reading:
    """A timestamped reading from its columns; raises UnreadableColumnError."""
    return Reading(
        reading_id,
        device_id,
        parse_timestamp(timestamp),
        value,
        # json_value is nearly always looked into; metadata nearly never (ADR 7).
        decode_json(json_value, "history.json_value"),
        decode_json_lazily(metadata, "history.metadata"),
    )


def decode_status(state: Any, code: Any, since: Any) -> RecordedStatus | None:
    """An alert's recorded status from the columns of STATUS_COLUMNS; None when it has none.
    A row of the worker's own that cannot be read is as good as none: the cycle records the
    alert's status anew."""
    if state is None or not isinstance(code, str):
        return None
    try:
        return RecordedStatus(state, code, parse_timestamp(since))
    except UnreadableColumnError:
        return None


def decode_rule(
    pending_seconds: Any, recovery_margin: Any, no_data_after_seconds: Any, pending_since: Any
) -> tuple[StoredRule | None, datetime | None]:
    """An alert's options, raw (the judge validates them), and when its pending condition
    began, from the columns of RULE_COLUMNS. A pending instant that cannot be read is as good
    as none: the condition starts over, and no event opens early."""
    stored = StoredRule(pending_seconds, recovery_margin, no_data_after_seconds)
    rule = None if stored == (None, None, None) else stored
    if pending_since is None:
        return rule, None
    try:
        return rule, parse_timestamp(pending_since)
    except UnreadableColumnError:
        return rule, None


def decode_windows(rows: Sequence[Any]) -> dict[int, list[Reading]]:
    """windows_query's rows, by device, as readings; one whose columns cannot be decoded is
    left out of its window, as a value that is not a number is."""
    windows: dict[int, list[Reading]] = {}
    for device_id, reading_id, timestamp, value, json_value, metadata in rows:
        try:
            reading = decode_reading(reading_id, device_id, timestamp, value, json_value, metadata)
        except UnreadableColumnError:
            continue
        windows.setdefault(device_id, []).append(reading)
    return windows


def decode_trend(
    *columns: Any,
) -> tuple[StoredTrend | None, datetime | None, datetime | None]:
    """A trend alert's options, raw (the judge validates them), and when its forecast and rate
    conditions began, from the columns of TREND_COLUMNS after the first; an instant that cannot
    be read is as good as none, as in decode_rule."""
    *options, forecast_since, rate_since = columns
    stored = StoredTrend(*options)
    trend = None if all(option is None for option in stored) else stored
    return trend, _instant(forecast_since), _instant(rate_since)


def _instant(raw: Any) -> datetime | None:
    if raw is None:
        return None
    try:
        return parse_timestamp(raw)
    except UnreadableColumnError:
        return None


def _texts(name: Any, device_type: Any, unit: Any) -> tuple[str, str, str | None]:
    """A device's text columns, checked to be text (its unit may be NULL)."""
    for column, value in (("name", name), ("device_type", device_type)):
        if not isinstance(value, str):
            raise UnreadableColumnError(f"devices.{column} {quoted(value)} is not text")
    if unit is not None and not isinstance(unit, str):
        raise UnreadableColumnError(f"devices.unit {quoted(unit)} is not text")
    return name, device_type, unit


_FLAGS: Final[Mapping[object, bool]] = {None: True, True: True, False: False}
"""A boolean column's stored values: NULL is the schema's default, true; SQLite stores 1 and 0,
which are equal to True and False (as is 1.0), so found as them."""


def _flags(is_active: Any, poll_enabled: Any) -> tuple[bool, bool]:
    """A device's flags; NULL takes the schema's default: active, polled."""
    active, polled = _FLAGS.get(is_active), _FLAGS.get(poll_enabled)
    if active is None or polled is None:
        column, value = (
            ("is_active", is_active) if active is None else ("poll_enabled", poll_enabled)
        )
        raise UnreadableColumnError(f"devices.{column} {quoted(value)} is not a boolean")
    return active, polled


@functools.lru_cache(maxsize=64)  # a device table holds a handful of distinct intervals
def _poll_interval(seconds: Any) -> timedelta:
    """A device's poll interval; NULL or not positive is the schema's default, 60 s."""
    if seconds is None:
        return DEFAULT_POLL_INTERVAL
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds != seconds:
        raise UnreadableColumnError(
            f"devices.poll_interval {quoted(seconds)} is not a number of seconds"
        )
    if seconds <= 0:
        return DEFAULT_POLL_INTERVAL
    return timedelta(seconds=min(seconds, _LONGEST_POLL_SECONDS))


_END_OF_TIME: Final = datetime.max.replace(tzinfo=UTC)
_START_OF_TIME: Final = datetime.min.replace(tzinfo=UTC)
_AFTER_9999: Final = re.compile(r"\d{5,}-")


def parse_timestamp(text: Any) -> datetime:
    """A stored timestamp's text as an aware UTC datetime (ADR 10).

    PostgreSQL's is ISO text in UTC, the session's time zone ("2024-06-01 12:00:00.5+00");
    SQLite's is ISO text, naive by convention in UTC. PostgreSQL also stores what a datetime
    cannot hold: "infinity" and years after 9999 are read as the last instant a datetime can
    hold, so such a reading is from the future; "-infinity" and years BC as the first, so it is
    as old as can be. Anything else raises UnreadableColumnError.
    """
    if not isinstance(text, str):
        raise UnreadableColumnError(
            f"history.timestamp {quoted(text)} is not a date and time but {type(text).__name__}"
        )
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return _beyond_datetime(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)


def _beyond_datetime(text: str) -> datetime:
    """The datetime standing for a PostgreSQL timestamp outside datetime's years 1 to 9999."""
    if text == "infinity" or _AFTER_9999.match(text):
        return _END_OF_TIME
    if text == "-infinity" or text.endswith(" BC"):
        return _START_OF_TIME
    raise UnreadableColumnError(f"history.timestamp {quoted(text)} is not a date and time")


_DECODER: Final = json.JSONDecoder()


def decode_json(text: Any, column: str) -> JSON:
    """A JSON column's value, read from its text by one rule (ADR 12):

    - JSON text is its value;
    - a number is itself (SQLite gives a JSON column numeric affinity, so stores a bare number
      as one, and one beyond the float range as the REAL infinity);
    - text that is not JSON is that text, a string, which names no metric (SQLite lets a JSON
      column hold anything); unless it begins as an object (`{"ph": 8.1} x`): then it is an
      empty object, so that the reading stays a multi-metric one, whose `value` stands for no
      metric but its own (ADR 2);
    - JSON nested deeper than the decoder can follow raises UnreadableColumnError, as does a
      value that is neither text nor a number (a blob).
    """
    if text is None:
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return text
    if not isinstance(text, str):
        raise UnreadableColumnError(f"{column} is {type(text).__name__}, not JSON text")
    try:
        # raw_decode is json.loads without its checks for blanks around the value (ADR 7); text
        # it cannot read to the end gets json.loads's full rules.
        decoded, end = _DECODER.raw_decode(text)
        if end == len(text):
            return decoded
    except ValueError:
        pass
    except RecursionError:
        raise _too_deep(column) from None
    try:
        return json.loads(text)
    except ValueError:
        return {} if text.lstrip().startswith("{") else text
    except RecursionError:
        raise _too_deep(column) from None


def _too_deep(column: str) -> UnreadableColumnError:
    return UnreadableColumnError(f"{column} nests JSON deeper than it can be decoded")


def decode_json_lazily(text: Any, column: str) -> JSON:
    """decode_json's value; an object's only when first looked into (ADR 7)."""
    if isinstance(text, str) and text.lstrip().startswith("{"):
        return LazyJSONObject(text, column)
    return decode_json(text, column)


class LazyJSONObject(Mapping[str, JSON]):
    """A JSON column whose text looks like an object, decoded by decode_json on first use.

    It is what decode_json reads the text as: an object, empty where the text only begins as
    one (such as '{"a": 1} trailing').
    """

    __slots__ = ("_column", "_text", "_value")

    def __init__(self, text: str, column: str) -> None:
        self._text = text
        self._column = column
        self._value: dict[str, JSON] | None = None

    def _decoded(self) -> dict[str, JSON]:
        if self._value is None:
            decoded = decode_json(self._text, self._column)
            assert isinstance(decoded, dict)  # the text begins as an object
            self._value = decoded
        return self._value

    def __getitem__(self, key: str) -> JSON:
        return self._decoded()[key]

    def __contains__(self, key: object) -> bool:
        return key in self._decoded()

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())

    def __eq__(self, other: object) -> bool:
        return self._decoded() == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._decoded())
