"""Minimal reproduction of a loss found by test_rebalance.py::test_a_worker_killed_during_a_rebalance.

A worker whose ClickHouse holds no applied offset for a partition must read it from the start,
"whatever Kafka's committed offset says" (stream_processors/sinks/clickhouse.py). Here the group
already has committed offsets (as after another worker with its own chdb path, or a ClickHouse
database that was replaced): the worker must still count every event.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from deptpulse.kafka_clients import kafka_python_kwargs
from tests.reliability.harness import FaultyRun, Mix, assert_totals, generate, publish

pytestmark = [pytest.mark.reliability, pytest.mark.integration]


def test_a_worker_with_empty_clickhouse_ignores_the_groups_committed_offsets(
    make_run: Callable[..., FaultyRun],
) -> None:
    mix = generate(seed=71, requests=600, start=(datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0))
    half = len(mix.messages) // 2
    run = make_run("committed")
    middle = publish(run.settings, Mix(mix.messages[:half]))
    consumer = KafkaConsumer(**kafka_python_kwargs(run.settings), group_id=run.group, enable_auto_commit=False)
    consumer.commit({TopicPartition(run.settings.events_topic, p): OffsetAndMetadata(o, "", -1) for p, o in middle.items()})
    consumer.close()
    ends = publish(run.settings, Mix(mix.messages[half:]))
    run.start()
    run.wait_done(ends, 180)
    time.sleep(0.5)
    run.stop()
    assert_totals(run.pair_totals(), mix, "a fresh ClickHouse under a group with committed offsets:")
