"""The interfaces the application needs from the outside world, as typing Protocols.

Adapters implement them against SQLAlchemy and the system clock; tests implement them in memory.
"""

from reef_alerts.ports.clock import Clock
from reef_alerts.ports.coordination import (
    WHOLE,
    CycleRecord,
    LeaseKeeper,
    LeaseLostError,
    PartitionCoordinator,
    Shard,
)
from reef_alerts.ports.history import AsyncHistoryReader, FoundAlert, History, HistoryReader
from reef_alerts.ports.live import Focus, ReadingWatcher
from reef_alerts.ports.storage import (
    AlertSnapshot,
    AppliedChanges,
    EventChanges,
    EventWriter,
    RecordedStatus,
    SnapshotReader,
    StateChange,
    StatusChange,
    StoredAlert,
    StoredRule,
    StoredTrend,
    TrendStateChange,
    UnitOfWork,
    UnitOfWorkFactory,
    stored_seconds,
)

__all__ = [
    "WHOLE",
    "AlertSnapshot",
    "AppliedChanges",
    "AsyncHistoryReader",
    "Clock",
    "CycleRecord",
    "EventChanges",
    "EventWriter",
    "Focus",
    "FoundAlert",
    "History",
    "HistoryReader",
    "LeaseKeeper",
    "LeaseLostError",
    "PartitionCoordinator",
    "ReadingWatcher",
    "RecordedStatus",
    "Shard",
    "SnapshotReader",
    "StateChange",
    "StatusChange",
    "StoredAlert",
    "StoredRule",
    "StoredTrend",
    "TrendStateChange",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "stored_seconds",
]
