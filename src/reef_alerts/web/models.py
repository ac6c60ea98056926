"""The router's request and response bodies: Pydantic v2 models with the web app's field names
(`threshold_value`, `operator`, `alert_metadata`), mapped to the domain's values here, at the
edge. The domain never sees them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from reef_alerts.application.preview import Changes
from reef_alerts.domain import Alert, Operator, RuleOptions, parse_duration

LARGEST_ID = 2**31 - 1
"""The largest id an INTEGER column holds."""
FIRST_INSTANT = datetime(2, 1, 1, tzinfo=UTC)
LAST_INSTANT = datetime(9998, 12, 31, tzinfo=UTC)
"""A replay's instants stay between these, so that every limit worked out from them (a reading's
age, the clock skew allowed) is a datetime too."""


def _duration(raw: object) -> object:
    """`5m`, `1h30m`, `90s` as the CLI writes them; anything else is left to Pydantic's own
    timedelta (seconds as a number, ISO 8601 such as PT5M), which says what is wrong."""
    if isinstance(raw, str):
        try:
            return parse_duration(raw)
        except ValueError as error:
            if not raw.strip().upper().startswith("P"):
                raise ValueError(str(error)) from None
    return raw


def _utc(at: datetime) -> datetime:
    """An instant without an offset is read as UTC, as the CLI reads --until; one must lie
    between the years 2 and 9998."""
    try:
        found = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except OverflowError:
        found = None
    if found is None or not FIRST_INSTANT <= found <= LAST_INSTANT:
        raise ValueError("must be an instant between the years 2 and 9998")
    return found


def _rule_option(name: str) -> Callable[[Any], Any]:
    """The domain's check of one rule option (RuleOptions' validators), for a field of it."""

    def check(value: Any) -> Any:
        if value is not None:
            RuleOptions(**{name: value})
        return value

    return check


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "number"}],
            "description": "5m, 1h30m, 90s; a number of seconds; or ISO 8601 such as PT5M",
            "examples": ["5m", "1h30m", "90s"],
        }
    ),
]
"""A duration: `5m`, `1h30m`, `90s`, a number of seconds, or ISO 8601 (PT5M)."""
Instant = Annotated[datetime, AfterValidator(_utc)]
"""An ISO 8601 instant; without an offset, UTC."""


class RuleOptionsIn(BaseModel):
    """Rule options to try; a field left out keeps what the alert has (a draft: the worker's
    defaults)."""

    model_config = ConfigDict(extra="forbid")

    pending: Annotated[Duration | None, AfterValidator(_rule_option("pending"))] = Field(
        None, description="How long the condition must hold before an event opens; 0: at once."
    )
    recovery_margin: Annotated[float | None, AfterValidator(_rule_option("recovery_margin"))] = (
        Field(
            None,
            ge=0,
            allow_inf_nan=False,
            description="How far past the threshold, in the metric's unit, the value must come "
            "back before the event resolves.",
        )
    )
    no_data_after: Annotated[Duration | None, AfterValidator(_rule_option("no_data_after"))] = (
        Field(None, description="How long a silent device may go before a no-data event opens.")
    )
    no_data_off: bool = Field(False, strict=True, description="No no-data events at all.")

    @model_validator(mode="after")
    def _one_of(self) -> RuleOptionsIn:
        if self.no_data_off and self.no_data_after is not None:
            raise ValueError("give no_data_after or no_data_off, not both")
        return self

    def changes(
        self, *, threshold: float | None = None, operator: Operator | None = None
    ) -> Changes:
        """These options, and a stored alert's threshold and operator to try, as Changes."""
        return Changes(
            threshold=threshold,
            operator=None if operator is None else operator.value,
            pending=self.pending,
            recovery_margin=self.recovery_margin,
            no_data_after=self.no_data_after,
            no_data_off=self.no_data_off,
        )


class RangeIn(BaseModel):
    """Where to replay: `from` and `to`, or the `last` so long up to `to`. Without either, the
    last 24 hours. A range longer than 50,000 evaluations replays its last 50,000."""

    model_config = ConfigDict(extra="forbid")

    from_: Instant | None = Field(None, alias="from", description="Start of the replay.")
    to: Instant | None = Field(None, description="End of the replay; default: now.")
    last: Duration | None = Field(None, description="How long before `to` the replay starts.")
    step: Duration | None = Field(
        None,
        description="Time between two evaluations, at least 1s; default: the worker's interval.",
    )

    @model_validator(mode="after")
    def _checked(self) -> RangeIn:
        if self.from_ is not None and self.last is not None:
            raise ValueError("give `from` or `last`, not both")
        if self.last is not None and self.last <= timedelta(0):
            raise ValueError("`last` must be longer than 0")
        if self.step is not None and self.step < timedelta(seconds=1):
            raise ValueError("`step` must be 1s or longer")
        if self.from_ is not None and self.to is not None and self.from_ >= self.to:
            raise ValueError("`from` must be before `to`")
        return self

    def bounds(self, now: datetime) -> tuple[datetime, datetime]:
        """Start and end of the replay, `now` standing in for a missing `to`."""
        end = self.to or now
        if self.from_ is not None:
            if self.from_ >= end:
                raise ValueError("`from` must be before `to` (now, when `to` is left out)")
            return self.from_, end
        start = end - min(self.last or _DEFAULT_LAST, end - FIRST_INSTANT)
        return start, end


_DEFAULT_LAST = timedelta(hours=24)


class AlertDraftIn(BaseModel):
    """An alert as the web app's form has it, before it is saved."""

    model_config = ConfigDict(extra="forbid")

    device_id: int = Field(ge=1, le=LARGEST_ID, strict=True)
    metric: str = Field(min_length=1, max_length=100)
    operator: Operator
    threshold_value: float = Field(allow_inf_nan=False, strict=True)
    trend_enabled: bool = Field(False, strict=True)
    alert_metadata: dict[str, Any] | None = Field(
        None, description="The web app's own; the preview does not read it."
    )

    @model_validator(mode="after")
    def _checked(self) -> AlertDraftIn:
        self.to_domain()  # the metric's rules are the domain's
        return self

    def to_domain(self) -> Alert:
        """The draft as the domain's Alert."""
        return Alert(
            None,
            self.device_id,
            self.metric,
            self.operator,
            self.threshold_value,
            trend_enabled=self.trend_enabled,
        )


class DraftPreviewIn(BaseModel):
    """`POST /alerts/preview`: a draft alert, the options to try on it, and the range."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "alert": {
                        "device_id": 1,
                        "metric": "temperature",
                        "operator": ">",
                        "threshold_value": 82,
                    },
                    "options": {"pending": "5m", "recovery_margin": 0.3},
                    "range": {"last": "7d"},
                }
            ]
        },
    )

    alert: AlertDraftIn
    options: RuleOptionsIn = Field(default_factory=RuleOptionsIn)
    range: RangeIn = Field(default_factory=RangeIn)


class StoredPreviewIn(BaseModel):
    """`POST /alerts/{alert_id}/preview`: what to try on a stored alert, and the range. An
    empty body replays the alert as stored over the last 24 hours."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "threshold_value": 82.5,
                    "options": {"pending": "5m"},
                    "range": {"last": "7d"},
                }
            ]
        },
    )

    threshold_value: float | None = Field(None, allow_inf_nan=False, strict=True)
    operator: Operator | None = None
    options: RuleOptionsIn = Field(default_factory=RuleOptionsIn)
    range: RangeIn = Field(default_factory=RangeIn)

    def changes(self) -> Changes:
        """The overrides and options as Changes."""
        return self.options.changes(threshold=self.threshold_value, operator=self.operator)


# The preview's response: the shape reef_alerts/wire.py writes, described for OpenAPI (ADR 19);
# extra="forbid", so that a key the wire format gains and these lack fails the tests.

Outcome = Literal["trigger", "resolve", "pending", "firing", "ok", "skipped"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AlertOut(_Out):
    id: int | None = Field(description="None for a draft.")
    device_id: int
    metric: str
    operator: Operator
    threshold_value: float


class OptionsOut(_Out):
    pending_seconds: float
    recovery_margin: float
    no_data_after_seconds: float | None = Field(description="None: no no-data events.")


class CountsOut(_Out):
    events: int = Field(description="Threshold events that would have opened.")
    no_data_events: int
    forecast_events: int = Field(description="A trend alert's forecast events.")
    rate_events: int = Field(description="A trend alert's rate events.")
    time_in_alert_seconds: float
    flaps: int = Field(description="Events that opened soon after the one before resolved.")
    evaluations: int


class EventOut(_Out):
    kind: Literal["threshold", "no_data", "forecast", "rate"]
    opened_at: datetime
    value: float | None
    resolved_at: datetime | None = Field(description="None: still open at the range's end.")
    resolution_value: float | None
    condition_since: datetime | None = Field(
        description="When the condition began to hold, for an event that had to wait its "
        "pending time."
    )


class SegmentOut(_Out):
    """Consecutive evaluations with one outcome (skips: for one reason): the decision at every
    evaluation, told in runs."""

    from_: datetime = Field(alias="from", description="The first evaluation's instant.")
    to: datetime = Field(description="The last evaluation's instant.")
    outcome: Outcome
    evaluations: int
    reason: str | None = Field(description="The first evaluation's: why the skips or wait began.")


class TimelineOut(_Out):
    from_: datetime = Field(alias="from")
    to: datetime
    step_seconds: float
    counts: CountsOut
    events: list[EventOut]
    segments: list[SegmentOut] = Field(description="The decision at each evaluation, in runs.")
    warnings: list[str]


class ComparedOut(_Out):
    alert: AlertOut
    options: OptionsOut
    timeline: TimelineOut


class PreviewOut(_Out):
    """What the alert would have done, and what it did as stored (a draft: with the default
    options alone) where that differs."""

    alert: AlertOut
    options: OptionsOut
    timeline: TimelineOut
    compared: ComparedOut | None


class OpenEventOut(_Out):
    id: int
    kind: str
    triggered_at: datetime | None
    current_value: float | None


class StoredOptionsOut(_Out):
    """An alert's own options; a None field takes the worker's default."""

    pending_seconds: float | None
    recovery_margin: float | None
    no_data_after_seconds: float | None = Field(description="0: no no-data events.")


class StateOut(_Out):
    """`GET /alerts/{alert_id}/state`: the alert as the worker last found it."""

    alert_id: int
    device: str
    condition: str
    state: str = Field(
        description="ok, pending, firing, forecast, rate, no_data, skipped, error, disabled, or "
        "unknown "
        "(the database has no status table yet: run `reef-alerts db upgrade`)."
    )
    since: datetime | None
    reason: str = Field(description="Why it is skipped, in error or pending; empty otherwise.")
    pending_since: datetime | None
    open_events: list[OpenEventOut]
    options: StoredOptionsOut | None = Field(description="None: the worker's defaults.")


class AckIn(BaseModel):
    """Who acknowledges an open event, and why (both optional)."""

    model_config = ConfigDict(extra="forbid")

    by: Annotated[str | None, Field(max_length=100)] = None
    note: Annotated[str | None, Field(max_length=1000)] = None


class AckOut(_Out):
    """An acknowledged event: its reminders and escalation have stopped."""

    event_id: int
    alert_id: int
    acknowledged_at: datetime
    by: str | None
    note: str | None


class ProblemOut(BaseModel):
    detail: str
