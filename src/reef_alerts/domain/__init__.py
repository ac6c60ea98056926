"""The pure domain core: alerts, readings, events, the threshold policy and evaluation.

Standard library and attrs only, so the web app can embed it to preview an alert.
"""

from reef_alerts.domain.backtest import (
    MAX_EVALUATIONS,
    BacktestEvent,
    Segment,
    Timeline,
    backtest,
    capped_end,
)
from reef_alerts.domain.changes import EventChange, fold
from reef_alerts.domain.durations import format_duration, parse_duration
from reef_alerts.domain.errors import (
    InvalidAlertError,
    UnknownOperatorError,
    UnreadableValueError,
)
from reef_alerts.domain.evaluation import (
    MAX_AGE_LIMIT,
    Decision,
    EvaluationPolicy,
    Evaluator,
    Measurement,
    NoChange,
    Pending,
    Resolve,
    Skip,
    SkipCode,
    Trigger,
    evaluate,
)
from reef_alerts.domain.extraction import Metric, NoMetric, extract_metric
from reef_alerts.domain.model import (
    Alert,
    AlertEvent,
    Device,
    EventKind,
    Reading,
    Resolution,
    quoted,
)
from reef_alerts.domain.operators import (
    DEFAULT_TOLERANCE,
    Operator,
    Ordering,
    compare,
)
from reef_alerts.domain.rules import (
    DEFAULT_OPTIONS,
    MAX_RULE_DURATION,
    AlertState,
    Machine,
    NoDataChange,
    OpenNoData,
    ResolveNoData,
    RuleOptions,
    Transition,
    step,
)
from reef_alerts.domain.trends import Line, Sample, fit, window_mean

__all__ = [
    "DEFAULT_OPTIONS",
    "DEFAULT_TOLERANCE",
    "MAX_AGE_LIMIT",
    "MAX_EVALUATIONS",
    "MAX_RULE_DURATION",
    "Alert",
    "AlertEvent",
    "AlertState",
    "BacktestEvent",
    "Decision",
    "Device",
    "EvaluationPolicy",
    "Evaluator",
    "EventChange",
    "EventKind",
    "InvalidAlertError",
    "Line",
    "Machine",
    "Measurement",
    "Metric",
    "NoChange",
    "NoDataChange",
    "NoMetric",
    "OpenNoData",
    "Operator",
    "Ordering",
    "Pending",
    "Reading",
    "Resolution",
    "Resolve",
    "ResolveNoData",
    "RuleOptions",
    "Sample",
    "Segment",
    "Skip",
    "SkipCode",
    "Timeline",
    "Transition",
    "Trigger",
    "UnknownOperatorError",
    "UnreadableValueError",
    "backtest",
    "capped_end",
    "compare",
    "evaluate",
    "extract_metric",
    "fit",
    "fold",
    "format_duration",
    "parse_duration",
    "quoted",
    "step",
    "window_mean",
]
