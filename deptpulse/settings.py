"""deptpulse settings: the only module that reads the environment.

Every value comes from a ``DEPTPULSE_``-prefixed variable (or its default, which works with
nothing configured: the local stack on loopback and embedded ClickHouse through chdb).
Everything else in the project takes these values as arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_DIRECTORY = REPO_ROOT / "deploy" / "directory" / "example-org.yaml"


class Settings(BaseSettings):
    """Configuration of every deptpulse process. Frozen: pass it around, never mutate it."""

    # hide_input_in_errors: a rejected value may hold a password (DEPTPULSE_CLICKHOUSE_URL).
    model_config = SettingsConfigDict(
        env_prefix="DEPTPULSE_", frozen=True, extra="ignore", hide_input_in_errors=True
    )

    # Where the local stack keeps pid files, logs and data; also chdb's default home.
    home: Path = Field(default=Path(".deptpulse"), description="State directory of the local stack.")

    # Kafka
    kafka_bootstrap_servers: str = Field(default="127.0.0.1:19092", description="Kafka bootstrap servers.")
    kafka_controller_port: int = Field(
        default=19094, description="KRaft controller port of the local broker."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_home: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("DEPTPULSE_KAFKA_HOME", "KAFKA_HOME"),
        description="An unpacked Apache Kafka distribution to use instead of the Maven-resolved jars.",
    )
    kafka_jar_cache: Path = Field(
        default=Path.home() / ".cache" / "deptpulse" / "kafka",
        description="Per-user cache of the Kafka jars resolved from Maven Central.",
    )
    events_topic: str = "deptpulse.events"
    dead_letter_topic: str = "deptpulse.events.dlq"
    events_partitions: int = Field(default=6, ge=1)

    # ClickHouse: embedded chdb unless an http(s) URL is given.
    clickhouse_url: SecretStr | None = Field(
        default=None,
        description="http(s)://user:pass@host:port/db of a ClickHouse server; unset = embedded chdb.",
    )
    clickhouse_path: Path | None = Field(
        default=None, description="chdb data path; default <home>/clickhouse."
    )
    clickhouse_database: str = "deptpulse"

    # The department directory (departments, calendars, SLAs, mappings).
    directory_path: Path = Field(default=EXAMPLE_DIRECTORY, description="The department directory YAML file.")

    # Local services, all on loopback by default.
    bind_host: str = Field(default="127.0.0.1", description="Address every local server binds to.")
    prometheus_port: int = 19090
    alertmanager_port: int = 19093
    worker_port: int = Field(default=16066, description="Worker web server: metrics and the read API.")
    gateway_port: int = 18080

    # The ingestion gateway (producers/gateway.py).
    gateway_integrations_path: Path = Field(
        default=REPO_ROOT / "deploy" / "gateway" / "integrations.example.yaml",
        description="The gateway's integrations YAML: names, allowed sources, credentials, rate limits.",
    )
    gateway_max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest request body.")
    gateway_max_batch: int = Field(default=500, ge=1, description="Most events in one POST /v1/events.")
    gateway_publish_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long a request waits for Kafka's acks before a 503."
    )

    @field_validator("clickhouse_url")
    @classmethod
    def _http_only(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and urlsplit(value.get_secret_value()).scheme not in ("http", "https"):
            raise ValueError("DEPTPULSE_CLICKHOUSE_URL must be an http:// or https:// URL")
        return value

    @property
    def kafka_port(self) -> int:
        """Port of the first bootstrap server (the local broker's listener)."""
        return int(self.kafka_bootstrap_servers.split(",")[0].rsplit(":", 1)[1])

    @property
    def chdb_path(self) -> Path:
        return (self.clickhouse_path or self.home / "clickhouse").resolve()

    def clickhouse_client_kwargs(self) -> dict[str, Any]:
        """Arguments for ``clickhouse_connect.get_client``: a chdb DSN or a server DSN."""
        if self.clickhouse_url is None:
            return {"dsn": f"chdb://{self.chdb_path}"}
        return {"dsn": self.clickhouse_url.get_secret_value()}

    def kafka_client_kwargs(self) -> dict[str, Any]:
        """Connection arguments shared by every kafka-python client."""
        kwargs: dict[str, Any] = {"bootstrap_servers": self.kafka_bootstrap_servers.split(",")}
        if self.kafka_security_protocol == "SASL_SSL":
            kwargs.update(
                security_protocol="SASL_SSL",
                sasl_mechanism="SCRAM-SHA-512",
                sasl_plain_username=self.kafka_sasl_username,
                sasl_plain_password=(
                    self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
                ),
                ssl_cafile=str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None,
            )
        return kwargs

    def masked_dump(self) -> dict[str, Any]:
        """Settings for logs: secrets stay masked (SecretStr prints as '**********')."""
        return {key: (str(value) if isinstance(value, SecretStr) else value) for key, value in self}


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment; explicit overrides win (used by tests and the CLI)."""
    return Settings(**overrides)
