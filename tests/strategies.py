"""Shared hypothesis strategies: numbers, any JSON value, and the domain's values."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from reef_alerts.domain import DEFAULT_TOLERANCE, Alert, Device, Operator, Reading

finite_floats = st.floats(allow_nan=False, allow_infinity=False)
"""Any finite float: subnormals, -0.0 and the extremes included."""

non_finite_floats = st.sampled_from([math.nan, -math.nan, math.inf, -math.inf])

tolerances = st.just(DEFAULT_TOLERANCE) | st.floats(min_value=0.0, max_value=1e6)
"""Non-negative equality tolerances, the legacy default among them."""

operators = st.sampled_from(Operator)
operator_symbols = operators.map(lambda operator: operator.value)

ids = st.integers(min_value=1, max_value=2**31 - 1)

_huge_ints = st.sampled_from([10**400, -(10**400), 2**1024, 2**1024 - 1])
"""Integers too large for a float: JSON allows them, float() overflows on them."""

_number_like_strings = finite_floats.map(repr) | st.sampled_from(
    ["nan", "-inf", "Infinity", "1e999", " 7.9 ", "1_000", "0x10", "", "true", "8,1"]
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    _huge_ints,
    st.floats(),  # NaN and infinities too: Python's json module decodes them
    st.text(max_size=8),
    _number_like_strings,
)

json_keys = st.text(alphabet="ab.", max_size=3) | st.text(max_size=4)
"""Short keys over a tiny alphabet, so generated metric names often hit generated keys."""

metric_names = st.text(alphabet="ab.", max_size=4) | st.text(max_size=6)
"""Metric names, dotted paths and odd ones ("", ".", "a..b") included."""

json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(json_keys, children, max_size=3)
    ),
    max_leaves=12,
)
"""Any decoded JSON value."""


def utc_datetimes(
    min_value: datetime = datetime(2000, 1, 1),
    max_value: datetime = datetime(2100, 1, 1),
) -> st.SearchStrategy[datetime]:
    """Timezone-aware datetimes in UTC between two naive bounds."""
    return st.datetimes(min_value=min_value, max_value=max_value, timezones=st.just(UTC))


devices = st.builds(
    Device,
    id=ids,
    name=st.text(min_size=1, max_size=20),
    type=st.sampled_from(["temperature_probe", "ph_probe", "controller"]),
    unit=st.none() | st.sampled_from(["°F", "°C", "pH", "ppm"]),
    active=st.booleans(),
    polled=st.booleans(),
    poll_interval=st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(hours=1)),
)

alerts = st.builds(
    Alert,
    id=ids,
    device_id=ids,
    metric=metric_names,
    operator=operators,
    threshold=finite_floats,
    enabled=st.booleans(),
    trend_enabled=st.booleans(),
)

readings = st.builds(
    Reading,
    id=ids,
    device_id=ids,
    timestamp=utc_datetimes(),
    # the column is a float, but a broken driver or fixture must not break extraction either
    value=st.none() | st.floats() | st.integers() | st.booleans(),
    json_value=json_values,
    metadata=json_values,
)
