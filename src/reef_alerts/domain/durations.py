"""Durations as a keeper writes them: `30s`, `5m`, `1h`, `1h30m`, `2d`."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(
    r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?"
    r"(?:(\d+(?:\.\d+)?)s)?"
)
_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def parse_duration(text: str) -> timedelta:
    """`text` as a duration: whole or decimal numbers of days, hours, minutes and seconds in
    that order (`1h30m`, `90s`, `1.5h`), or a bare number of seconds. Raises ValueError saying
    what is accepted."""
    cleaned = text.strip().lower()
    if _SECONDS.fullmatch(cleaned):
        return timedelta(seconds=float(cleaned))
    match = _DURATION.fullmatch(cleaned)
    if not cleaned or match is None:
        raise ValueError(f"{text!r} is not a duration; write it like 30s, 5m, 1h or 1h30m")
    parts = zip(match.groups(), _UNITS.values(), strict=True)
    return timedelta(seconds=sum(float(number) * unit for number, unit in parts if number))


def format_duration(duration: timedelta) -> str:
    """`duration` as parse_duration reads it, in whole seconds: `1h30m`, `45s`, `0s`."""
    seconds = round(duration.total_seconds())
    if seconds == 0:
        return "0s"
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    parts = []
    for unit, size in _UNITS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)
