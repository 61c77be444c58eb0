"""The pure core of the stream processors: no Kafka, Faust, ClickHouse or Prometheus here, and no
clock (``now`` is an argument). Everything is deterministic given its inputs.

Public API:

- ``PartitionProcessor(directory, config=ProcessorConfig())``, one per partition (not thread-safe):
  ``process_batch(items: Iterable[tuple[int, Event]], now: datetime) -> BatchResult`` in partition
  order; ``rebuild(applied_events)`` after a restart; ``watermark``; ``state_size()``.
- ``BatchResult``: ``deltas: dict[BucketKey, MinuteAggregate]`` (each key once per batch; ADD them to
  the stored row; they may be negative when an out-of-order event corrects a sample, so columns are
  signed), ``facts: list[RequestFact]`` (newest ``last_event_at`` wins), ``dead_letters:
  list[DeadLetter(offset, reason, detail, event)]`` with reason late | future | orphan |
  unknown_department, ``duplicates``, ``late``, ``applied_events`` (persist for ``rebuild``) and
  ``last_offset`` (commit after writing).
- ``BucketKey(provider_department, customer_department, service_category, bucket_start)`` and
  ``MinuteAggregate.to_row()`` in ``AGGREGATE_COLUMNS`` order; histograms are ``dict[int, int]``
  (bucket index -> count, see :mod:`.histogram`). ``RequestFact.to_row()`` in ``FACT_COLUMNS`` order.
- Reports: ``MinuteAggregator.merge`` aggregates over any window, then ``summarize(aggregate) ->
  Summary`` (CSAT average and satisfied share with its Wilson 95 % lower bound, NPS with its 95 %
  margin, SLA attainment, p50/p90/p99 in business seconds).
- ``BusinessCalendar.business_seconds(start, end)`` for anything else that needs working time.
"""

from stream_processors.core.aggregates import (
    AGGREGATE_COLUMNS,
    BucketKey,
    MinuteAggregate,
    MinuteAggregator,
    Summary,
    summarize,
)
from stream_processors.core.calendar import BusinessCalendar
from stream_processors.core.lifecycle import FACT_COLUMNS, RequestFact
from stream_processors.core.processor import (
    BatchResult,
    DeadLetter,
    Event,
    PartitionProcessor,
    ProcessorConfig,
)

__all__ = [
    "AGGREGATE_COLUMNS",
    "FACT_COLUMNS",
    "BatchResult",
    "BucketKey",
    "BusinessCalendar",
    "DeadLetter",
    "Event",
    "MinuteAggregate",
    "MinuteAggregator",
    "PartitionProcessor",
    "ProcessorConfig",
    "RequestFact",
    "Summary",
    "summarize",
]
