"""The events agent's batch logic, driven without Kafka or ClickHouse: fake sink, fake dead-letter sender."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
import pytest
from prometheus_client import CollectorRegistry

from deptpulse.settings import EXAMPLE_DIRECTORY
from schemas.directory import load_directory
from stream_processors.agents import BatchHandler
from stream_processors.deadletter import DeadLetterRecord, read_dead_letter
from stream_processors.metrics import Metrics
from stream_processors.sinks.clickhouse import (
    COMMENT_COLUMNS,
    RAW_EVENT_COLUMNS,
    Abandoned,
    SinkBatch,
    payload_without_comment,
)

pytestmark = pytest.mark.unit

TOPIC = "deptpulse.events"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DIRECTORY = load_directory(EXAMPLE_DIRECTORY)


class Rec(NamedTuple):
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


def event(
    event_type: str, request_id: str, minute: int, event_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schema_version": 1,
        "event_id": event_id or f"{request_id}-{event_type}-{minute}",
        "event_type": event_type,
        "occurred_at": (NOW - timedelta(hours=2) + timedelta(minutes=minute)).isoformat(),
        "source": "jira-sm",
        "provider_department": "it",
        "customer_department": "finance",
        "service_category": "it.access",
        "priority": "P3",
        "request_id": request_id,
    }
    return body | extra


def rec(offset: int, body: dict[str, Any] | bytes) -> Rec:
    value = body if isinstance(body, bytes) else orjson.dumps(body)
    return Rec(offset, b"key", value, (("trace", b"abc"),))


class FakeSink:
    """Records what would be written; ``fail_with`` makes the next write raise it."""

    def __init__(
        self, applied: dict[int, int] | None = None, payloads: list[tuple[int, bytes]] | None = None
    ) -> None:
        self.applied = applied or {}
        self.payloads = payloads or []
        self.batches: list[SinkBatch] = []
        self.calls: list[str] = []
        self.block: asyncio.Event | None = None

    async def applied_offsets(self, topic: str) -> dict[int, int]:
        return dict(self.applied)

    async def applied_payloads(
        self, topic: str, partition: int, up_to: int, horizon: timedelta
    ) -> list[tuple[int, bytes]]:
        return [(offset, payload) for offset, payload in self.payloads if offset <= up_to]

    async def write(
        self,
        batch: SinkBatch,
        should_abandon: Callable[[], bool],
        before_commit: Callable[[], Awaitable[Any]] | None = None,
    ) -> dict[str, int]:
        self.calls.append("side tables")
        if before_commit is not None:
            await before_commit()
        while self.block is not None and not self.block.is_set():  # ClickHouse "down": retrying
            if should_abandon():
                raise Abandoned("aggregates")
            await asyncio.sleep(0.01)
        self.calls.append("aggregates")
        self.batches.append(batch)
        for partition, (_, last) in batch.offset_ranges.items():
            self.applied[partition] = max(self.applied.get(partition, -1), last)
        return {"raw_events": len(batch.raw_events), "minute_buckets": len(batch.bucket_rows())}


class FakeDeadLetters:
    def __init__(self, sink: FakeSink) -> None:
        self.sink = sink
        self.sent: list[DeadLetterRecord] = []

    async def send_all(self, records: Any) -> None:
        self.sink.calls.append("dead letters")
        self.sent.extend(records)


def make_handler(
    sink: FakeSink | None = None,
) -> tuple[BatchHandler, FakeSink, FakeDeadLetters, CollectorRegistry]:
    sink = sink or FakeSink()
    dead_letters = FakeDeadLetters(sink)
    registry = CollectorRegistry()
    handler = BatchHandler(TOPIC, DIRECTORY, sink, dead_letters, Metrics.create(registry), clock=lambda: NOW)
    return handler, sink, dead_letters, registry


def lifecycle(request_id: str, start: int = 0) -> list[dict[str, Any]]:
    return [
        event("request.opened", request_id, start),
        event("request.responded", request_id, start + 10),
        event("request.resolved", request_id, start + 30),
        event("feedback.submitted", request_id, start + 40, csat=5, comment="mail me: a.b@example.com"),
    ]


def test_a_batch_writes_events_aggregates_and_the_offset_in_one_batch() -> None:
    handler, sink, dead_letters, registry = make_handler()
    asyncio.run(handler.assign([0]))

    records = [rec(offset, body) for offset, body in enumerate(lifecycle("R1"))]
    report = asyncio.run(handler.handle({0: records}))

    assert report is not None and report.last_offsets == {0: 3}
    [batch] = sink.batches
    assert [row[2] for row in batch.raw_events] == [0, 1, 2, 3]
    assert batch.offset_ranges == {0: (0, 3)}
    assert batch.dedup_token == f"{TOPIC}|0:0-3"
    opened = sum(aggregate.requests_opened for _, aggregate in batch.deltas)
    csat_5 = sum(aggregate.csat_5 for _, aggregate in batch.deltas)
    assert (opened, csat_5) == (1, 1)
    [comment] = batch.comments
    assert comment[COMMENT_COLUMNS.index("comment")] == "mail me: [email]"
    assert b"a.b@example.com" not in b"".join(row[12] for row in batch.raw_events)
    assert dead_letters.sent == []
    assert (
        registry.get_sample_value(
            "deptpulse_events_total", {"event_type": "request.opened", "outcome": "processed"}
        )
        == 1
    )
    assert registry.get_sample_value("deptpulse_sink_batches_total") == 1
    assert handler.partitions[0].applied_offset == 3


def test_bad_messages_become_dead_letters_with_their_original_bytes_and_the_offset_moves_past_them() -> None:
    handler, sink, dead_letters, registry = make_handler()
    asyncio.run(handler.assign([0]))
    unknown = event("request.opened", "R9", 1, provider_department="marketing")
    schema = event("request.opened", "R8", 1, priority="P9")
    records = [rec(0, b"\xff not json"), rec(1, schema), rec(2, unknown), rec(3, lifecycle("R1")[0])]

    asyncio.run(handler.handle({0: records}))

    reasons = {letter.source_offset: letter.reason for letter in dead_letters.sent}
    assert reasons == {0: "decode", 1: "schema", 2: "unknown_department"}
    first = dead_letters.sent[0]
    assert first.value == b"\xff not json" and first.key == b"key"
    headers = read_dead_letter(first.kafka_headers())
    assert (
        headers["source.topic"] == TOPIC
        and headers["source.offset"] == "0"
        and headers["value"] == "original"
    )
    assert ("trace", b"abc") in first.kafka_headers()
    assert "priority" in read_dead_letter(dead_letters.sent[1].kafka_headers())["detail"]
    [batch] = sink.batches
    assert batch.offset_ranges == {0: (0, 3)}  # bad messages are covered by the applied offset
    assert [row[2] for row in batch.raw_events] == [3]
    assert registry.get_sample_value("deptpulse_dead_letters_total", {"reason": "decode"}) == 1
    assert (
        registry.get_sample_value(
            "deptpulse_events_total", {"event_type": "unknown", "outcome": "dead_letter"}
        )
        == 3
    )


def test_dead_letters_are_sent_after_the_side_tables_and_before_the_aggregate_insert() -> None:
    handler, sink, _, _ = make_handler()
    asyncio.run(handler.assign([0]))

    asyncio.run(handler.handle({0: [rec(0, b"garbage"), rec(1, lifecycle("R1")[0])]}))

    assert sink.calls == ["side tables", "dead letters", "aggregates"]


def test_a_repeated_event_id_is_counted_once() -> None:
    handler, sink, _, registry = make_handler()
    asyncio.run(handler.assign([0]))
    opened = lifecycle("R1")[0]

    asyncio.run(handler.handle({0: [rec(0, opened), rec(1, opened)]}))

    [batch] = sink.batches
    assert sum(aggregate.requests_opened for _, aggregate in batch.deltas) == 1
    assert registry.get_sample_value("deptpulse_duplicate_events_total") == 1
    assert (
        registry.get_sample_value(
            "deptpulse_events_total", {"event_type": "request.opened", "outcome": "duplicate"}
        )
        == 1
    )


def test_after_a_restart_messages_up_to_the_applied_offset_are_skipped_and_state_is_rebuilt() -> None:
    # ClickHouse holds offsets 0..1 of partition 2: their events are replayed, not re-counted.
    bodies = lifecycle("R1")
    payloads = [(offset, payload_without_comment(_parse(bodies[offset]))) for offset in (0, 1)]
    handler, sink, _, registry = make_handler(FakeSink(applied={2: 1}, payloads=payloads))

    assert asyncio.run(handler.assign([2])) == {2: 1}
    records = [rec(offset, body) for offset, body in enumerate(bodies)]  # redelivered from offset 0
    report = asyncio.run(handler.handle({2: records}))

    assert report is not None and report.skipped == 2
    [batch] = sink.batches
    assert batch.offset_ranges == {2: (2, 3)}
    assert sum(aggregate.requests_opened for _, aggregate in batch.deltas) == 0
    assert sum(aggregate.requests_resolved for _, aggregate in batch.deltas) == 1  # the rebuilt request
    # the open, replayed from raw_events, is remembered: sending it again is a duplicate
    asyncio.run(handler.handle({2: [rec(4, bodies[0])]}))
    assert registry.get_sample_value("deptpulse_duplicate_events_total") == 1


def test_a_reply_waiting_for_its_open_survives_a_restart_through_raw_events() -> None:
    # The reply overtook its open: it is held, and stored in raw_events like every accepted event.
    handler, sink, dead_letters, _ = make_handler()
    asyncio.run(handler.assign([0]))
    asyncio.run(handler.handle({0: [rec(0, event("request.responded", "R1", 10))]}))
    [stored] = [dict(zip(RAW_EVENT_COLUMNS, row, strict=True)) for row in sink.batches[0].raw_events]
    assert dead_letters.sent == [] and sink.batches[0].facts == []

    # Restarted: the new owner rebuilds from raw_events; then the open arrives.
    sink = FakeSink(applied={0: 0}, payloads=[(stored["sink_offset"], stored["payload"])])
    restarted, sink, dead_letters, _ = make_handler(sink)
    asyncio.run(restarted.assign([0]))
    asyncio.run(restarted.handle({0: [rec(1, event("request.opened", "R1", 0))]}))

    [batch] = sink.batches
    assert dead_letters.sent == []
    assert [(fact.request_id, fact.first_response_wall_s) for fact in batch.facts] == [("R1", 600.0)]
    assert sum(aggregate.first_response_count for _, aggregate in batch.deltas) == 1


def test_records_delivered_twice_in_one_batch_are_handled_once() -> None:
    # aiokafka may return a partition's records again (a fetch racing the listener's seek).
    handler, sink, dead_letters, _ = make_handler()
    asyncio.run(handler.assign([0]))
    records = [rec(0, lifecycle("R1")[0]), rec(1, b"garbage")]

    report = asyncio.run(handler.handle({0: records + records}))

    assert report is not None and report.skipped == 2
    assert [letter.source_offset for letter in dead_letters.sent] == [1]
    assert [row[2] for row in sink.batches[0].raw_events] == [0]


def test_a_batch_being_retried_is_abandoned_when_its_partition_is_revoked() -> None:
    async def scenario() -> tuple[BatchHandler, FakeSink]:
        handler, sink, _, _ = make_handler()
        await handler.assign([0, 1])
        sink.block = asyncio.Event()  # ClickHouse down
        writing = asyncio.create_task(handler.handle({0: [rec(0, lifecycle("R1")[0])]}))
        await asyncio.sleep(0.05)
        await handler.revoke([0])
        with pytest.raises(Abandoned):
            await writing
        return handler, sink

    handler, sink = asyncio.run(scenario())

    assert sink.batches == []
    assert 0 not in handler.partitions and 0 not in handler._retained  # rebuilt from ClickHouse when back
    assert 1 in handler.partitions


def test_a_batch_prepared_behind_an_abandoned_one_is_abandoned_too() -> None:
    async def scenario() -> tuple[BatchHandler, FakeSink]:
        handler, sink, _, _ = make_handler()
        await handler.assign([0])
        sink.block = asyncio.Event()  # ClickHouse down
        first = await handler.prepare({0: [rec(0, lifecycle("R1")[0])]})
        assert first is not None
        handler.start_persisting(first)
        second = await handler.prepare({0: [rec(1, lifecycle("R1")[1])]})  # prepared while the first waits
        assert second is not None
        await handler.revoke([0])
        with pytest.raises(Abandoned):
            await handler.wait_persisted()
        handler.start_persisting(second)
        with pytest.raises(Abandoned):
            await handler.wait_persisted()
        return handler, sink

    handler, sink = asyncio.run(scenario())

    assert sink.batches == [] and handler.partitions == {} and handler._retained == {}


def test_pipelined_batches_reach_the_sink_in_order() -> None:
    async def scenario() -> FakeSink:
        handler, sink, _, _ = make_handler()
        await handler.assign([0])
        bodies = lifecycle("R1")
        for offset, body in enumerate(bodies):
            prepared = await handler.prepare({0: [rec(offset, body)]})
            await handler.wait_persisted()
            assert prepared is not None
            handler.start_persisting(prepared)
        await handler.wait_persisted()
        return sink

    sink = asyncio.run(scenario())

    assert [batch.offset_ranges[0] for batch in sink.batches] == [(0, 0), (1, 1), (2, 2), (3, 3)]


def test_a_cleanly_revoked_partition_is_reused_only_when_clickhouse_agrees() -> None:
    handler, sink, _, _ = make_handler()
    asyncio.run(handler.assign([0]))
    asyncio.run(handler.handle({0: [rec(0, lifecycle("R1")[0])]}))
    kept = handler.partitions[0]
    asyncio.run(handler.revoke([0]))

    asyncio.run(handler.assign([0]))
    assert handler.partitions[0] is kept

    asyncio.run(handler.revoke([0]))
    sink.applied[0] = 7  # another worker moved on meanwhile
    asyncio.run(handler.assign([0]))
    assert handler.partitions[0] is not kept and handler.partitions[0].applied_offset == 7


def test_a_batch_fetched_before_a_rebalance_is_dropped() -> None:
    handler, sink, _, _ = make_handler()
    asyncio.run(handler.assign([0]))

    assert asyncio.run(handler.handle({0: [rec(0, lifecycle("R1")[0])]}, is_current=lambda: False)) is None
    assert sink.batches == []


def test_records_of_partitions_not_owned_are_ignored() -> None:
    handler, sink, _, _ = make_handler()
    asyncio.run(handler.assign([0]))

    report = asyncio.run(handler.handle({5: [rec(0, lifecycle("R1")[0])]}))

    assert report is not None and report.skipped == 1 and sink.batches == []


class FakeConsumer:
    """The part of AIOKafkaConsumer the EventsConsumer uses; serves ``batches`` then stops the loop."""

    def __init__(self, batches: list[dict[Any, list[Rec]]]) -> None:
        self.batches = batches
        self.listener: Any = None
        self.seeks: dict[int, int] = {}
        self.seek_log: list[tuple[int, int]] = []
        self.commits: list[dict[int, int]] = []
        self.events: Any = None
        self.idle = 0

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.listener = listener

    def seek(self, tp: Any, offset: int) -> None:
        self.seeks[tp.partition] = offset
        self.seek_log.append((tp.partition, offset))

    async def beginning_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tp: 0 for tp in tps}

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, list[Rec]]:
        if self.batches:
            return self.batches.pop(0)
        self.idle += 1
        if self.idle > 2:  # idle twice: the batch being persisted had its turn
            await self.events.stop()
        await asyncio.sleep(0.01)
        return {}

    async def commit(self, offsets: dict[Any, Any]) -> None:
        self.commits.append({tp.partition: meta.offset for tp, meta in offsets.items()})

    def highwater(self, tp: Any) -> int:
        return 100


def test_the_consumer_seeks_past_clickhouse_and_commits_what_is_persisted() -> None:
    from aiokafka.structs import TopicPartition

    from stream_processors.agents import EventsConsumer

    async def scenario() -> tuple[FakeConsumer, FakeSink, CollectorRegistry]:
        handler, sink, _, registry = make_handler(FakeSink(applied={1: 41}))
        consumer = FakeConsumer([{TopicPartition(TOPIC, 0): [rec(0, lifecycle("R1")[0])]}])
        events = EventsConsumer(consumer, handler, handler.metrics, batch_wait_s=0.0)
        consumer.events = events
        events.subscribe()
        await consumer.listener.on_partitions_assigned([TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)])
        await events.run()
        return consumer, sink, registry

    consumer, sink, registry = asyncio.run(scenario())

    assert consumer.seeks == {0: 0, 1: 42}
    # partition 1 had nothing new: its persisted position is committed anyway (a crash between
    # the insert and the commit must not leave lag tools behind forever)
    assert {p: o for commit in consumer.commits for p, o in commit.items()} == {0: 1, 1: 42}
    assert [batch.offset_ranges for batch in sink.batches] == [{0: (0, 0)}]
    assert registry.get_sample_value("deptpulse_consumer_lag", {"partition": "0"}) == 99


def test_records_from_the_groups_committed_offset_are_dropped_and_the_partition_re_sought() -> None:
    """aiokafka may fetch from the group's committed offset while the assignment callback awaits
    ClickHouse; ClickHouse (empty here) says partition 0 resumes at 0, so those records must not
    count and offsets 0.. must be read (found by tests/reliability/test_committed_offset.py)."""
    from aiokafka.structs import TopicPartition

    from stream_processors.agents import EventsConsumer

    first, later = lifecycle("R1")[0], lifecycle("R2")[0]
    tp = TopicPartition(TOPIC, 0)

    async def scenario() -> tuple[FakeConsumer, FakeSink]:
        handler, sink, _, _ = make_handler(FakeSink())
        consumer = FakeConsumer([{tp: [rec(5, later)]}, {tp: [rec(0, first)]}])
        events = EventsConsumer(consumer, handler, handler.metrics, batch_wait_s=0.0)
        consumer.events = events
        events.subscribe()
        await consumer.listener.on_partitions_assigned([tp])
        await events.run()
        return consumer, sink

    consumer, sink = asyncio.run(scenario())

    assert consumer.seek_log == [(0, 0), (0, 0)]  # at assignment, then again after the stray fetch
    assert [batch.offset_ranges for batch in sink.batches] == [{0: (0, 0)}]


def test_business_gauges_per_provider_and_capped_pairs_and_absent_without_answers() -> None:
    from stream_processors.core import MinuteAggregate
    from stream_processors.metrics import BusinessGauges

    registry = CollectorRegistry()
    gauges = BusinessGauges(Metrics.create(registry), pair_limit=1)
    rows = [
        (
            "it",
            "hr",
            MinuteAggregate(
                csat_5=3,
                csat_1=1,
                sla_met=9,
                sla_breached=1,
                nps_promoters=6,
                nps_passives=2,
                nps_detractors=2,
            ),
        ),
        ("it", "sales", MinuteAggregate(csat_4=1)),
        ("hr", "it", MinuteAggregate(requests_opened=4)),
    ]

    gauges.update("7d", rows)

    def value(name: str, provider: str, customer: str) -> float | None:
        labels = {"provider_department": provider, "customer_department": customer, "window": "7d"}
        return registry.get_sample_value(name, labels)

    assert value("deptpulse_csat_responses", "it", "*") == 5
    assert value("deptpulse_csat_average", "it", "*") == pytest.approx((15 + 1 + 4) / 5)
    # answers 5, 5, 5, 1, 4: mean 4, variance (3 * 1 + 9 + 0) / 5 = 2.4; margin 1.96 * sqrt(2.4 / 5)
    assert value("deptpulse_csat_average_margin", "it", "*") == pytest.approx(1.959964 * (2.4 / 5) ** 0.5)
    assert value("deptpulse_satisfied_share", "it", "*") == pytest.approx(0.8)
    assert value("deptpulse_sla_attainment_ratio", "it", "hr") == pytest.approx(0.9)
    assert value("deptpulse_sla_requests", "it", "hr") == 10
    # NPS 100 * (0.6 - 0.2) = 40; margin 1.96 * sqrt((0.6 + 0.2 - 0.4**2) / 10) = 49.6 points.
    assert value("deptpulse_nps", "it", "hr") == pytest.approx(40)
    assert value("deptpulse_nps_margin", "it", "hr") == pytest.approx(49.58, abs=0.01)
    assert value("deptpulse_nps_responses", "it", "hr") == 10
    assert value("deptpulse_nps_margin", "hr", "*") is None
    assert value("deptpulse_csat_responses", "it", "sales") is None  # over the pair limit
    assert value("deptpulse_csat_responses", "hr", "*") == 0
    assert value("deptpulse_csat_average", "hr", "*") is None  # no answers: no ratio, no alert

    gauges.update("7d", rows[2:])  # it's answers left the window
    assert value("deptpulse_csat_responses", "it", "*") is None
    assert value("deptpulse_csat_responses", "hr", "*") == 0


def _parse(body: dict[str, Any]) -> Any:
    from schemas.events import parse_event

    return parse_event(orjson.dumps(body))


def test_the_backlog_gauge_drops_a_cleared_pair_to_zero() -> None:
    from prometheus_client import CollectorRegistry

    from stream_processors.metrics import BacklogGauge, Metrics

    registry = CollectorRegistry()
    gauge = BacklogGauge(Metrics.create(registry))
    name = "deptpulse_requests_awaiting_first_response_past_target"
    it_finance = {"provider_department": "it", "customer_department": "finance"}

    gauge.update({("it", "finance"): 3})
    assert registry.get_sample_value(name, it_finance) == 3
    gauge.update({})
    assert registry.get_sample_value(name, it_finance) == 0


def test_records_fetched_while_the_assignment_callback_runs_are_dropped() -> None:
    """While the callback awaits Kafka for the beginning offsets, partition 0 already has its
    processor (at -1) but not its position: aiokafka fetches from the group's committed offset.
    Those records must not reach the processor, or offsets 0.. are skipped as already processed
    (the loss of tests/reliability/test_committed_offset.py that the start-offset check missed:
    records from offset 6 arrive before the callback has said where partition 0 starts)."""
    from aiokafka.structs import TopicPartition

    from stream_processors.agents import EventsConsumer

    first, stray = lifecycle("R1")[0], lifecycle("R2")[0]
    tp = TopicPartition(TOPIC, 0)

    class SlowBeginnings(FakeConsumer):
        def __init__(self) -> None:
            super().__init__([{tp: [rec(0, first)]}])
            self.release = asyncio.Event()
            self.stray_served = 0

        async def beginning_offsets(self, tps: list[Any]) -> dict[Any, int]:
            await self.release.wait()
            return {tp: 0 for tp in tps}

        async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, list[Rec]]:
            if not self.release.is_set():  # the callback is waiting: serve the committed offset's records
                self.stray_served += 1
                if self.stray_served == 3:
                    self.release.set()
                await asyncio.sleep(0)
                return {tp: [rec(5 + self.stray_served, stray)]}
            return await super().getmany(timeout_ms, max_records)

    async def scenario() -> tuple[SlowBeginnings, FakeSink]:
        handler, sink, _, _ = make_handler(FakeSink())
        consumer = SlowBeginnings()
        events = EventsConsumer(consumer, handler, handler.metrics, batch_wait_s=0.0)
        consumer.events = events
        events.subscribe()
        running = asyncio.ensure_future(events.run())
        await asyncio.sleep(0)
        await consumer.listener.on_partitions_assigned([tp])
        await running
        return consumer, sink

    consumer, sink = asyncio.run(scenario())

    assert consumer.stray_served == 3
    assert [batch.offset_ranges for batch in sink.batches] == [{0: (0, 0)}]
    assert set(consumer.seek_log) == {(0, 0)}  # every position set is where ClickHouse says it resumes


class LogConsumer(FakeConsumer):
    """A consumer with positions: getmany serves each partition's log from its position on."""

    def __init__(self, logs: dict[int, list[Rec]]) -> None:
        super().__init__([])
        self.logs = logs
        self.position: dict[int, int] = {}
        self.before_fetch: Callable[[], Awaitable[None]] | None = None

    def seek(self, tp: Any, offset: int) -> None:
        super().seek(tp, offset)
        self.position[tp.partition] = offset

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, list[Rec]]:
        from aiokafka.structs import TopicPartition

        if self.before_fetch is not None:  # e.g. a rebalance completes while getmany waits
            hook, self.before_fetch = self.before_fetch, None
            await hook()
        fetched = {}
        for partition, position in self.position.items():
            records = [r for r in self.logs[partition] if r.offset >= position][:max_records]
            if records:
                fetched[TopicPartition(TOPIC, partition)] = records
                self.position[partition] = records[-1].offset + 1
        if fetched:
            return fetched
        return await super().getmany(timeout_ms, max_records)


def test_records_dropped_for_a_rebalance_are_read_again() -> None:
    """A rebalance that keeps partition 0 here completes while getmany waits; the records it then
    returns were fetched from the new position but belong to a batch begun before: they are
    dropped, so the position must move back, or they are never read (measured before the fix:
    a worker that fetched the whole topic in that getmany stalled with nothing counted)."""
    from aiokafka.structs import TopicPartition

    from stream_processors.agents import EventsConsumer

    tp = TopicPartition(TOPIC, 0)
    logs = {0: [rec(offset, event) for offset, event in enumerate(lifecycle("R1"))]}

    async def scenario() -> tuple[LogConsumer, FakeSink]:
        handler, sink, _, _ = make_handler(FakeSink())
        consumer = LogConsumer(logs)
        events = EventsConsumer(consumer, handler, handler.metrics, batch_wait_s=0.0)
        consumer.events = events
        events.subscribe()
        await consumer.listener.on_partitions_assigned([tp])

        async def rebalance() -> None:
            await consumer.listener.on_partitions_revoked([tp])
            await consumer.listener.on_partitions_assigned([tp])

        consumer.before_fetch = rebalance
        await events.run()
        return consumer, sink

    consumer, sink = asyncio.run(scenario())

    last = len(logs[0]) - 1
    assert [batch.offset_ranges for batch in sink.batches] == [{0: (0, last)}]
    assert consumer.seek_log == [(0, 0), (0, 0), (0, 0)]  # two assignments, then the move back
