"""The local stack's Kafka with several brokers: addresses, KRaft quorum, replication, the cluster record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deptpulse.settings import Settings
from deptpulse.stack import KafkaNode, LocalStack, StackError, kafka_nodes

pytestmark = pytest.mark.unit


def properties(stack: LocalStack, service: str) -> dict[str, str]:
    text = stack.services[service].server_properties()  # type: ignore[attr-defined]
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def three_brokers(home: Path) -> Settings:
    return Settings(
        home=home,
        kafka_brokers=3,
        kafka_bootstrap_servers="127.0.0.1:31001,127.0.0.1:31002,127.0.0.1:31003",
        kafka_controller_port=32000,
    )


def test_three_brokers_default_to_one_address_each() -> None:
    settings = Settings(kafka_brokers=3)

    assert settings.kafka_bootstrap_servers == "127.0.0.1:19092,127.0.0.1:19192,127.0.0.1:19292"
    assert [(node.port, node.controller_port) for node in kafka_nodes(settings)] == [
        (19092, 19094),
        (19192, 19194),
        (19292, 19294),
    ]


@pytest.mark.parametrize(("brokers", "replication"), [(1, (-1, -1)), (2, (2, 1)), (3, (3, 2)), (5, (3, 2))])
def test_topics_are_replicated_three_times_with_two_in_sync_from_three_brokers(
    brokers: int, replication: tuple[int, int]
) -> None:
    assert Settings(kafka_brokers=brokers).kafka_replication == replication


def test_each_broker_is_a_voter_of_one_quorum_on_its_own_ports(tmp_path: Path) -> None:
    stack = LocalStack(three_brokers(tmp_path))

    assert list(stack.services) == ["kafka", "kafka-2", "kafka-3", "wecom-relay", "alertmanager", "prometheus"]
    second = properties(stack, "kafka-2")
    assert second["node.id"] == "2"
    assert second["controller.quorum.voters"] == "1@127.0.0.1:32000,2@127.0.0.1:32100,3@127.0.0.1:32200"
    assert second["listeners"] == "PLAINTEXT://127.0.0.1:31002,CONTROLLER://127.0.0.1:32100"
    assert second["advertised.listeners"] == "PLAINTEXT://127.0.0.1:31002"
    assert second["log.dirs"] == str(tmp_path / "kafka-2" / "data")
    for key in ("default.replication.factor", "offsets.topic.replication.factor"):
        assert second[key] == "3", key
    assert second["min.insync.replicas"] == second["transaction.state.log.min.isr"] == "2"


def test_one_broker_is_configured_as_before(tmp_path: Path) -> None:
    stack = LocalStack(Settings(home=tmp_path, kafka_bootstrap_servers="127.0.0.1:31001"))

    assert [name for name in stack.services if name.startswith("kafka")] == ["kafka"]
    only = properties(stack, "kafka")
    assert only["node.id"] == "1"
    assert only["controller.quorum.voters"] == "1@127.0.0.1:19094"
    assert only["offsets.topic.replication.factor"] == only["min.insync.replicas"] == "1"


def test_too_few_addresses_for_the_brokers_is_named() -> None:
    settings = Settings(kafka_brokers=3, kafka_bootstrap_servers="127.0.0.1:31001")

    with pytest.raises(StackError, match="DEPTPULSE_KAFKA_BROKERS=3 needs one address per broker"):
        kafka_nodes(settings)


def test_status_and_down_find_every_broker_of_the_last_start_without_the_setting(tmp_path: Path) -> None:
    nodes = [KafkaNode(1, 31001, 32000), KafkaNode(2, 31002, 32100), KafkaNode(3, 31003, 32200)]
    (tmp_path / "kafka").mkdir()
    record = {"brokers": 3, "nodes": [node.as_record() for node in nodes]}
    (tmp_path / "kafka" / "cluster.json").write_text(json.dumps(record))

    stack = LocalStack(Settings(home=tmp_path))

    assert [service.address() for name, service in stack.services.items() if name.startswith("kafka")] == [
        "127.0.0.1:31001",
        "127.0.0.1:31002",
        "127.0.0.1:31003",
    ]
    assert stack.down(["kafka"]) == []  # nothing runs; every node's pid file is looked at
    assert properties(stack, "kafka-3")["min.insync.replicas"] == "2"  # as formatted, not as the setting says


def test_storage_formatted_for_another_broker_count_is_refused(tmp_path: Path) -> None:
    (tmp_path / "kafka" / "data").mkdir(parents=True)
    (tmp_path / "kafka" / "data" / "meta.properties").write_text("cluster.id=abc\nnode.id=1\n")

    with pytest.raises(StackError, match="formatted for 1 broker"):
        LocalStack(three_brokers(tmp_path)).up(["kafka"])
