"""Real services for integration tests, started lazily and once per session by deptpulse's own launcher.

Every service runs on free loopback ports with its own home directory, so a developer's stack on the
default ports is never touched. A service that cannot start fails the tests that need it (an error,
never a skip): a missing broker is a broken set-up, not an optional feature.
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from deptpulse.settings import Settings
from deptpulse.stack import LocalStack, create_topics, port_is_free

StackSettingsFactory = Callable[..., Settings]


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that nothing listens on right now."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:  # all bound at once, so the kernel hands out distinct ports
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port_series(count: int, step: int, taken: Iterable[int] = ()) -> int:
    """A port ``p`` with ``p``, ``p + step``, ... (``count`` of them) free now and not in ``taken``."""
    for _ in range(200):
        (first,) = free_ports(1)
        series = [first + step * index for index in range(count)]
        if series[-1] < 65536 and not set(taken) & set(series) and all(port_is_free("127.0.0.1", p) for p in series):
            return first
    raise RuntimeError(f"no {count} free ports {step} apart")


@pytest.fixture(scope="session")
def make_stack_settings(tmp_path_factory: pytest.TempPathFactory) -> StackSettingsFactory:
    """A factory: Settings with a fresh home directory and free ports for every local service
    (every broker's, with ``kafka_brokers=3``: controller ports 100 apart, as the stack places them)."""

    def make(**overrides: Any) -> Settings:
        brokers = int(overrides.get("kafka_brokers", 1))
        ports = free_ports(6 + brokers)
        prometheus, alertmanager, worker, gateway, controller, wecom_relay = ports[:6]
        kafka = ports[6:]
        if brokers > 1:
            controller = free_port_series(brokers, 100, taken=set(ports))
        values: dict[str, Any] = {
            "home": tmp_path_factory.mktemp("stack"),
            "kafka_bootstrap_servers": ",".join(f"127.0.0.1:{port}" for port in kafka),
            "kafka_controller_port": controller,
            "prometheus_port": prometheus,
            "alertmanager_port": alertmanager,
            "worker_port": worker,
            "gateway_port": gateway,
            "wecom_relay_port": wecom_relay,
            "clickhouse_url": None,
        }
        return Settings(**(values | overrides))

    return make


@pytest.fixture(scope="session")
def stack_settings(make_stack_settings: StackSettingsFactory) -> Settings:
    """The settings shared by the session's services (``kafka_stack``, ``prometheus_stack``)."""
    return make_stack_settings()


@pytest.fixture(scope="session")
def kafka_stack(stack_settings: Settings) -> Iterator[Settings]:
    """A real Kafka broker (KRaft) with the events and dead-letter topics; yields its Settings."""
    stack = LocalStack(stack_settings)
    try:
        stack.up(["kafka"])
        create_topics(stack_settings)
        yield stack_settings
    finally:
        stack.down(["kafka"])


@pytest.fixture(scope="session")
def prometheus_stack(stack_settings: Settings) -> Iterator[Settings]:
    """Prometheus (self-scrape up, Alertmanager discovered) and Alertmanager; yields their Settings."""
    stack = LocalStack(stack_settings)
    try:
        stack.up(["alertmanager", "prometheus"])
        yield stack_settings
    finally:
        stack.down(["alertmanager", "prometheus"])


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The single chdb data path of this test process.

    chdb opens one path per process: once a client is open on one path, opening a client on
    another fails ("EmbeddedServer already initialized with path ..."), and a second process
    cannot open a path this one holds. So every test in the process shares this path and gets a
    database of its own (as clickhouse-connect's own integration tests do); a subprocess that
    needs chdb (a worker started by a test) must use a path of its own.
    """
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def clickhouse_settings(chdb_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings pointing at the session's chdb path and a database unique to this test."""
    test_name = re.sub(r"\W", "_", request.node.name)[:40]
    database = f"test_{test_name}_{uuid.uuid4().hex[:8]}"
    return Settings(clickhouse_url=None, clickhouse_path=chdb_path, clickhouse_database=database)


@pytest.fixture
def clickhouse_client(clickhouse_settings: Settings) -> Iterator[Client]:
    """A clickhouse-connect client on chdb whose current database is created for this test and dropped after.

    A fresh chdb path per test is not possible (see ``chdb_path``), so isolation is per database.
    """
    database = clickhouse_settings.clickhouse_database
    client = clickhouse_connect.get_client(**clickhouse_settings.clickhouse_client_kwargs())
    client.command(f"CREATE DATABASE {database}")
    client.database = database
    try:
        yield client
    finally:
        client.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        client.close()
