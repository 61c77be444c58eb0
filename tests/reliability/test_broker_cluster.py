"""Three Kafka brokers (KRaft, `DEPTPULSE_KAFKA_BROKERS=3`), one of them killed with SIGKILL.

Topics are replicated three times with ``min.insync.replicas=2``, so with one broker down every
acks=all send must still succeed: through the Publisher SDK and the gateway (202, never 503),
and from a publisher running while two workers (one consumer group, a chdb each) count. The
broker comes back; the workers' minute aggregates, summed, must equal the independent computation
(every partition is applied by one worker only, checked), and the dead-letter topic must hold
exactly the injected bad messages. Printed: messages, leader changes (sampled from the admin
client), how long sends stalled, how long the broker took to be in sync again, catch-up time.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from deptpulse.kafka_clients import kafka_python_kwargs
from deptpulse.settings import Settings
from deptpulse.stack import KafkaNode, LocalStack, create_topics
from producers.gateway import create_app
from producers.publisher import Publisher
from tests.integration.test_gateway_kafka import DIRECTORY, HR_TOKEN, integrations
from tests.reliability.harness import (
    PARTITIONS,
    FaultyRun,
    Mix,
    assert_dead_letters_exact,
    assert_pair_totals,
    expected_dead_letters,
    expected_totals,
    generate,
    wait_until,
)
from tests.reliability.test_rebalance import assignments

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
BROKERS = 3
HEADERS = {"authorization": f"Bearer {HR_TOKEN}", "content-type": "application/json"}


@pytest.fixture(scope="module")
def cluster(make_stack_settings: Callable[..., Settings]) -> Iterator[tuple[LocalStack, Settings]]:
    """Three brokers of this module's own (the tests kill them); yields the stack and its Settings."""
    settings = make_stack_settings(kafka_brokers=BROKERS)
    stack = LocalStack(settings)
    try:
        stack.up(["kafka"])
        yield stack, settings
    finally:
        stack.down(["kafka"])


def own_topic(settings: Settings, name: str) -> Settings:
    topic = f"cluster.{name}.{uuid.uuid4().hex[:8]}"
    return settings.model_copy(
        update={"events_topic": topic, "dead_letter_topic": f"{topic}.dlq", "events_partitions": PARTITIONS}
    )


def describe(settings: Settings, topic: str) -> dict[int, tuple[int, list[int], list[int]]]:
    """partition -> (leader, replicas, in-sync replicas), from the metadata of a live broker."""
    with KafkaAdminClient(**kafka_python_kwargs(settings), request_timeout_ms=5000) as admin:
        (described,) = admin.describe_topics([topic])
    return {
        p["partition_index"]: (p["leader_id"], sorted(p["replica_nodes"]), sorted(p["isr_nodes"]))
        for p in described["partitions"]
    }


def min_insync(settings: Settings, topic: str) -> str:
    with KafkaAdminClient(**kafka_python_kwargs(settings)) as admin:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    return str(described["topic"][topic]["min.insync.replicas"]["value"])


def gone(settings: Settings, node_id: int) -> bool:
    """The controller fenced the broker (its session timed out) and it leads no partition of the topic."""
    try:
        with KafkaAdminClient(**kafka_python_kwargs(settings), request_timeout_ms=5000) as admin:
            live = {broker["broker_id"] for broker in admin.describe_cluster()["brokers"] if not broker.get("is_fenced")}
        leaders = {leader for leader, _, _ in describe(settings, settings.events_topic).values()}
    except KafkaError:
        return False
    return node_id not in live and node_id not in leaders


def service_of(node_id: int) -> str:
    return KafkaNode(node_id, 0, 0).service


def restart_and_wait_in_sync(stack: LocalStack, settings: Settings, topics: list[str]) -> tuple[float, float]:
    """Start the killed broker again; (seconds until it answers, seconds more until every replica of
    ``topics`` is in sync)."""
    started = time.monotonic()
    stack.up(["kafka"])
    answered = time.monotonic()

    def all_in_sync() -> bool:
        try:
            return all(isr == replicas for topic in topics for _, replicas, isr in describe(settings, topic).values())
        except KafkaError:
            return False

    wait_until(all_in_sync, 120, "every replica back in sync", interval=0.5)
    return answered - started, time.monotonic() - answered


class LeaderMonitor:
    """Samples the leaders of a topic's partitions every half second in a thread; counts changes."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.settings, self.topic = settings, topic
        self.changes: list[tuple[float, int, int, int]] = []  # (seconds, partition, from, to)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._began = time.monotonic()

    def __enter__(self) -> LeaderMonitor:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        last: dict[int, int] = {}
        while not self._stop.wait(0.5):
            try:
                now = {partition: leader for partition, (leader, _, _) in describe(self.settings, self.topic).items()}
            except KafkaError:
                continue
            for partition, leader in now.items():
                if partition in last and last[partition] != leader:
                    self.changes.append((round(time.monotonic() - self._began, 1), partition, last[partition], leader))
            last.update(now)


# --- the publisher SDK and the gateway ------------------------------------------------------------


def survey(at: datetime, score: int) -> dict[str, Any]:
    return {"schema_version": 1, "event_id": uuid.uuid4().hex, "event_type": "survey.answered",
            "occurred_at": at.isoformat(), "source": "hr-survey", "provider_department": "it",
            "customer_department": "finance", "score": score}


def read_event_ids(settings: Settings, expected: int, timeout: float = 60) -> Counter[str]:
    consumer = KafkaConsumer(settings.events_topic, **kafka_python_kwargs(settings), group_id=None,
                             auto_offset_reset="earliest", enable_auto_commit=False)
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + timeout
    try:
        while sum(seen.values()) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=1000).values():
                seen.update(orjson.loads(record.value)["event_id"] for record in batch)
    finally:
        consumer.close()
    return seen


def test_sends_succeed_with_one_of_three_brokers_down(cluster: tuple[LocalStack, Settings]) -> None:
    stack, base = cluster
    # Above the ~10-13 s the cluster takes to fence a killed broker (10 s, the default, is not).
    settings = own_topic(base, "sdk").model_copy(update={"gateway_publish_timeout_seconds": 30.0})
    create_topics(settings)
    assert {replicas == [1, 2, 3] for _, replicas, _ in describe(settings, settings.events_topic).values()} == {True}
    assert min_insync(settings, settings.events_topic) == min_insync(settings, settings.dead_letter_topic) == "2"
    at = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    publisher = Publisher.from_settings(settings, DIRECTORY)
    app = create_app(settings, DIRECTORY, integrations(), publisher, registry=CollectorRegistry())
    events: list[dict[str, Any]] = []
    seconds: dict[str, float] = {}

    def publish(name: str, count: int, since: float) -> None:
        batch = [survey(at, score % 11) for score in range(count)]
        events.extend(batch)
        for event in batch:
            publisher.send(orjson.dumps(event))
        publisher.flush(timeout=60)  # DeliveryError if any send was not acknowledged
        seconds[name] = time.monotonic() - since

    def post(gateway: TestClient, name: str, since: float) -> None:
        batch = [survey(at, 7) for _ in range(50)]
        response = gateway.post("/v1/events", content=orjson.dumps(batch), headers=HEADERS)
        assert response.status_code == 202, response.text
        events.extend(batch)
        seconds[name] = time.monotonic() - since

    try:
        with TestClient(app) as gateway:
            post(gateway, "warm-up", time.monotonic())
            victim = describe(settings, settings.events_topic)[0][0]
            stack.kill(service_of(victim))
            killed = time.monotonic()
            # Until the controller fences the dead broker (its session times out) it is still named
            # leader: sends to its partitions wait and are retried, and must not be reported failed.
            sdk = threading.Thread(target=publish, args=("sdk, during failover", 200, killed))
            sdk.start()
            post(gateway, "gateway, during failover", killed)
            sdk.join(90)
            wait_until(lambda: gone(settings, victim), 60, "the dead broker fenced, its partitions led by others")
            fenced = time.monotonic() - killed
            publish("sdk, 2 of 3 up", 200, time.monotonic())
            post(gateway, "gateway, 2 of 3 up", time.monotonic())
        ids = read_event_ids(settings, expected=len(events))
        assert sum(ids.values()) == len(events) and set(ids.values()) == {1}
        assert {event["event_id"] for event in events} == set(ids)
        print(f"\nbroker {victim} killed, fenced within {fenced:.1f}s; every send acknowledged, seconds to the "
              f"last ack: {', '.join(f'{name} {value:.2f}' for name, value in seconds.items())}; "
              f"{len(ids)} records read back, none twice")
    finally:
        publisher.close(timeout=30)
        restart_and_wait_in_sync(stack, settings, [settings.events_topic])


# --- two workers and a publisher while a broker dies ----------------------------------------------


class PacedPublisher(threading.Thread):
    """Publishes a mix in ``chunks`` chunks ``pause`` seconds apart, as the Publisher does (acks=all,
    idempotent), with each message's partition; ``failed`` counts sends Kafka did not acknowledge."""

    def __init__(self, settings: Settings, mix: Mix, chunks: int, pause: float) -> None:
        super().__init__(daemon=True)
        self.settings, self.mix, self.chunks, self.pause = settings, mix, chunks, pause
        self.sent_chunks = 0
        self.failed: list[BaseException] = []
        self.ends: dict[int, int] = {}
        self.finished_at = 0.0

    def reached(self, chunks: int) -> bool:
        return self.sent_chunks >= chunks

    def run(self) -> None:
        producer = KafkaProducer(**kafka_python_kwargs(self.settings), acks="all", enable_idempotence=True,
                                 linger_ms=10, compression_type="lz4")
        size = -(-len(self.mix.messages) // self.chunks)
        futures = []
        for start in range(0, len(self.mix.messages), size):
            for message in self.mix.messages[start : start + size]:
                futures.append(producer.send(self.settings.events_topic, value=message.value, key=message.key,
                                             partition=message.partition))
            self.sent_chunks += 1
            time.sleep(self.pause)
        producer.flush(timeout=180)
        self.failed = [f.exception for f in futures if f.failed()]
        producer.close()
        self.finished_at = time.monotonic()
        consumer = KafkaConsumer(**kafka_python_kwargs(self.settings))
        ends = consumer.end_offsets([TopicPartition(self.settings.events_topic, p) for p in range(PARTITIONS)])
        consumer.close()
        self.ends = {tp.partition: offset for tp, offset in ends.items()}


def applied_partitions(run: FaultyRun) -> set[int]:
    return {int(row[0]) for row in run.query("SELECT sink_partition FROM sink_offsets")}


def run_with_broker_kills(stack: LocalStack, base: Settings, make_run: Callable[..., FaultyRun],
                          requests: int, kills: int, seed: int, chunks_per_kill: int = 20) -> None:
    """Publish a generated mix in 1 s chunks while two workers count; kill a broker (each in turn, the
    first the leader of partition 0) once per ``chunks_per_kill`` chunks, restart it once fenced."""
    mix = generate(seed=seed, requests=requests, start=(datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0))
    first = make_run(f"cluster{seed}a", settings=base)
    second = make_run(f"cluster{seed}b", like=first)
    settings = first.settings
    create_topics(settings)
    first.start()
    second.start()

    def split_between_both() -> bool:
        owned = [assignments(run)[-1] if assignments(run) else [] for run in (first, second)]
        return all(owned) and sorted(owned[0] + owned[1]) == list(range(PARTITIONS))

    wait_until(split_between_both, 180, "both workers to share the partitions", on_timeout=second.log_tail)
    publisher = PacedPublisher(settings, mix, chunks=chunks_per_kill * kills + 2, pause=1.0)
    figures: list[str] = []
    with LeaderMonitor(settings, settings.events_topic) as leaders:
        publisher.start()
        first_victim = describe(settings, settings.events_topic)[0][0]
        for number in range(kills):
            goal = 2 + chunks_per_kill * number
            wait_until(partial(publisher.reached, goal), 300, f"the publisher's chunk {goal}")
            victim = (first_victim - 1 + number) % BROKERS + 1
            chunk = publisher.sent_chunks
            stack.kill(service_of(victim))
            killed = time.monotonic()
            wait_until(partial(gone, settings, victim), 60, f"broker {victim} fenced, partitions moved", interval=0.5)
            fenced_s = time.monotonic() - killed
            time.sleep(2)  # a little publishing with two brokers only
            down_s = time.monotonic() - killed
            start_s, in_sync_s = restart_and_wait_in_sync(stack, settings,
                                                          [settings.events_topic, settings.dead_letter_topic])
            figures.append(f"broker {victim} killed at chunk {chunk}: fenced and its partitions led by others "
                           f"{fenced_s:.1f}s after the kill, restarted after {down_s:.1f}s down, answering "
                           f"{start_s:.1f}s later, every replica in sync {in_sync_s:.1f}s after that")
        publisher.join(300)
        assert not publisher.is_alive(), "the publisher did not finish"
        assert not publisher.failed, f"{len(publisher.failed)} sends failed: {publisher.failed[:3]}"
        caught_up = first.wait_done(publisher.ends, 240)
        assert second.alive(), second.log_tail()
    first.stop()
    second.stop()

    # In Kafka: every message exactly once (the idempotent producer wrote no retried duplicate).
    assert publisher.ends == dict(Counter(message.partition for message in mix.messages))
    owned = [applied_partitions(run) for run in (first, second)]
    assert not owned[0] & owned[1], f"a partition was applied by both workers (a rebalance moved it): {owned}"
    summed: dict[tuple[str, str], Counter[str]] = {}
    for run in (first, second):
        for pair, counts in run.pair_totals().items():
            summed.setdefault(pair, Counter()).update(counts)
    assert_pair_totals({pair: dict(counts) for pair, counts in summed.items()}, expected_totals(mix),
                       "two workers, summed, after the broker kill:")
    stored = sum(run.query("SELECT count() FROM raw_events FINAL")[0][0] for run in (first, second))
    assert stored == len(mix.valid) + 1  # + the held orphan
    resent = assert_dead_letters_exact(settings, expected_dead_letters(mix))
    print(f"\n{len(mix.messages)} messages in {publisher.chunks} chunks 1 s apart; workers own {owned}; "
          + "; ".join(figures)
          + f"; leader changes {len(leaders.changes)} {leaders.changes}; workers caught up {caught_up:.1f}s "
          f"after the last publish; dead letters re-sent {resent}")


def test_a_broker_killed_under_two_workers_loses_and_doubles_nothing(
    cluster: tuple[LocalStack, Settings], make_run: Callable[..., FaultyRun]
) -> None:
    stack, base = cluster
    run_with_broker_kills(stack, base, make_run, requests=600, kills=1, seed=71)


@pytest.mark.slow
def test_each_broker_killed_in_turn_loses_and_doubles_nothing(
    cluster: tuple[LocalStack, Settings], make_run: Callable[..., FaultyRun]
) -> None:
    stack, base = cluster
    kills = int(os.environ.get("RELIABILITY_BROKER_KILLS", "3"))
    run_with_broker_kills(stack, base, make_run, requests=4000, kills=kills, seed=72, chunks_per_kill=45)
