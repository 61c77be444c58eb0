"""The events agent: Kafka batch -> decode -> pure core -> dead letters + ClickHouse -> metrics.

:class:`BatchHandler` is the whole per-batch logic and owns the partitions' processors; it talks
to a :class:`BatchSink` and a dead-letter sender, so tests drive it with fakes and no Kafka.
:class:`EventsConsumer` feeds it from Kafka: an aiokafka group consumer whose rebalance listener
loads each assigned partition's applied offset from ClickHouse, rebuilds its processor from
``raw_events`` and seeks to the next offset. Batches: up to ``worker_batch_max_events`` messages
(10,000 by default) or ``worker_batch_wait_seconds`` (0.25 s) after the first. Why aiokafka and not
a Faust stream, and why that makes the pipeline effectively once: docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from schemas.directory import Directory
from schemas.events import InvalidEvent, parse_event
from stream_processors.core import BucketKey, MinuteAggregate, PartitionProcessor, ProcessorConfig
from stream_processors.core.processor import Event
from stream_processors.core.redaction import Redactor
from stream_processors.deadletter import DeadLetterRecord, DeadLetterSender
from stream_processors.metrics import Metrics
from stream_processors.sinks.clickhouse import (
    Abandoned,
    SinkBatch,
    comment_row,
    merge_deltas,
    raw_event_row,
)

log = logging.getLogger(__name__)

PROCESSED, DUPLICATE, DEAD_LETTER = "processed", "duplicate", "dead_letter"
UNDECODED_TYPE = "unknown"


class Record(Protocol):
    """What the handler needs of a Kafka record (aiokafka's ConsumerRecord has it)."""

    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


class BatchSink(Protocol):
    """The ClickHouse side as the handler sees it (``AsyncClickHouseSink`` in production)."""

    async def applied_offsets(self, topic: str) -> dict[int, int]: ...

    async def applied_payloads(
        self, topic: str, partition: int, up_to: int, horizon: timedelta
    ) -> list[tuple[int, bytes]]: ...

    async def write(
        self,
        batch: SinkBatch,
        should_abandon: Callable[[], bool],
        before_commit: Callable[[], Awaitable[Any]] | None = None,
    ) -> dict[str, int]: ...


@dataclass
class PartitionState:
    processor: PartitionProcessor
    applied_offset: int  # the last offset whose effects are in ClickHouse; -1 for none
    processed_offset: int  # the last offset the processor has seen (ahead while a batch is persisted)


@dataclass(frozen=True)
class BatchReport:
    """What one handled batch did (for logs and tests)."""

    messages: int
    skipped: int  # already in ClickHouse (offset <= applied) or for partitions not owned
    dead_letters: int
    rows: dict[str, int]
    last_offsets: dict[int, int]


def rebuild_horizon(config: ProcessorConfig) -> timedelta:
    """How much history a rebuild replays: everything the processor may still remember."""
    return max(config.dedup_horizon, config.closed_retention, config.idle_retention) + config.grace


@dataclass
class PreparedBatch:
    """A processed batch waiting to be persisted: its rows, dead letters and the counts to report."""

    batch: SinkBatch
    dead: list[DeadLetterRecord]
    states: dict[int, PartitionState]  # the processors it advanced, by partition
    started: float
    messages: int
    skipped: int
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    duplicates: int = 0
    late: int = 0
    newest_by_source: dict[str, float] = field(default_factory=dict)


class BatchHandler:
    """Owns the processors of the assigned partitions and turns record batches into writes.

    A batch is first *prepared* (decoded and run through the processors: CPU only) and then
    *persisted* (dead letters, ClickHouse). The consumer prepares batch N+1 while batch N is being
    persisted, and persists N+1 only after N is in: ClickHouse always receives batches in order,
    and a batch whose predecessor was abandoned is abandoned too (its processors are dropped and
    rebuilt from ClickHouse).
    """

    def __init__(
        self,
        topic: str,
        directory: Directory,
        sink: BatchSink,
        dead_letters: DeadLetterSender,
        metrics: Metrics,
        config: ProcessorConfig | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.topic = topic
        self.directory = directory
        # Comments lose e-mails, phones, ids and the directory's people's names before they are stored.
        self.redactor = Redactor.for_directory(directory)
        self.sink = sink
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.config = config or ProcessorConfig()
        self.clock = clock
        self.partitions: dict[int, PartitionState] = {}
        self._retained: dict[int, PartitionState] = {}  # revoked cleanly; reused if ClickHouse agrees
        self._revoking: set[int] = set()
        self.stopping = False
        self._lock = asyncio.Lock()  # preparing, assigning and revoking exclude each other
        self._persisting: asyncio.Task[BatchReport] | None = None

    # --- partition ownership ---------------------------------------------------------------

    async def assign(self, partitions: Sequence[int]) -> dict[int, int]:
        """Take ownership: load applied offsets, rebuild processors; return partition -> applied offset."""
        async with self._lock:
            applied = await self.sink.applied_offsets(self.topic)
            for partition in partitions:
                offset = applied.get(partition, -1)
                kept = self._retained.pop(partition, None)
                if kept is not None and kept.applied_offset == offset == kept.processed_offset:
                    self.partitions[partition] = kept
                    continue
                self.partitions[partition] = await self._rebuild(partition, offset)
            return {partition: self.partitions[partition].applied_offset for partition in partitions}

    async def revoke(self, partitions: Sequence[int]) -> None:
        """Give partitions up once nothing of theirs can still reach ClickHouse: a write being
        retried is abandoned, an attempt on the wire is waited for."""
        self._revoking.update(partitions)
        try:
            async with self._lock:
                with contextlib.suppress(Abandoned):  # its processors are dropped already
                    await self.wait_persisted()
                for partition in partitions:
                    state = self.partitions.pop(partition, None)
                    if state is not None:
                        self._retained[partition] = state
        finally:
            self._revoking.difference_update(partitions)

    async def _rebuild(self, partition: int, applied_offset: int) -> PartitionState:
        processor = PartitionProcessor(self.directory, self.config)
        if applied_offset >= 0:
            started = time.monotonic()
            payloads = await self.sink.applied_payloads(
                self.topic, partition, applied_offset, rebuild_horizon(self.config)
            )
            events: list[tuple[int, Event]] = []
            for offset, payload in payloads:
                try:
                    events.append((offset, parse_event(payload)))
                except InvalidEvent as exc:  # stored under an older contract: cannot be replayed
                    log.warning("partition %d offset %d not replayable: %s", partition, offset, exc.reason)
            processor.rebuild(events)
            gc.freeze()  # the rebuilt state is long-lived: keep the collector off it
            log.info(
                "partition %d rebuilt from %d events up to offset %d in %.2fs",
                partition, len(events), applied_offset, time.monotonic() - started,
            )
        return PartitionState(processor, applied_offset, applied_offset)

    # --- batches ---------------------------------------------------------------------------

    async def handle(
        self, records: Mapping[int, Sequence[Record]], is_current: Callable[[], bool] = lambda: True
    ) -> BatchReport | None:
        """Prepare and persist one batch (partition -> records in offset order). Returns None when
        the batch was dropped because the assignment changed since it was fetched."""
        prepared = await self.prepare(records, is_current)
        if prepared is None:
            return None
        self.start_persisting(prepared)
        return await self.wait_persisted()

    async def prepare(
        self, records: Mapping[int, Sequence[Record]], is_current: Callable[[], bool] = lambda: True
    ) -> PreparedBatch | None:
        """Decode and process a batch; None when the assignment changed since it was fetched."""
        started = time.monotonic()
        async with self._lock:
            if not is_current():
                return None
            return self._prepare(records, started)

    def start_persisting(self, prepared: PreparedBatch) -> None:
        """Persist in the background; call only after :meth:`wait_persisted` returned."""
        assert self._persisting is None or self._persisting.done(), "one batch is persisted at a time"
        self._persisting = asyncio.ensure_future(self._persist(prepared))

    async def wait_persisted(self) -> BatchReport | None:
        """Wait for the batch being persisted (None if there is none); raises :class:`Abandoned` if
        it was given up. Any number of callers may wait for the same batch."""
        task = self._persisting
        if task is None:
            return None
        return await task

    def _prepare(self, records: Mapping[int, Sequence[Record]], started: float) -> PreparedBatch:
        now = self.clock()
        batch = SinkBatch(self.topic)
        prepared = PreparedBatch(batch, [], {}, started, 0, 0)
        deltas: list[tuple[BucketKey, MinuteAggregate]] = []
        for partition, partition_records in records.items():
            state = self.partitions.get(partition)
            if state is None:
                prepared.skipped += len(partition_records)
                continue
            fresh = _advancing(partition_records, state.processed_offset)
            prepared.skipped += len(partition_records) - len(fresh)
            if not fresh:
                continue
            prepared.messages += len(fresh)
            prepared.states[partition] = state
            deltas.extend(self._process(partition, state, fresh, now, prepared))
            batch.add_offsets(partition, fresh[0].offset, fresh[-1].offset)
            state.processed_offset = fresh[-1].offset
        batch.deltas = merge_deltas(deltas)
        return prepared

    def _process(
        self, partition: int, state: PartitionState, fresh: list[Record], now: datetime, prepared: PreparedBatch
    ) -> list[tuple[BucketKey, MinuteAggregate]]:
        batch, dead, outcomes = prepared.batch, prepared.dead, prepared.outcomes
        by_offset = {record.offset: record for record in fresh}
        items: list[tuple[int, Event]] = []
        for record in fresh:
            try:
                items.append((record.offset, parse_event(record.value or b"", self.directory)))
            except InvalidEvent as exc:
                dead.append(self._dead_letter(partition, record, exc.kind, exc.reason))
                outcomes[(UNDECODED_TYPE, DEAD_LETTER)] += 1
        result = state.processor.process_batch(items, now)
        dead_now: set[int] = set()
        for letter in result.dead_letters:
            original = by_offset.get(letter.offset)
            if original is not None:
                dead_now.add(letter.offset)
                dead.append(self._dead_letter(partition, original, letter.reason, letter.detail))
            else:  # held since an earlier batch: the original bytes are gone, send the parsed event
                dead.append(
                    DeadLetterRecord(
                        letter.reason, letter.detail, self.topic, partition, letter.offset,
                        getattr(letter.event, "request_id", letter.event.provider_department).encode(),
                        letter.event.__pydantic_serializer__.to_json(letter.event, exclude_none=True),
                        original=False,
                    )
                )
        applied = {offset for offset, _ in result.applied_events}
        for offset, event in items:
            outcome = PROCESSED if offset in applied else DEAD_LETTER if offset in dead_now else DUPLICATE
            outcomes[(event.event_type, outcome)] += 1
        newest = prepared.newest_by_source
        for offset, event in result.applied_events:
            received = by_offset.get(offset)
            batch.raw_events.append(
                raw_event_row(
                    self.topic, partition, offset, event, now, received.value if received is not None else None
                )
            )
            comment = comment_row(event, self.redactor)
            if comment is not None:
                batch.comments.append(comment)
            occurred = event.occurred_at.timestamp()
            if occurred > newest.get(event.source, 0.0):
                newest[event.source] = occurred
        batch.facts.extend(result.facts)
        prepared.duplicates += result.duplicates
        prepared.late += result.late
        return list(result.deltas.items())

    async def _persist(self, prepared: PreparedBatch) -> BatchReport:
        batch = prepared.batch
        if not batch.offset_ranges:
            return BatchReport(0, prepared.skipped, 0, {}, {})
        partitions = set(batch.offset_ranges)

        def should_abandon() -> bool:
            return (
                self.stopping
                or not self._revoking.isdisjoint(partitions)
                # an earlier batch of one of these partitions was abandoned: its processor is gone
                or any(self.partitions.get(p) is not state for p, state in prepared.states.items())
            )

        async def send_dead_letters() -> None:
            if prepared.dead:
                await self._send_dead_letters(prepared.dead, should_abandon)

        try:
            if should_abandon():
                raise Abandoned("before writing")
            rows = await self.sink.write(batch, should_abandon, before_commit=send_dead_letters)
        except Abandoned:
            # The processors moved past what ClickHouse holds: forget them; the next owner rebuilds.
            for partition, state in prepared.states.items():
                if self.partitions.get(partition) is state:
                    del self.partitions[partition]
                if self._retained.get(partition) is state:
                    del self._retained[partition]
            log.warning("batch for partitions %s abandoned (revoked or stopping)", sorted(partitions))
            raise
        last_offsets = {partition: last for partition, (_, last) in batch.offset_ranges.items()}
        for partition, last in last_offsets.items():
            prepared.states[partition].applied_offset = last
        self._count(prepared, rows)
        return BatchReport(prepared.messages, prepared.skipped, len(prepared.dead), rows, last_offsets)

    async def _send_dead_letters(self, dead: list[DeadLetterRecord], should_abandon: Callable[[], bool]) -> None:
        delay = 0.2
        while True:
            if should_abandon():
                raise Abandoned("dead letters")
            try:
                await self.dead_letters.send_all(dead)
                return
            except Exception as exc:  # broker unreachable: the batch waits, nothing is skipped
                log.warning("sending %d dead letters failed (%s); retrying in %.1fs", len(dead), exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _dead_letter(self, partition: int, record: Record, reason: str, detail: str) -> DeadLetterRecord:
        return DeadLetterRecord(
            reason, detail, self.topic, partition, record.offset, record.key, record.value, tuple(record.headers or ())
        )

    def _count(self, prepared: PreparedBatch, rows: dict[str, int]) -> None:
        m = self.metrics
        for (event_type, outcome), count in prepared.outcomes.items():
            m.events.labels(event_type, outcome).inc(count)
        for reason, count in Counter(letter.reason for letter in prepared.dead).items():
            m.dead_letters.labels(reason).inc(count)
        m.duplicates.inc(prepared.duplicates)
        m.late.inc(prepared.late)
        for table, count in rows.items():
            m.sink_rows.labels(table).inc(count)
        m.sink_batches.inc()
        m.sink_batch_duration.observe(time.monotonic() - prepared.started)
        for source, occurred in prepared.newest_by_source.items():
            gauge = m.last_event_timestamp.labels(source)
            gauge.set(max(occurred, _gauge_value(gauge)))
        for key, aggregate in prepared.batch.deltas:
            if aggregate.sla_met > 0:
                m.sla_met.labels(key.provider_department, key.customer_department).inc(aggregate.sla_met)
            if aggregate.sla_breached > 0:
                m.sla_breached.labels(key.provider_department, key.customer_department).inc(aggregate.sla_breached)


def _advancing(records: Sequence[Record], applied_offset: int) -> list[Record]:
    """The records past ``applied_offset``, each offset once, in offset order. aiokafka can hand
    out a partition's records twice (measured: a fetch in flight while the listener seeks), and
    a redelivered message must not be dead-lettered or stored twice."""
    fresh: list[Record] = []
    last = applied_offset
    for record in records:
        if record.offset > last:
            fresh.append(record)
            last = record.offset
    return fresh


def _gauge_value(gauge: Any) -> float:
    return float(gauge._value.get())  # prometheus_client keeps it here; no public getter


# --- Kafka -----------------------------------------------------------------------------------------


class EventsConsumer:
    """Feeds a :class:`BatchHandler` from a Kafka consumer group, batching by size or time."""

    def __init__(
        self,
        consumer: Any,  # aiokafka.AIOKafkaConsumer, not yet subscribed
        handler: BatchHandler,
        metrics: Metrics,
        batch_max: int = 10_000,
        batch_wait_s: float = 0.25,
    ) -> None:
        self.consumer = consumer
        self.handler = handler
        self.metrics = metrics
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.epoch = 0  # bumped by every rebalance callback: a batch fetched before one is dropped
        self._uncollected = False  # a batch was handed to the handler and its outcome not yet seen
        self._uncommitted: dict[int, int] = {}  # partition -> next offset, persisted, not yet committed
        self._assigning = False  # inside the assignment callback: partitions not positioned yet
        self._starts: dict[int, int] = {}  # partition -> offset it resumed at when last assigned
        self._expected_start: dict[int, int] = {}  # newly assigned partition -> offset it must resume at
        self._reseeked: set[int] = set()
        self._stopped = asyncio.Event()

    def subscribe(self) -> None:
        from aiokafka.abc import ConsumerRebalanceListener

        outer = self
        topic = self.handler.topic

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                outer.epoch += 1
                outer._uncommitted.clear()  # no longer ours to commit
                await outer.handler.revoke([tp.partition for tp in revoked if tp.topic == topic])

            async def on_partitions_assigned(self, assigned: Any) -> None:
                # Until every partition is positioned, whatever getmany returns was fetched from a
                # position this worker did not choose (the group's committed offset): dropped.
                outer.epoch += 1
                outer._assigning = True
                try:
                    await outer._position(assigned)
                finally:
                    outer._assigning = False
                    outer.epoch += 1

        self.consumer.subscribe([topic], listener=Listener())

    async def _position(self, assigned: Any) -> None:
        """Resume every assigned partition where ClickHouse says: after its applied offset, or at the
        beginning of the log when ClickHouse has none, whatever the group's committed offset."""
        from aiokafka.structs import TopicPartition

        topic = self.handler.topic
        partitions = sorted(tp.partition for tp in assigned if tp.topic == topic)
        applied = await self.handler.assign(partitions)
        fresh = [TopicPartition(topic, p) for p, offset in applied.items() if offset < 0]
        beginnings = await self.consumer.beginning_offsets(fresh) if fresh else {}
        starts: dict[int, int] = {}
        for partition, offset in applied.items():
            tp = TopicPartition(topic, partition)
            starts[partition] = offset + 1 if offset >= 0 else beginnings[tp]
            self.consumer.seek(tp, starts[partition])
            if offset >= 0:  # a crash between the insert and the commit left the group's offset behind
                self._uncommitted[partition] = offset + 1
        self._starts = starts
        self._expected_start = dict(starts)
        self._reseeked.clear()
        log.info("assigned %s; resuming after applied offsets %s", partitions, applied)

    async def run(self) -> None:
        """Fetch, prepare, persist until :meth:`stop`. Batch N+1 is fetched and prepared while N is
        persisted; N+1 is persisted only once N is in ClickHouse."""
        try:
            while not self._stopped.is_set():
                epoch, records = await self._next_batch()
                if not records:
                    await self._collect()  # idle: finish what the last batch started
                    await self._commit()
                    continue
                prepared = await self.handler.prepare(records, is_current=lambda epoch=epoch: self._current(epoch))  # type: ignore[misc]
                await self._collect()
                if prepared is None:
                    self._dropped(set(records))
                else:
                    self.handler.start_persisting(prepared)
                    self._uncollected = True
        finally:
            # Stopping (or cancelled by Faust): a write being retried is given up, one on the wire
            # is waited for; whatever did not land is re-read from Kafka by the next owner.
            self.handler.stopping = True
            await self._collect()

    async def _collect(self) -> None:
        """Wait for the batch being persisted, then do what follows a persisted batch (once)."""
        if not self._uncollected:
            return
        self._uncollected = False
        try:
            report = await self.handler.wait_persisted()
        except Abandoned:
            return
        if report is not None and report.last_offsets:
            await self._after_batch(report)

    async def stop(self) -> None:
        self._stopped.set()
        self.handler.stopping = True

    def _dropped(self, partitions: set[int]) -> None:
        """Records taken from the consumer were not processed: move its position back to the first
        unprocessed offset of every partition still owned, or they would never be read again. While
        the assignment callback runs, its own seeks at the end do that."""
        from aiokafka.structs import TopicPartition

        if self._assigning:
            return
        for partition in partitions:
            state = self.handler.partitions.get(partition)
            if state is not None:
                resume = max(state.processed_offset + 1, self._starts.get(partition, 0))
                self.consumer.seek(TopicPartition(self.handler.topic, partition), resume)

    def _current(self, epoch: int) -> bool:
        """Records fetched in ``epoch`` may still be processed: no rebalance began or ran since."""
        return self.epoch == epoch and not self._assigning

    async def _next_batch(self) -> tuple[int, dict[int, list[Any]]]:
        records: dict[int, list[Any]] = defaultdict(list)
        count, deadline, epoch = 0, None, self.epoch
        while not self._stopped.is_set():
            wait = 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            fetched = await self.consumer.getmany(timeout_ms=int(wait * 1000), max_records=self.batch_max - count)
            if self.epoch != epoch or self._assigning:  # a rebalance happened or is under way: refetch
                self._dropped(set(records) | {tp.partition for tp in fetched})
                records.clear()
                count, deadline, epoch = 0, None, self.epoch
                continue
            for tp, partition_records in fetched.items():
                if not self._starts_where_expected(tp, partition_records):
                    continue
                records[tp.partition].extend(partition_records)
                count += len(partition_records)
            if not count:
                break  # idle for a second: let the caller finish the batch being persisted
            if deadline is None:
                deadline = time.monotonic() + self.batch_wait_s
            if count >= self.batch_max or time.monotonic() >= deadline:
                break
        return epoch, records

    def _starts_where_expected(self, tp: Any, partition_records: Sequence[Any]) -> bool:
        """A newly assigned partition's first records must start where ClickHouse says it resumes.
        Records from anywhere else (fetched from the group's committed offset while the assignment
        callback awaited ClickHouse) are dropped and the partition re-sought, once: if Kafka no
        longer has that offset (retention), what it has is taken, with a warning."""
        expected = self._expected_start.get(tp.partition)
        if expected is None or not partition_records:
            return True
        first = partition_records[0].offset
        if first == expected or tp.partition in self._reseeked:
            if first != expected:
                log.warning("partition %d resumes at %d: Kafka no longer has offset %d", tp.partition, first, expected)
            del self._expected_start[tp.partition]
            return True
        log.warning("partition %d fetched from %d, not from %d: re-seeking", tp.partition, first, expected)
        self._reseeked.add(tp.partition)
        self.consumer.seek(tp, expected)
        return False

    async def _after_batch(self, report: BatchReport) -> None:
        from aiokafka.structs import TopicPartition

        topic = self.handler.topic
        for partition, last in report.last_offsets.items():
            self._uncommitted[partition] = last + 1
            highwater = self.consumer.highwater(TopicPartition(topic, partition))
            if highwater is not None:
                self.metrics.consumer_lag.labels(str(partition)).set(max(0, highwater - (last + 1)))
        await self._commit()

    async def _commit(self) -> None:
        """Commit the persisted positions to Kafka, for lag tools only: where a worker resumes comes
        from ClickHouse, never from here. A failed commit is tried again after the next batch or
        when idle."""
        from aiokafka.structs import OffsetAndMetadata, TopicPartition

        if not self._uncommitted:
            return
        topic = self.handler.topic
        offsets = {TopicPartition(topic, p): OffsetAndMetadata(o, "") for p, o in self._uncommitted.items()}
        try:
            await self.consumer.commit(offsets)
        except Exception as exc:
            log.info("offset commit for lag tools failed, will retry: %s", exc)
            return
        self._uncommitted.clear()
