"""deptpulse.settings: where values come from, how secrets stay hidden, which ClickHouse is used."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from deptpulse.kafka_clients import kafka_python_kwargs
from deptpulse.settings import Settings

pytestmark = pytest.mark.unit

SECRET = "hunter2-secret"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the variables they set, not the developer's DEPTPULSE_* or KAFKA_HOME."""
    for name in [*(key for key in os.environ if key.startswith("DEPTPULSE_")), "KAFKA_HOME"]:
        monkeypatch.delenv(name, raising=False)


def test_values_come_from_prefixed_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPTPULSE_KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9093,kafka-2:9093")
    monkeypatch.setenv("DEPTPULSE_EVENTS_PARTITIONS", "12")
    monkeypatch.setenv("EVENTS_PARTITIONS", "99")  # unprefixed: not ours

    settings = Settings()

    assert kafka_python_kwargs(settings)["bootstrap_servers"] == ["kafka-1:9093", "kafka-2:9093"]
    assert settings.kafka_port == 9093
    assert settings.events_partitions == 12


@pytest.mark.parametrize("variable", ["KAFKA_HOME", "DEPTPULSE_KAFKA_HOME"])
def test_kafka_home_is_read_with_or_without_prefix(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "/opt/kafka")

    assert Settings().kafka_home == Path("/opt/kafka")


def test_explicit_values_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPTPULSE_PROMETHEUS_PORT", "1111")

    assert Settings(prometheus_port=2222).prometheus_port == 2222


def test_settings_are_frozen() -> None:
    settings = Settings()

    with pytest.raises(ValidationError):
        settings.prometheus_port = 1  # type: ignore[misc]


def test_secrets_are_masked_in_repr_and_masked_dump() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="deptpulse",
        kafka_sasl_password=SECRET,
        clickhouse_url=f"https://deptpulse:{SECRET}@clickhouse.example:8443/deptpulse",
    )

    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.masked_dump())
    assert settings.masked_dump()["kafka_sasl_password"] == "**********"
    # ...while the clients still get the real values.
    assert kafka_python_kwargs(settings)["sasl_plain_password"] == SECRET
    assert SECRET in settings.clickhouse_client_kwargs()["dsn"]


def test_embedded_chdb_by_default_under_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)

    assert settings.clickhouse_client_kwargs() == {"dsn": f"chdb://{tmp_path.resolve() / 'clickhouse'}"}


def test_chdb_path_can_be_set(tmp_path: Path) -> None:
    settings = Settings(clickhouse_path=tmp_path / "ch")

    assert settings.clickhouse_client_kwargs() == {"dsn": f"chdb://{tmp_path / 'ch'}"}


def test_a_server_url_selects_the_http_client() -> None:
    url = "http://deptpulse:pw@127.0.0.1:8123/deptpulse"

    assert Settings(clickhouse_url=url).clickhouse_client_kwargs() == {"dsn": url}


@pytest.mark.parametrize(
    "url", [f"ftp://deptpulse:{SECRET}@host/db", "chdb:///tmp/x", "clickhouse.example:8123"]
)
def test_a_url_that_is_not_http_is_rejected_without_echoing_it(url: str) -> None:
    with pytest.raises(ValidationError, match="must be an http:// or https:// URL") as error:
        Settings(clickhouse_url=url)

    assert SECRET not in str(error.value)
