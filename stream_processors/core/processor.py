"""Everything one Kafka partition needs between decoding and the sink, pure and deterministic.

:class:`PartitionProcessor` removes duplicates, holds events that arrive before their request's
open, turns away late and far-future events, and runs each request's lifecycle. Given the same
sequence of (offset, event) it reaches the same state and output whatever the batch boundaries,
and it never reads the clock: ``now`` is passed in and used only to reject far-future events;
every horizon is measured in event time against the partition's watermark (the newest
``occurred_at`` accepted so far).

After a crash, feed the ``applied_events`` of every batch whose output was written to
:meth:`PartitionProcessor.rebuild` and the state is what it was.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple, cast

from schemas.directory import Directory
from schemas.events import (
    ActionRecorded,
    RequestEvent,
    RequestOpened,
    SurveyAnswered,
    SurveyInvited,
    event_to_json,
    parse_event,
)
from schemas.events import Event as Event  # re-exported: the event union every adapter returns

from stream_processors.core.aggregates import BucketKey, MinuteAggregate, MinuteAggregator, Sample, SampleKind
from stream_processors.core.lifecycle import (
    Bucket,
    Entry,
    LifecycleRules,
    RequestFact,
    RequestTracker,
    minute_start,
)

RECORD_EVENTS: Final = (SurveyInvited, ActionRecorded)
_NPS = {score: Sample(SampleKind.NPS, score=score) for score in range(11)}


@dataclass(frozen=True, slots=True)
class ProcessorConfig:
    """Horizons (event time) and bounds of one partition's state."""

    dedup_horizon: timedelta = timedelta(days=7)  # an event_id is remembered this long
    dedup_max_entries: int = 500_000  # and at most this many ids (~200 B each), oldest forgotten first
    # Older than watermark - grace: dead letter "late". An event waiting for its request.opened
    # waits until it would be late itself (then so would an open dated no later than it).
    grace: timedelta = timedelta(hours=48)
    future_tolerance: timedelta = timedelta(minutes=5)  # newer than now + this: dead letter "future"
    max_held: int = 100_000  # events waiting for an open, at most (1,081 B each); the oldest go first
    closed_retention: timedelta = timedelta(days=14)  # a closed request is forgotten after this idle;
    # later events of it (e.g. feedback weeks after the close) then wait as orphans and are dead letters
    idle_retention: timedelta = timedelta(days=90)  # any request is forgotten after this idle

    def __post_init__(self) -> None:
        # Anything remembered for less than the grace period would let an in-grace event through twice
        # (dedup) or find no request (retention).
        if min(self.dedup_horizon, self.closed_retention, self.idle_retention) <= self.grace:
            raise ValueError("dedup horizon and request retention must exceed the grace period")


class DeadLetter(NamedTuple):
    """An event the processor will not count, with why: late, future, orphan or unknown_department."""

    offset: int
    reason: str
    detail: str
    event: Event


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one batch produces: write ``deltas`` and ``facts``, send ``dead_letters``, then commit
    ``last_offset``; keep ``applied_events`` (accepted events, in order) for :meth:`PartitionProcessor.rebuild`."""

    deltas: dict[BucketKey, MinuteAggregate]  # each key once; never an all-zero delta
    facts: list[RequestFact]  # one per request touched (two if it was forgotten and reopened)
    dead_letters: list[DeadLetter]
    duplicates: int
    late: int
    applied_events: list[tuple[int, Event]]
    last_offset: int | None


class StateSize(NamedTuple):
    requests: int
    held_events: int
    remembered_event_ids: int


# The details of the two kinds of "orphan" dead letter (the reason stays "orphan" for metrics).
ORPHAN_NO_OPEN: Final = "orphan: no open within the grace period"
ORPHAN_HELD_LIMIT: Final = "orphan: held-events limit"


class _Held(NamedTuple):
    """An event waiting for its open, kept as its canonical JSON and parsed again when released:
    1,081 B per held event against 2,127 B keeping the parsed model, whose fields-set alone is a
    728-byte set (measured: docs/operations.md, "Events waiting for their open")."""

    occurred_at: float
    offset: int
    payload: bytes

    @property
    def event(self) -> RequestEvent:
        return cast(RequestEvent, parse_event(self.payload))


@dataclass(slots=True)
class _Batch:
    """Output being gathered; counts each bucket in one aggregate however many events touch it."""

    collect: bool
    aggregates: dict[Bucket, MinuteAggregate] = field(default_factory=dict)
    touched: dict[str, RequestTracker] = field(default_factory=dict)
    facts: list[RequestFact] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    applied: list[tuple[int, Event]] = field(default_factory=list)
    duplicates: int = 0
    late: int = 0
    last_offset: int | None = None

    def count(self, entries: Iterable[Entry], sign: int) -> None:
        aggregates = self.aggregates
        for bucket, sample in entries:
            aggregate = aggregates.get(bucket)
            if aggregate is None:
                aggregate = aggregates[bucket] = MinuteAggregate()
            MinuteAggregator.agg(aggregate, sample, sign)

    def result(self) -> BatchResult:
        minutes: dict[int, datetime] = {}  # a batch spans few minutes; convert each once
        deltas = {}
        for (provider, customer, service, minute), aggregate in self.aggregates.items():
            if aggregate.is_zero():
                continue
            bucket_start = minutes.get(minute)
            if bucket_start is None:
                bucket_start = minutes[minute] = datetime.fromtimestamp(minute, UTC)
            deltas[BucketKey(provider, customer, service, bucket_start)] = aggregate
        facts = self.facts + [tracker.fact() for tracker in self.touched.values()]
        return BatchResult(
            deltas, facts, self.dead_letters, self.duplicates, self.late, self.applied, self.last_offset
        )


class PartitionProcessor:
    """The state of one partition: seen event ids, requests, events waiting for their open."""

    def __init__(self, directory: Directory, config: ProcessorConfig | None = None) -> None:
        self.config = config = config or ProcessorConfig()
        self._rules = LifecycleRules(directory)
        self._dedup_horizon = config.dedup_horizon.total_seconds()
        self._grace = config.grace.total_seconds()
        self._future_tolerance = config.future_tolerance.total_seconds()
        self._closed_retention = config.closed_retention.total_seconds()
        self._idle_retention = config.idle_retention.total_seconds()
        self._watermark = -math.inf
        self._seen: set[str] = set()
        self._seen_order: deque[tuple[float, str]] = deque()  # (watermark when seen, event_id)
        self._trackers: dict[str, RequestTracker] = {}
        self._retain_until: dict[str, float] = {}
        self._retention_heap: list[tuple[float, str]] = []  # lazy: re-checked against _retain_until
        # (deadline, request_id) of pending SLA metrics, judged breached once the watermark passes
        # them; lazy: re-checked against the tracker's next_deadline when popped.
        self._deadline_heap: list[tuple[float, str]] = []
        self._scheduled_deadline: dict[str, float] = {}
        self._held: dict[str, dict[int, _Held]] = {}  # request_id -> {sequence: event waiting for its open}
        # (occurred_at, sequence, request_id), oldest first; lazy: entries of released events stay
        # until popped or compacted away (see _release_held)
        self._held_order: list[tuple[float, int, str]] = []
        self._held_count = 0
        self._held_sequence = 0

    @property
    def watermark(self) -> datetime | None:
        """The newest occurred_at accepted so far; None before the first event."""
        return None if self._watermark == -math.inf else datetime.fromtimestamp(self._watermark, UTC)

    def state_size(self) -> StateSize:
        return StateSize(len(self._trackers), self._held_count, len(self._seen))

    def process_batch(self, items: Iterable[tuple[int, Event]], now: datetime) -> BatchResult:
        """Process (offset, event) pairs in partition order; ``now`` only bounds far-future events."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        batch = _Batch(collect=True)
        self._run(items, now.timestamp() + self._future_tolerance, batch)
        return batch.result()

    def rebuild(self, applied_events: Iterable[tuple[int, Event]]) -> None:
        """Restore state from events already processed and written (no output; ``future`` is not
        re-checked, since those events were accepted when they came)."""
        self._run(applied_events, math.inf, _Batch(collect=False))

    def _run(self, items: Iterable[tuple[int, Event]], future_limit: float, batch: _Batch) -> None:
        calendars = self._rules.calendars
        seen = self._seen
        for offset, event in items:
            batch.last_offset = offset
            occurred_at = event.occurred_at.timestamp()
            if occurred_at > future_limit:
                batch.dead_letters.append(
                    DeadLetter(
                        offset,
                        "future",
                        f"occurred_at {event.occurred_at.isoformat()} is ahead of now",
                        event,
                    )
                )
                continue
            if event.provider_department not in calendars:
                detail = f"provider_department {event.provider_department!r} is not in the directory"
                batch.dead_letters.append(DeadLetter(offset, "unknown_department", detail, event))
                continue
            if event.event_id in seen:
                batch.duplicates += 1
                continue
            if isinstance(event, RECORD_EVENTS):
                # Invitations and actions are stored, not aggregated: no bucket can be final for
                # them, so they are never late, and they do not move the watermark.
                self._remember(event.event_id)
                if batch.collect:
                    batch.applied.append((offset, event))
                continue
            if occurred_at < self._watermark - self._grace:
                batch.late += 1
                batch.dead_letters.append(DeadLetter(offset, "late", self._late_detail(event), event))
                continue
            if occurred_at > self._watermark:
                self._watermark = occurred_at
            self._remember(event.event_id)
            if batch.collect:
                batch.applied.append((offset, event))
            if isinstance(event, SurveyAnswered):
                bucket = (
                    event.provider_department,
                    event.customer_department,
                    event.service_category or "",
                    minute_start(occurred_at),
                )
                batch.count(((bucket, _NPS[event.score]),), 1)
            else:
                self._apply_request(offset, event, occurred_at, batch)
            self._expire(batch)

    def _apply_request(self, offset: int, event: RequestEvent, occurred_at: float, batch: _Batch) -> None:
        request_id = event.request_id
        tracker = self._trackers.get(request_id)
        if tracker is not None:
            retracted, added = tracker.apply(event)
            if retracted:
                batch.count(retracted, -1)
            batch.count(added, 1)
        elif isinstance(event, RequestOpened):
            tracker = self._trackers[request_id] = RequestTracker(event, self._rules)
            batch.count(tracker.entries, 1)
            for item in self._release_held(request_id):
                retracted, added = tracker.apply(item.event)
                batch.count(retracted, -1)
                batch.count(added, 1)
        else:
            self._hold(offset, event, occurred_at)
            return
        self._retain(request_id, tracker)
        self._schedule_deadline(request_id, tracker)
        if batch.collect:
            batch.touched[request_id] = tracker

    def _schedule_deadline(self, request_id: str, tracker: RequestTracker) -> None:
        """Watch the request's next SLA deadline (event time); :meth:`_expire` judges it."""
        deadline = tracker.next_deadline
        if deadline is not None and self._scheduled_deadline.get(request_id) != deadline:
            self._scheduled_deadline[request_id] = deadline
            heapq.heappush(self._deadline_heap, (deadline, request_id))

    def _judge_deadlines(self, batch: _Batch) -> None:
        """Breaches of SLA targets the watermark has passed, whether or not the request has events."""
        heap, watermark = self._deadline_heap, self._watermark
        while heap and heap[0][0] < watermark:
            deadline, request_id = heapq.heappop(heap)
            if self._scheduled_deadline.get(request_id) == deadline:
                del self._scheduled_deadline[request_id]
            tracker = self._trackers.get(request_id)
            if tracker is None:
                continue
            current = tracker.next_deadline
            if current is None or current >= watermark:
                continue  # stale: the deadline moved (a pause, a completion); pushed again if any
            batch.count(tracker.advance(watermark), 1)
            self._schedule_deadline(request_id, tracker)
            if batch.collect:
                batch.touched[request_id] = tracker

    def _hold(self, offset: int, event: RequestEvent, occurred_at: float) -> None:
        """Keep an event whose request is not open (yet) until it falls out of the grace period.

        Its own occurred_at decides, as for lateness: while it could still be accepted, so could
        an open dated no later than it. (An event dated before its open, by a source's skewed
        clock, is dead-lettered if the open arrives after the watermark passed the event's
        occurred_at + grace.)
        """
        self._held_sequence += 1
        sequence = self._held_sequence
        self._held.setdefault(event.request_id, {})[sequence] = _Held(
            occurred_at, offset, event_to_json(event)
        )
        heapq.heappush(self._held_order, (occurred_at, sequence, event.request_id))
        self._held_count += 1

    def _release_held(self, request_id: str) -> list[_Held]:
        """The events that waited for this request's open, in event-time order; no longer held."""
        held = self._held.pop(request_id, None)
        if not held:
            return []
        self._held_count -= len(held)
        # Their heap entries are now stale. Popped only when the watermark passes them (up to the
        # whole grace period), they could outnumber the live ones without bound: compact instead.
        if len(self._held_order) > 2 * self._held_count + 1024:
            self._held_order = [
                (item.occurred_at, sequence, waiting)
                for waiting, items in self._held.items()
                for sequence, item in items.items()
            ]
            heapq.heapify(self._held_order)
        return sorted(held.values(), key=lambda item: (item.occurred_at, item.offset))

    def _retain(self, request_id: str, tracker: RequestTracker) -> None:
        """Schedule forgetting the request after it has been idle (in event time) long enough."""
        retention = self._closed_retention if tracker.closed else self._idle_retention
        until = self._watermark + retention
        previous = self._retain_until.get(request_id)
        self._retain_until[request_id] = until
        if previous is None or until < previous:  # later deadlines are found when the old one pops
            heapq.heappush(self._retention_heap, (until, request_id))

    def _remember(self, event_id: str) -> None:
        self._seen.add(event_id)
        self._seen_order.append((self._watermark, event_id))
        if len(self._seen) > self.config.dedup_max_entries:
            self._seen.discard(self._seen_order.popleft()[1])

    def _expire(self, batch: _Batch) -> None:
        """Forget what the watermark has moved past; run after every event, so batch boundaries
        cannot change what is forgotten when."""
        self._judge_deadlines(batch)
        watermark = self._watermark
        seen_order = self._seen_order
        forget_before = watermark - self._dedup_horizon
        while seen_order and seen_order[0][0] < forget_before:
            self._seen.discard(seen_order.popleft()[1])
        late_before = watermark - self._grace  # the same bound as "late" in _run
        while self._held_order and self._held_order[0][0] < late_before:
            self._expire_oldest_held(batch, ORPHAN_NO_OPEN)
        while self._held_count > self.config.max_held:
            self._expire_oldest_held(batch, ORPHAN_HELD_LIMIT)
        heap = self._retention_heap
        while heap and heap[0][0] < watermark:
            deadline, request_id = heapq.heappop(heap)
            until = self._retain_until.get(request_id)
            if until is None:
                continue  # forgotten already (an earlier, shorter deadline)
            if until > deadline:
                heapq.heappush(heap, (until, request_id))
                continue
            tracker = self._trackers.pop(request_id)
            del self._retain_until[request_id]
            self._scheduled_deadline.pop(request_id, None)
            if batch.touched.pop(request_id, None) is not None:
                batch.facts.append(tracker.fact())

    def _expire_oldest_held(self, batch: _Batch, detail: str) -> None:
        _, sequence, request_id = heapq.heappop(self._held_order)
        items = self._held.get(request_id)
        item = items.pop(sequence, None) if items else None
        if item is None:
            return  # released when its request opened
        if not items:
            del self._held[request_id]
        self._held_count -= 1
        if batch.collect:
            batch.dead_letters.append(DeadLetter(item.offset, "orphan", detail, item.event))

    def _late_detail(self, event: Event) -> str:
        watermark = datetime.fromtimestamp(self._watermark, UTC).isoformat()
        return f"occurred_at {event.occurred_at.isoformat()} is more than {self.config.grace} before the watermark {watermark}"
