"""The publisher SDK against a real broker: what is sent is what is read back; errors surface."""

from __future__ import annotations

import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import NewTopic
from kafka.partitioner.default import murmur2 as kafka_murmur2
from prometheus_client import CollectorRegistry

from deptpulse.kafka_clients import kafka_python_kwargs
from deptpulse.settings import EXAMPLE_DIRECTORY, Settings
from deptpulse.stack import create_topics
from producers.publisher import (
    DeliveryError,
    ProducerTuning,
    Publisher,
    PublisherError,
    PublisherMetrics,
    murmur2,
)
from producers.simulator import simulate
from schemas.directory import load_directory
from schemas.events import InvalidEvent, event_to_json

pytestmark = pytest.mark.integration

DIRECTORY = load_directory(EXAMPLE_DIRECTORY)
START = datetime(2026, 3, 2, 9, tzinfo=UTC)


def fresh_topic(settings: Settings, **configs: str) -> str:
    """A new topic of the session's broker (6 partitions unless configs say otherwise)."""
    name = f"test-publisher-{uuid.uuid4().hex[:8]}"
    if configs:
        with KafkaAdminClient(**kafka_python_kwargs(settings)) as admin:
            admin.create_topics([NewTopic(name, 1, 1, topic_configs=configs)])
            admin.wait_for_topics([name], timeout_ms=30_000)
    else:
        create_topics(settings.model_copy(update={"events_topic": name}))
    return name


def consume_all(settings: Settings, topic: str, expected: int, timeout: float = 30.0) -> list[Any]:
    consumer = KafkaConsumer(
        topic,
        **kafka_python_kwargs(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
    )
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            records.extend(consumer)
        return records
    finally:
        consumer.close()


def outcome(registry: CollectorRegistry, name: str) -> float:
    return registry.get_sample_value("deptpulse_publisher_events_total", {"outcome": name}) or 0.0


def test_what_is_published_is_read_back_keyed_with_headers_and_canonical(kafka_stack: Settings) -> None:
    topic = fresh_topic(kafka_stack)
    events = list(simulate(DIRECTORY, START - timedelta(days=14), timedelta(days=14), 0.002, seed=4))
    assert {e.event_type for e in events} >= {"request.opened", "feedback.submitted", "survey.answered"}
    registry = CollectorRegistry()
    with Publisher(
        kafka_python_kwargs(kafka_stack), topic, DIRECTORY, metrics=PublisherMetrics.create(registry)
    ) as publisher:
        futures = [publisher.send(event) for event in events]
        publisher.flush()
    assert all(future.succeeded() for future in futures)
    assert outcome(registry, "delivered") == len(events)
    assert registry.get_sample_value("deptpulse_publisher_value_bytes_total") == sum(
        len(event_to_json(e)) for e in events
    )

    records = consume_all(kafka_stack, topic, len(events))
    assert len(records) == len(events)
    by_id = {event.event_id: event for event in events}
    partitions_of_key: dict[bytes, set[int]] = {}
    for record in records:
        event = by_id[orjson.loads(record.value)["event_id"]]
        assert record.value == event_to_json(event)
        assert record.key == event.partition_key.encode()
        assert dict(record.headers) == {"schema_version": b"1", "source": event.source.encode()}
        partitions_of_key.setdefault(record.key, set()).add(record.partition)
    assert all(len(partitions) == 1 for partitions in partitions_of_key.values())
    assert len({record.partition for record in records}) > 1  # keys spread over the 6 partitions
    survey = next(e for e in events if e.event_type == "survey.answered")
    assert survey.partition_key == survey.provider_department


def test_one_requests_events_keep_their_order(kafka_stack: Settings) -> None:
    topic = fresh_topic(kafka_stack)
    events = [
        e for e in simulate(DIRECTORY, START, timedelta(days=7), 0.001, seed=9) if e.source != "hr-survey"
    ]
    with Publisher.from_settings(
        kafka_stack.model_copy(update={"events_topic": topic}), DIRECTORY
    ) as publisher:
        for event in events:
            publisher.send(event)
    expected: dict[bytes, list[bytes]] = {}
    for event in events:
        expected.setdefault(event.partition_key.encode(), []).append(event_to_json(event))
    read: dict[bytes, list[bytes]] = {}
    for record in sorted(consume_all(kafka_stack, topic, len(events)), key=lambda r: (r.partition, r.offset)):
        read.setdefault(record.key, []).append(record.value)
    assert read == expected


def test_dicts_are_validated_and_sent_in_canonical_form(kafka_stack: Settings) -> None:
    topic = fresh_topic(kafka_stack)
    event = next(iter(simulate(DIRECTORY, START, timedelta(hours=1), 1.0, seed=2)))
    as_dict = event.model_dump()
    as_dict["occurred_at"] = event.occurred_at.astimezone(ZoneInfo("Asia/Shanghai"))  # sent as UTC
    with Publisher(kafka_python_kwargs(kafka_stack), topic, DIRECTORY) as publisher:
        publisher.send(as_dict).get(timeout=10)
        publisher.send(event_to_json(event)).get(timeout=10)  # JSON bytes: parsed, then re-encoded
    assert [r.value for r in consume_all(kafka_stack, topic, 2)] == [event_to_json(event)] * 2


def test_an_invalid_event_raises_and_nothing_is_sent(kafka_stack: Settings) -> None:
    topic = fresh_topic(kafka_stack)
    event = next(iter(simulate(DIRECTORY, START, timedelta(hours=1), 1.0, seed=2)))
    registry = CollectorRegistry()
    with Publisher(
        kafka_python_kwargs(kafka_stack), topic, DIRECTORY, metrics=PublisherMetrics.create(registry)
    ) as publisher:
        with pytest.raises(InvalidEvent, match=r"customer_department: .*unknown department 'marketing'"):
            publisher.send({**event.model_dump(), "customer_department": "marketing"})
        with pytest.raises(InvalidEvent, match="occurred_at"):
            publisher.send({**event.model_dump(), "occurred_at": datetime(2026, 3, 2, 9)})
        with pytest.raises(InvalidEvent) as refused:
            publisher.send(b'{"event_type": "request.opened"')
        assert refused.value.kind == "decode"
        publisher.flush()
    assert outcome(registry, "invalid") == 3
    assert outcome(registry, "delivered") == 0
    assert consume_all(kafka_stack, topic, 1, timeout=3) == []


def test_an_unreachable_broker_is_a_clear_error_within_seconds(make_stack_settings: Any) -> None:
    closed = make_stack_settings()  # free ports: nothing listens on them
    began = time.monotonic()
    with pytest.raises(PublisherError, match=r"cannot connect to Kafka at \['127\.0\.0\.1:\d+'\]"):
        Publisher.from_settings(
            closed,
            DIRECTORY,
            tuning=ProducerTuning(connect_timeout_ms=1000, max_block_ms=1000),
            request_timeout_ms=1000,
        )
    assert time.monotonic() - began < 5


def test_a_refused_delivery_surfaces_on_the_future_and_from_flush(kafka_stack: Settings) -> None:
    topic = fresh_topic(kafka_stack, **{"max.message.bytes": "1024"})
    event = next(
        e
        for e in simulate(DIRECTORY, START, timedelta(days=3), 0.01, seed=2)
        if e.event_type == "feedback.submitted"
    )
    too_big = {**event.model_dump(), "comment": os.urandom(2000).hex()}  # lz4 cannot shrink random hex
    registry = CollectorRegistry()
    publisher = Publisher(
        kafka_python_kwargs(kafka_stack), topic, DIRECTORY, metrics=PublisherMetrics.create(registry)
    )
    try:
        future = publisher.send(too_big)
        began = time.monotonic()
        with pytest.raises(
            DeliveryError, match=r"1 event\(s\) failed delivery; first error: .*MessageSizeTooLarge"
        ) as failed:
            publisher.flush(timeout=10)
        assert time.monotonic() - began < 5
        assert failed.value.count == 1
        assert future.failed()
        assert outcome(registry, "failed") == 1
        publisher.flush(timeout=10)  # a failure is reported once
    finally:
        publisher.close(0)


def test_the_partitioner_hashes_keys_exactly_as_kafka_does() -> None:
    """Our faster murmur2 must agree with kafka-python's (and so Java's): same key, same partition."""
    generator = random.Random(7)
    keys = [generator.randbytes(generator.randint(0, 48)) for _ in range(20_000)]
    keys += [f"ITSD-{generator.getrandbits(40):x}-{n}".encode() for n in range(5000)]
    assert [murmur2(key) for key in keys] == [kafka_murmur2(key) for key in keys]
