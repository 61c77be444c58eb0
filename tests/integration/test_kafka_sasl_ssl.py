"""The local stack's broker with SASL_SSL: SCRAM-SHA-512 over TLS lets the configured user in, nobody else.

One broker for the module, on free ports in a home of its own (not the session's PLAINTEXT
``kafka_stack``); the last test stops it, checks that nothing is left listening and starts it
again. Each refusal is checked twice: the client gives up within seconds (kafka-python's
``KafkaTimeoutError: Unable to bootstrap``, whatever the cause), and the broker's log (or the
client's) says why, so a broker that is merely down cannot pass for one that refuses.
"""

from __future__ import annotations

import asyncio
import logging
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition as AioTopicPartition
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaTimeoutError
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from deptpulse.kafka_clients import kafka_python_kwargs
from deptpulse.settings import EXAMPLE_DIRECTORY, Settings
from deptpulse.stack import LocalStack, create_topics, port_is_free
from producers.publisher import Publisher
from producers.simulator import simulate
from schemas.directory import load_directory
from schemas.events import event_to_json
from stream_processors.app import create_app, events_clients
from tests.integration.test_stack import deptpulse, processes_mentioning

pytestmark = pytest.mark.integration

USERNAME = "deptpulse"
# MARKER is what the files are searched for. The rest is what the broker's config must escape:
# quotes, a backslash, non-ASCII (one character outside the BMP) and --add-scram's separators.
MARKER = "pw-7f3a9c1e"
PASSWORD = f'{MARKER} "open" \\ sésame=,] \U0001f511'
DIRECTORY = load_directory(EXAMPLE_DIRECTORY)
REFUSAL_TIMEOUT_MS = 3000


@pytest.fixture(scope="module")
def secure_kafka(
    make_stack_settings: Callable[..., Settings], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """A SASL_SSL broker with the events topics; yields its Settings and stops it whatever happens."""
    home = tmp_path_factory.mktemp("secure-stack")
    settings = make_stack_settings(
        home=home,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username=USERNAME,
        kafka_sasl_password=PASSWORD,
        kafka_ssl_cafile=home / "kafka" / "tls" / "ca.crt",
    )
    stack = LocalStack(settings)
    try:
        stack.up(["kafka"])
        create_topics(settings)
        yield settings
    finally:
        stack.down(["kafka"])


def one_event() -> Any:
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    return next(iter(simulate(DIRECTORY, start, timedelta(hours=1), 1.0, seed=8)))


def publish_and_read_back(settings: Settings) -> None:
    """The Publisher sends an event with the settings' credentials; a kafka-python consumer reads it back."""
    event = one_event()
    with Publisher.from_settings(settings, DIRECTORY) as publisher:
        sent = publisher.send(event).get(timeout=30)
    partition = TopicPartition(sent.topic, sent.partition)
    consumer = KafkaConsumer(
        **kafka_python_kwargs(settings), enable_auto_commit=False, consumer_timeout_ms=20_000
    )
    try:
        consumer.assign([partition])
        consumer.seek(partition, sent.offset)
        record = next(iter(consumer))
    finally:
        consumer.close()

    assert record.key == event.partition_key.encode()
    assert record.value == event_to_json(event)


def deptpulse_cli(settings: Settings, *args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    """`deptpulse` with the broker's settings in its environment; ``env`` overrides them (None: unset)."""
    secure = {
        "DEPTPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "DEPTPULSE_KAFKA_SASL_USERNAME": USERNAME,
        "DEPTPULSE_KAFKA_SASL_PASSWORD": PASSWORD,
        "DEPTPULSE_KAFKA_SSL_CAFILE": str(settings.kafka_ssl_cafile),
    }
    return deptpulse(
        settings, *args, **{name: value for name, value in (secure | env).items() if value is not None}
    )


# --- who gets in -----------------------------------------------------------------------------------


def test_the_publisher_and_a_consumer_get_in_with_the_settings_credentials(secure_kafka: Settings) -> None:
    publish_and_read_back(secure_kafka)


def test_the_workers_kafka_clients_get_in(secure_kafka: Settings) -> None:
    """The clients the worker's events agent builds (``events_clients``): its consumer reads back
    what the Publisher sent and what its dead-letter producer sent, and commits in its group."""
    event = one_event()
    with Publisher.from_settings(secure_kafka, DIRECTORY) as publisher:
        published = publisher.send(event).get(timeout=30)

    async def round_trip() -> tuple[list[Any], int | None]:
        consumer, producer = events_clients(secure_kafka, group="sasl-ssl-test", worker_id="1")
        await producer.start()
        await consumer.start()
        try:
            dead = await producer.send_and_wait(secure_kafka.dead_letter_topic, b"dead", key=b"dlq")
            records = []
            for sent in (published, dead):
                partition = AioTopicPartition(sent.topic, sent.partition)
                consumer.assign([partition])
                consumer.seek(partition, sent.offset)
                records.append(await asyncio.wait_for(consumer.getone(), timeout=30))
            await consumer.commit({partition: dead.offset + 1})
            return records, await consumer.committed(partition)
        finally:
            await consumer.stop()
            await producer.stop()

    (event_record, dead_record), committed = asyncio.run(round_trip())

    assert (event_record.key, event_record.value) == (event.partition_key.encode(), event_to_json(event))
    assert (dead_record.key, dead_record.value) == (b"dlq", b"dead")
    assert committed == dead_record.offset + 1


def test_the_worker_apps_faust_credentials_get_in(secure_kafka: Settings) -> None:
    """The ``broker_credentials`` ``create_app`` gives Faust, through Faust's own translation to aiokafka."""
    app = create_app(secure_kafka, worker_id="sasl-ssl-test", registry=CollectorRegistry())
    credentials = app.conf.broker_credentials
    assert isinstance(credentials, faust.SASLCredentials)

    async def round_trip() -> Any:
        producer = AIOKafkaProducer(
            bootstrap_servers=secure_kafka.kafka_bootstrap_servers,
            **credentials_to_aiokafka_auth(credentials),
        )
        await producer.start()
        try:
            return await producer.send_and_wait(secure_kafka.dead_letter_topic, b"faust", key=b"faust")
        finally:
            await producer.stop()

    sent = asyncio.run(round_trip())

    assert sent.topic == secure_kafka.dead_letter_topic and sent.offset >= 0


# --- who is refused --------------------------------------------------------------------------------


def _client(**overrides: Any) -> Callable[[Settings], dict[str, Any]]:
    """Client arguments: the settings' own, with ``overrides`` ("CA": the local CA; None: left out)."""

    def arguments(settings: Settings) -> dict[str, Any]:
        values = kafka_python_kwargs(settings) | {
            key: str(settings.kafka_ssl_cafile) if value == "CA" else value
            for key, value in overrides.items()
        }
        return {key: value for key, value in values.items() if value is not None}

    return arguments


def _controller(settings: Settings) -> dict[str, Any]:
    """TLS with the local CA to the controller port, but without the broker's client certificate."""
    return {
        "bootstrap_servers": [f"127.0.0.1:{settings.kafka_controller_port}"],
        "security_protocol": "SSL",
        "ssl_cafile": str(settings.kafka_ssl_cafile),
    }


WITHOUT_SASL = {"sasl_mechanism": None, "sasl_plain_username": None, "sasl_plain_password": None}
INVALID_CREDENTIALS = "invalid credentials with SASL mechanism SCRAM-SHA-512"
REFUSALS = {
    "PLAINTEXT to the SASL_SSL port": (
        _client(security_protocol="PLAINTEXT", ssl_cafile=None, **WITHOUT_SASL),
        "broker",
        "(SSL handshake failed)",
    ),
    "TLS without SASL": (
        _client(security_protocol="SSL", ssl_cafile="CA", **WITHOUT_SASL),
        "broker",
        "Unexpected Kafka request of type METADATA during SASL handshake",
    ),
    "a wrong password": (_client(sasl_plain_password=PASSWORD + "!"), "broker", INVALID_CREDENTIALS),
    "an unknown user": (_client(sasl_plain_username="mallory"), "broker", INVALID_CREDENTIALS),
    "a client that does not trust the local CA": (
        _client(ssl_cafile=None),  # the system's CAs
        "client",
        "CERTIFICATE_VERIFY_FAILED",
    ),
    "the controller port without the broker's certificate": (
        _controller,
        "broker",
        "listenerType=CONTROLLER, nodeId=1] Failed authentication",
    ),
}


@pytest.mark.parametrize(("client", "logged_by", "reason"), REFUSALS.values(), ids=REFUSALS.keys())
def test_a_client_without_the_right_credentials_is_refused_fast(
    secure_kafka: Settings,
    client: Callable[[Settings], dict[str, Any]],
    logged_by: str,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = LocalStack(secure_kafka).log("kafka")
    logged_before = log.stat().st_size
    started = time.monotonic()

    with caplog.at_level(logging.WARNING), pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        admin = KafkaAdminClient(
            **client(secure_kafka),
            bootstrap_timeout_ms=REFUSAL_TIMEOUT_MS,
            request_timeout_ms=REFUSAL_TIMEOUT_MS,
        )
        admin.list_topics()  # not reached: the constructor gives up first

    assert time.monotonic() - started < 15
    if logged_by == "client":
        assert reason in caplog.text
    else:
        assert_logged_soon(log, logged_before, reason)


def assert_logged_soon(log: Path, offset: int, text: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with log.open("rb") as file:
            file.seek(offset)
            if text.encode() in file.read():
                return
        assert time.monotonic() < deadline, f"{text!r} not in {log} after {timeout} s"
        time.sleep(0.2)


def test_settings_with_sasl_ssl_need_a_user_and_a_password() -> None:
    with pytest.raises(ValidationError, match="SASL_SSL needs DEPTPULSE_KAFKA_SASL_USERNAME"):
        Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username=USERNAME, kafka_sasl_password=None)


# --- where the password is ---------------------------------------------------------------------------


def holds_password(path: Path) -> bool:
    content = path.read_bytes()
    return MARKER.encode() in content or PASSWORD.encode() in content


def test_the_password_is_only_in_the_brokers_0600_config(secure_kafka: Settings) -> None:
    home = secure_kafka.home.resolve()
    status = deptpulse_cli(secure_kafka, "stack", "status")
    pid = LocalStack(secure_kafka).pid("kafka")

    kafka_row = next(line for line in status.stdout.splitlines() if " kafka " in line)
    assert "SASL_SSL" in kafka_row and "yes" in kafka_row and str(pid) in kafka_row
    assert MARKER not in status.stdout + status.stderr
    assert {
        path.relative_to(home) for path in home.rglob("*") if path.is_file() and holds_password(path)
    } == {Path("kafka/server.properties")}
    assert MARKER.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    private = ["kafka/server.properties", "kafka/security.json", "kafka/tls/broker.pem", "kafka/tls/ca.key"]
    assert {name: stat.S_IMODE((home / name).stat().st_mode) for name in private} == dict.fromkeys(
        private, 0o600
    )
    assert stat.S_IMODE((home / "kafka" / "tls").stat().st_mode) == 0o700


# --- stopping and starting again (last: it restarts the module's broker) ----------------------------


def test_down_frees_the_ports_and_up_again_checks_the_credentials(secure_kafka: Settings) -> None:
    ports = (secure_kafka.kafka_port, secure_kafka.kafka_controller_port)
    ca_certificate = Path(str(secure_kafka.kafka_ssl_cafile)).read_bytes()

    down = deptpulse_cli(secure_kafka, "stack", "down")
    assert down.returncode == 0, down.stderr
    assert all(port_is_free("127.0.0.1", port) for port in ports)
    assert processes_mentioning(secure_kafka.home.resolve()) == []

    refusals: dict[str, dict[str, str | None]] = {
        "are not the SCRAM credentials the broker": {"DEPTPULSE_KAFKA_SASL_PASSWORD": "something else"},
        "was formatted for SASL_SSL": {"DEPTPULSE_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"},
        "set DEPTPULSE_KAFKA_SSL_CAFILE=": {"DEPTPULSE_KAFKA_SSL_CAFILE": None},
    }
    for message, env in refusals.items():
        refused = deptpulse_cli(secure_kafka, "stack", "up", "-s", "kafka", **env)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr and "something else" not in refused.stderr
    assert all(port_is_free("127.0.0.1", port) for port in ports)  # refused before starting anything

    up = deptpulse_cli(secure_kafka, "stack", "up", "-s", "kafka")
    assert "kafka: started" in up.stdout and "topics: already there" in up.stdout, up.stderr
    assert MARKER not in up.stdout + up.stderr
    assert Path(str(secure_kafka.kafka_ssl_cafile)).read_bytes() == ca_certificate  # made once
    publish_and_read_back(secure_kafka)
