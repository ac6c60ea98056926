"""The pure domain core: alerts, readings, events, the threshold policy and evaluation.

Standard library and attrs only, so the web app can embed it to preview an alert.
"""

from reef_alerts.domain.changes import EventChange, fold
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
    NoChange,
    Resolve,
    Skip,
    SkipCode,
    Trigger,
    evaluate,
)
from reef_alerts.domain.extraction import Metric, NoMetric, extract_metric
from reef_alerts.domain.model import Alert, AlertEvent, Device, Reading, Resolution, quoted
from reef_alerts.domain.operators import (
    DEFAULT_TOLERANCE,
    Operator,
    Ordering,
    compare,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "MAX_AGE_LIMIT",
    "Alert",
    "AlertEvent",
    "Decision",
    "Device",
    "EvaluationPolicy",
    "Evaluator",
    "EventChange",
    "InvalidAlertError",
    "Metric",
    "NoChange",
    "NoMetric",
    "Operator",
    "Ordering",
    "Reading",
    "Resolution",
    "Resolve",
    "Skip",
    "SkipCode",
    "Trigger",
    "UnknownOperatorError",
    "UnreadableValueError",
    "compare",
    "evaluate",
    "extract_metric",
    "fold",
    "quoted",
]
