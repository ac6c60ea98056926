"""Durations as a keeper writes them: `30s`, `5m`, `1h`, `1h30m`, `2d`."""

from __future__ import annotations

import re
from datetime import timedelta

from reef_alerts.domain.model import quoted

_UNITS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(
    r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?"
    r"(?:(\d+(?:\.\d+)?)s)?"
)
_SECONDS = re.compile(r"\d+(?:\.\d+)?")
MAX_RULE_DURATION = timedelta(days=7)
"""The longest duration a rule option can have: a pending duration, a no-data limit, a trend's
window or horizon."""
_LONGEST = 100 * 365 * 86_400
"""A century: beyond any limit, and far within what a timedelta holds."""


def parse_duration(text: str) -> timedelta:
    """`text` as a duration: whole or decimal numbers of days, hours, minutes and seconds in
    that order (`1h30m`, `90s`, `1.5h`), or a bare number of seconds; in whole seconds. Raises
    ValueError saying what is accepted."""
    cleaned = text.strip().lower()
    match = None if not cleaned.isascii() else _DURATION.fullmatch(cleaned)
    if _SECONDS.fullmatch(cleaned) and cleaned.isascii():
        parts = [(cleaned, 1)]
    elif cleaned and match is not None:
        parts = [(n, unit) for n, unit in zip(match.groups(), _UNITS.values(), strict=True) if n]
    else:
        raise ValueError(f"{quoted(text)} is not a duration; write it like 30s, 5m, 1h or 1h30m")
    seconds = sum(float(number) * unit for number, unit in parts)
    if seconds > _LONGEST:
        raise ValueError(f"{quoted(text)} is longer than any duration it could be used for")
    if seconds != int(seconds):
        raise ValueError(f"{quoted(text)} is not a whole number of seconds")
    return timedelta(seconds=seconds)


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
