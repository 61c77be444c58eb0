"""`deptpulse stack` and LocalStack against the real Kafka, Prometheus and Alertmanager."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from deptpulse.kafka_clients import kafka_python_kwargs
from deptpulse.settings import Settings
from deptpulse.stack import LocalStack, port_is_free

pytestmark = pytest.mark.integration


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `deptpulse` process using ``settings``; the caller's DEPTPULSE_* are dropped."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DEPTPULSE_")}
    env.pop("KAFKA_HOME", None)
    env.update(
        DEPTPULSE_HOME=str(settings.home),
        DEPTPULSE_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        DEPTPULSE_KAFKA_CONTROLLER_PORT=str(settings.kafka_controller_port),
        DEPTPULSE_PROMETHEUS_PORT=str(settings.prometheus_port),
        DEPTPULSE_ALERTMANAGER_PORT=str(settings.alertmanager_port),
        DEPTPULSE_WORKER_PORT=str(settings.worker_port),
        DEPTPULSE_GATEWAY_PORT=str(settings.gateway_port),
    )
    return env | extra


def deptpulse(settings: Settings, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deptpulse.cli", *args],
        env=cli_env(settings, **extra_env),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def kcat(settings: Settings, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["kcat", "-b", settings.kafka_bootstrap_servers, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)["data"]


def processes_mentioning(home: Path) -> list[str]:
    """Command lines of live processes that mention ``home`` (every stack process does)."""
    command_lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command_line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # exited meanwhile
            continue
        if f"{home}/" in command_line:
            command_lines.append(command_line)
    return command_lines


def accepts_connections(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def private_settings(make_stack_settings: Callable[..., Settings]) -> Iterator[Settings]:
    """Settings of a stack of this test's own (free ports, fresh home), stopped afterwards whatever happens."""
    settings = make_stack_settings()
    yield settings
    LocalStack(settings).down()


def assert_user_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


# --- Kafka ------------------------------------------------------------------------------------------


def test_kcat_lists_the_broker_and_the_topics(kafka_stack: Settings) -> None:
    metadata = kcat(kafka_stack, "-L")

    assert f"broker 1 at 127.0.0.1:{kafka_stack.kafka_port}" in metadata
    assert f'topic "{kafka_stack.events_topic}" with {kafka_stack.events_partitions} partitions' in metadata
    assert f'topic "{kafka_stack.dead_letter_topic}" with 1 partitions' in metadata


def test_up_is_idempotent_and_down_up_keeps_messages_and_offsets(private_settings: Settings) -> None:
    settings, topic = private_settings, private_settings.events_topic
    first_up = deptpulse(settings, "stack", "up", "-s", "kafka")
    assert "kafka: started" in first_up.stdout, first_up.stderr
    assert_up_is_idempotent(settings)
    kcat(settings, "-P", "-t", topic, "-k", "ticket-1", stdin="survivor\n")
    committed = consume_one_and_commit(settings, group="survivors")

    down = deptpulse(settings, "stack", "down")
    assert down.returncode == 0, down.stderr
    assert not any(
        accepts_connections(port) for port in (settings.kafka_port, settings.kafka_controller_port)
    )
    assert processes_mentioning(settings.home) == []

    up_again = deptpulse(settings, "stack", "up", "-s", "kafka")
    assert "kafka: started" in up_again.stdout
    assert "topics: already there" in up_again.stdout
    assert kcat(settings, "-C", "-t", topic, "-o", "beginning", "-e", "-q") == "survivor\n"
    with KafkaAdminClient(**kafka_python_kwargs(settings)) as admin:
        assert admin.list_group_offsets("survivors")["survivors"] == committed


def consume_one_and_commit(settings: Settings, group: str) -> dict[TopicPartition, Any]:
    consumer = KafkaConsumer(
        settings.events_topic,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=20_000,
        **kafka_python_kwargs(settings),
    )
    try:
        message = next(iter(consumer))
        consumer.commit()
    finally:
        consumer.close()
    with KafkaAdminClient(**kafka_python_kwargs(settings)) as admin:
        committed: dict[TopicPartition, Any] = admin.list_group_offsets(group)[group]
    assert committed[TopicPartition(message.topic, message.partition)].offset == message.offset + 1
    return committed


def assert_up_is_idempotent(settings: Settings) -> None:
    again = deptpulse(settings, "stack", "up", "-s", "kafka")
    status = deptpulse(settings, "stack", "status")

    pid = LocalStack(settings).pid("kafka")
    assert f"kafka: already running (pid {pid})" in again.stdout
    kafka_row = next(line for line in status.stdout.splitlines() if " kafka " in line)
    assert str(pid) in kafka_row and "yes" in kafka_row


# --- Prometheus and Alertmanager ---------------------------------------------------------------------


def test_prometheus_scrapes_itself_and_alertmanager_and_discovers_it(prometheus_stack: Settings) -> None:
    prometheus = f"http://127.0.0.1:{prometheus_stack.prometheus_port}"
    alertmanager = f"127.0.0.1:{prometheus_stack.alertmanager_port}"

    targets = get_json(f"{prometheus}/api/v1/targets")["activeTargets"]
    health = {target["labels"]["job"]: target["health"] for target in targets}
    discovered = get_json(f"{prometheus}/api/v1/alertmanagers")["activeAlertmanagers"]
    up = get_json(f"{prometheus}/api/v1/query?query=up")["result"]

    assert health["prometheus"] == health["alertmanager"] == "up"
    assert {"deptpulse-worker", "deptpulse-gateway"} <= health.keys()  # scraped, down until started
    assert [entry["url"] for entry in discovered] == [f"http://{alertmanager}/api/v2/alerts"]
    assert {sample["metric"]["job"]: sample["value"][1] for sample in up}["prometheus"] == "1"


def test_status_lists_every_service(kafka_stack: Settings, prometheus_stack: Settings) -> None:
    rows = {row.name: row for row in LocalStack(kafka_stack).status()}

    assert [rows[name].answering for name in ("kafka", "alertmanager", "prometheus")] == [True] * 3
    assert all(rows[name].pid for name in ("kafka", "alertmanager", "prometheus"))
    assert rows["clickhouse"].address == f"chdb {kafka_stack.chdb_path}"


# --- bad set-up input: one clear line, exit code 2 ---------------------------------------------------


def test_a_port_taken_by_another_process_is_named(private_settings: Settings) -> None:
    with socket.create_server(("127.0.0.1", private_settings.kafka_port)):
        result = deptpulse(private_settings, "stack", "up")

    assert_user_error(
        result,
        f"port {private_settings.kafka_port} (kafka) is already in use",
        "DEPTPULSE_KAFKA_BOOTSTRAP_SERVERS",
    )
    assert not any(Path(private_settings.home, "run").glob("*.pid"))  # nothing was started


def test_kafka_home_pointing_nowhere(private_settings: Settings, tmp_path: Path) -> None:
    result = deptpulse(private_settings, "stack", "up", "-s", "kafka", KAFKA_HOME=str(tmp_path / "nowhere"))

    assert_user_error(result, "KAFKA_HOME=", "is not an unpacked Kafka distribution")


def test_java_missing_from_path(private_settings: Settings, tmp_path: Path) -> None:
    result = deptpulse(private_settings, "stack", "up", "-s", "kafka", PATH=str(tmp_path))

    assert_user_error(result, "java not found on PATH")


def test_two_settings_on_one_port(private_settings: Settings) -> None:
    port = str(private_settings.kafka_port)
    result = deptpulse(private_settings, "stack", "up", "-s", "kafka", DEPTPULSE_KAFKA_CONTROLLER_PORT=port)

    assert_user_error(
        result, "DEPTPULSE_KAFKA_BOOTSTRAP_SERVERS and DEPTPULSE_KAFKA_CONTROLLER_PORT both use"
    )


def test_kafka_failing_to_start_shows_its_log(private_settings: Settings) -> None:
    # Storage formatted for another node id: the broker exits at once.
    data = Path(private_settings.home, "kafka", "data")
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=7\n")

    result = deptpulse(private_settings, "stack", "up", "-s", "kafka")

    assert_user_error(
        result, "kafka did not start: exited during start-up", "last lines of", "Stored node id 7"
    )
    assert LocalStack(private_settings).pid("kafka") is None
    assert port_is_free("127.0.0.1", private_settings.kafka_port)
