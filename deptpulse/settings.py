"""deptpulse settings: the only module that reads the environment.

Every value comes from a ``DEPTPULSE_``-prefixed variable (or its default, which works with
nothing configured: the local stack on loopback and embedded ClickHouse through chdb).
Everything else in the project takes these values as arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, Literal, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The checkout; only for files a wheel does not ship (docs/configuration.md).
REPO_ROOT = Path(__file__).resolve().parents[1]
# deploy/ ships inside the package: deptpulse/deploy links to the checkout's deploy/ and a wheel
# holds a copy (pyproject.toml's package data), so an installed package finds it too.
DEPLOY_DIR = (Path(__file__).parent / "deploy").resolve()
EXAMPLE_DIRECTORY = DEPLOY_DIR / "directory" / "example-org.yaml"
# The one SASL mechanism deptpulse uses with SASL_SSL (the local stack's broker enables only it).
KAFKA_SASL_MECHANISM: Final = "SCRAM-SHA-512"
LOCAL_KAFKA_PORT: Final = 19092  # the local stack's first broker


class Settings(BaseSettings):
    """Configuration of every deptpulse process. Frozen: pass it around, never mutate it."""

    # hide_input_in_errors: a rejected value may hold a password (DEPTPULSE_CLICKHOUSE_URL).
    model_config = SettingsConfigDict(
        env_prefix="DEPTPULSE_", frozen=True, extra="ignore", hide_input_in_errors=True
    )

    # Where the local stack keeps pid files, logs and data; also chdb's default home.
    home: Path = Field(default=Path(".deptpulse"), description="State directory of the local stack.")

    # Kafka
    kafka_bootstrap_servers: str = Field(
        default=f"127.0.0.1:{LOCAL_KAFKA_PORT}", description="Kafka bootstrap servers (comma-separated)."
    )
    kafka_controller_port: int = Field(
        default=19094,
        description="KRaft controller port of the local broker; broker i of several uses this + 100·(i − 1).",
    )
    kafka_brokers: int = Field(
        default=1,
        ge=1,
        le=9,
        description="Brokers of the Kafka cluster. The local stack starts this many (each a KRaft broker and "
        "controller; broker i at the i-th address of DEPTPULSE_KAFKA_BOOTSTRAP_SERVERS, which defaults to "
        "ports 19092, 19192, 19292, ...). From 3, deptpulse creates its topics with replication factor 3 and "
        "min.insync.replicas=2; with fewer, the replication factor is the broker count.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description="PLAINTEXT, or SASL_SSL: SCRAM-SHA-512 over TLS (the local stack too; docs/security.md).",
    )
    kafka_sasl_username: str | None = Field(default=None, description="SCRAM user; required with SASL_SSL.")
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="SCRAM password; required with SASL_SSL."
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None,
        description="CA certificate(s) the brokers' TLS certificates are checked against; unset = the "
        "system's CAs. The local stack's CA: <home>/kafka/tls/ca.crt.",
    )
    kafka_home: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("DEPTPULSE_KAFKA_HOME", "KAFKA_HOME"),
        description="An unpacked Apache Kafka distribution to use instead of the Maven-resolved jars.",
    )
    kafka_jar_cache: Path = Field(
        default=Path.home() / ".cache" / "deptpulse" / "kafka",
        description="Per-user cache of the Kafka jars resolved from Maven Central.",
    )
    events_topic: str = Field(default="deptpulse.events", description="Kafka topic of the canonical events.")
    dead_letter_topic: str = Field(
        default="deptpulse.events.dlq", description="Kafka topic of the events the worker will not count."
    )
    events_partitions: int = Field(
        default=6,
        ge=1,
        description="Partitions of the events topic when deptpulse creates it: the most workers that can "
        "share the load.",
    )

    # ClickHouse: embedded chdb unless an http(s) URL is given.
    clickhouse_url: SecretStr | None = Field(
        default=None,
        description="http(s)://user:pass@host:port/db of a ClickHouse server; unset = embedded chdb.",
    )
    clickhouse_path: Path | None = Field(
        default=None, description="chdb data path; default <home>/clickhouse."
    )
    clickhouse_database: str = Field(
        default="deptpulse", description="ClickHouse database; created when missing."
    )

    # The department directory (departments, calendars, SLAs, mappings).
    directory_path: Path = Field(default=EXAMPLE_DIRECTORY, description="The department directory YAML file.")

    # Local services, all on loopback by default.
    bind_host: str = Field(default="127.0.0.1", description="Address every local server binds to.")
    prometheus_port: int = Field(default=19090, description="Port of the local stack's Prometheus.")
    alertmanager_port: int = Field(default=19093, description="Port of the local stack's Alertmanager.")
    worker_port: int = Field(default=16066, description="Worker web server: metrics and the read API.")
    worker_batch_max_events: int = Field(
        default=10_000, ge=1, le=100_000, description="The worker writes a batch to ClickHouse at this many events ..."
    )
    worker_batch_wait_seconds: float = Field(
        default=0.25, gt=0, le=60, description="... or this long after its first event, whichever comes first."
    )
    gateway_port: int = Field(default=18080, description="Port of the ingestion gateway (deptpulse gateway).")
    wecom_relay_port: int = Field(
        default=19099, description="Port of the WeCom group-robot relay (deptpulse wecom-relay)."
    )
    wecom_relay_attempts: int = Field(
        default=4, ge=1, le=10, description="Posts to a WeCom group robot before a message is a dead letter ..."
    )
    wecom_relay_deadline_seconds: float = Field(
        default=8.0,
        gt=0,
        le=60,
        description="... or the time it may take, whichever comes first; keep it under Alertmanager's "
        "notification timeout (10 s at least), or Alertmanager sends the message again.",
    )

    # The ingestion gateway (producers/gateway.py).
    gateway_integrations_path: Path = Field(
        default=DEPLOY_DIR / "gateway" / "integrations.example.yaml",
        description="The gateway's integrations YAML: names, allowed sources, credentials, rate limits.",
    )
    gateway_max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest request body.")
    gateway_max_batch: int = Field(default=500, ge=1, description="Most events in one POST /v1/events.")
    gateway_publish_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long a request waits for Kafka's acks before a 503."
    )

    # Who reads the worker's read API and its scorecard page (stream_processors/access/, docs/security.md).
    read_api_heads_path: Path | None = Field(
        default=None,
        description="The heads file: per department, the variables holding its head's token and link "
        "secret. Unset and the worker on loopback: anyone on this host reads everything (the local "
        "stack); unset elsewhere: every request is refused (401).",
    )
    read_api_token: SecretStr | None = Field(
        default=None,
        description="Bearer token that deptpulse report, comments, themes, surveys and actions send to the "
        "worker's read API: a head's token from the heads file. Unset = none sent.",
    )
    read_api_trusted_user_header: str | None = Field(
        default=None,
        description="Header a reverse proxy sets to the signed-in user (e.g. X-Forwarded-User), mapped to a "
        "head by the heads file's proxy_users. Unset = ignored. Only behind a proxy that sets it and "
        "strips it from clients' requests.",
    )

    # What internal customers say (deptpulse comments / themes, the scorecard's --with-comments).
    comments_min_respondents: int = Field(
        default=5,
        ge=1,
        description="No comment, quote or theme is shown for a selection with fewer distinct respondents.",
    )
    themes_min_comments: int = Field(
        default=5, ge=1, description="A theme needs at least this many distinct comments mentioning it."
    )

    # Did an improvement action work? (deptpulse actions list, the scorecard's actions table)
    action_window_days: int = Field(
        default=28,
        ge=1,
        le=366,
        description="Days compared on each side of an action: before its start, and after it settled.",
    )
    action_settling_days: int = Field(
        default=7,
        ge=0,
        le=366,
        description="Days after an action's start left out of the comparison while the change settles in.",
    )

    # Mail: one relay for Alertmanager's alert mails (`deptpulse rules generate` writes these into its
    # configuration) and for the weekly digest (`deptpulse digest` sends through it).
    smtp_smarthost: str = Field(
        default="127.0.0.1:2525",
        pattern=r"^\S+:\d{1,5}$",
        description="host:port of the mail relay; the default is the local mail sink.",
    )
    smtp_from: str = Field(
        default="deptpulse@example.com", description="Sender address of alert and digest mails."
    )
    smtp_hello: str = Field(default="localhost", description="Name this host gives the relay (EHLO).")
    smtp_require_tls: bool = Field(
        default=False, description="STARTTLS to the relay, refusing to send without it."
    )
    smtp_auth_username: str | None = Field(
        default=None, description="User name at the relay; unset = no login."
    )
    smtp_auth_password: SecretStr | None = Field(
        default=None,
        description="Password at the relay, for `deptpulse digest`; unset = the digest reads "
        "DEPTPULSE_SMTP_AUTH_PASSWORD_FILE.",
    )
    smtp_auth_password_file: Path | None = Field(
        default=None,
        description="File holding the relay password: named in Alertmanager's configuration (never copied "
        "into it), read by `deptpulse digest` when DEPTPULSE_SMTP_AUTH_PASSWORD is unset.",
    )
    # The weekly digest (deptpulse digest).
    public_url: str | None = Field(
        default=None,
        description="Base URL of the read API as department heads reach it; the digest links to "
        "<base>/scorecard/<department>. Unset = the worker on loopback.",
    )
    alertmanager_url: str | None = Field(
        default=None,
        description="Alertmanager whose active alerts the digest lists; unset = the local stack's, "
        "http://127.0.0.1:<DEPTPULSE_ALERTMANAGER_PORT>.",
    )

    @field_validator("clickhouse_url")
    @classmethod
    def _http_only(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and urlsplit(value.get_secret_value()).scheme not in ("http", "https"):
            raise ValueError("DEPTPULSE_CLICKHOUSE_URL must be an http:// or https:// URL")
        return value

    @model_validator(mode="before")
    @classmethod
    def _one_address_per_local_broker(cls, data: Any) -> Any:
        """Several brokers and no bootstrap servers given: the local stack's addresses, one per broker."""
        if not isinstance(data, dict) or "kafka_bootstrap_servers" in data:
            return data
        try:
            brokers = int(data.get("kafka_brokers", 1))
        except (TypeError, ValueError):
            return data  # the field's own validation reports it
        if brokers <= 1:
            return data
        addresses = [f"127.0.0.1:{LOCAL_KAFKA_PORT + 100 * index}" for index in range(brokers)]
        return data | {"kafka_bootstrap_servers": ",".join(addresses)}

    @model_validator(mode="after")
    def _sasl_credentials_with_sasl_ssl(self) -> Settings:
        if self.kafka_security_protocol == "SASL_SSL" and not (
            self.kafka_sasl_username
            and self.kafka_sasl_password
            and self.kafka_sasl_password.get_secret_value()
        ):
            raise ValueError(
                "DEPTPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs DEPTPULSE_KAFKA_SASL_USERNAME and "
                "DEPTPULSE_KAFKA_SASL_PASSWORD"
            )
        return self

    @property
    def kafka_port(self) -> int:
        """Port of the first bootstrap server (the local broker's listener)."""
        return int(self.kafka_bootstrap_servers.split(",")[0].rsplit(":", 1)[1])

    @property
    def kafka_replication(self) -> tuple[int, int]:
        """(replication factor, min.insync.replicas) of the topics deptpulse creates."""
        return kafka_replication(self.kafka_brokers)

    @property
    def wecom_dead_letters_path(self) -> Path:
        """Where the WeCom relay appends the messages it could not deliver (JSON lines)."""
        return self.home / "wecom-relay" / "dead-letters.jsonl"

    @property
    def chdb_path(self) -> Path:
        return (self.clickhouse_path or self.home / "clickhouse").resolve()

    def clickhouse_client_kwargs(self) -> dict[str, Any]:
        """Arguments for ``clickhouse_connect.get_client``: a chdb DSN or a server DSN."""
        if self.clickhouse_url is None:
            return {"dsn": f"chdb://{self.chdb_path}"}
        return {"dsn": self.clickhouse_url.get_secret_value()}

    def alertmanager_smtp_options(self) -> dict[str, Any]:
        """The SMTP fields of Alertmanager's generated configuration (``AlertmanagerOptions``)."""
        return {
            "smtp_smarthost": self.smtp_smarthost,
            "smtp_from": self.smtp_from,
            "smtp_hello": self.smtp_hello,
            "smtp_require_tls": self.smtp_require_tls,
            "smtp_auth_username": self.smtp_auth_username,
            "smtp_auth_password_file": (
                str(self.smtp_auth_password_file) if self.smtp_auth_password_file else None
            ),
        }

    def masked_dump(self) -> dict[str, Any]:
        """Settings for logs: secrets stay masked (SecretStr prints as '**********')."""
        return {key: (str(value) if isinstance(value, SecretStr) else value) for key, value in self}


def kafka_replication(brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) for a cluster of ``brokers``.

    (-1, -1) for one broker: the broker's defaults (1 and 1 locally). From three brokers an
    acknowledged (acks=all) event is on two of them and sends go on with one broker down.
    """
    if brokers == 1:
        return -1, -1
    replication = min(brokers, 3)
    return replication, 2 if replication >= 3 else 1


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment; explicit overrides win (used by tests and the CLI)."""
    return Settings(**overrides)


# --- the configuration reference: docs/configuration.md, generated from the model above ----------

CONFIGURATION_REFERENCE = REPO_ROOT / "docs" / "configuration.md"
_TYPE_NAMES: Final = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}
_BOUNDS: Final = (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"))


def reference_markdown() -> str:
    """docs/configuration.md: every ``DEPTPULSE_`` variable with its type, default and description.

    Defaults are shown as a reader's machine would have them: paths under the repository relative
    to it, paths under the home directory with ``~``.
    """
    rows = [
        "| variable | type | default | description |",
        "| --- | --- | --- | --- |",
    ]
    secrets = []
    for name, field in Settings.model_fields.items():
        variables = _variables(name, field.validation_alias)
        secret = _is_secret(field.annotation)
        if secret:
            secrets.append(variables[0])
        rows.append(
            "| {} | {} | {} | {} |".format(
                "<br>".join(f"`{variable}`" for variable in variables),
                _type_text(field.annotation, field.metadata) + (", **secret**" if secret else ""),
                _default_text(field.default),
                _cell(field.description or ""),
            )
        )
    return "\n".join(
        [
            "<!-- Generated by `deptpulse config reference` from deptpulse/settings.py. Do not edit by hand:",
            "     change the Settings model and run `deptpulse config reference`; `--check` fails while this",
            "     file differs. -->",
            "# Configuration reference",
            "",
            "Every deptpulse process reads its configuration from environment variables prefixed",
            "`DEPTPULSE_` (names are not case-sensitive) and from nothing else; `deptpulse/settings.py` is",
            "the only module that reads them. Every variable has a default that works with nothing",
            "configured: the local stack on loopback and embedded ClickHouse (chdb). A value that does not",
            "parse stops every command with exit code 2 and the name of the setting, never its value.",
            "",
            *rows,
            "",
            "## Secrets",
            "",
            "These hold secrets: " + ", ".join(f"`{variable}`" for variable in secrets) + ". They are",
            "`SecretStr` values: printed as `**********` (also in `Settings.masked_dump()`, the form for",
            "logs) and left out of validation errors. Pass them from a secret store through the",
            "environment; never put them in a file under version control.",
            "",
            "The gateway's credentials are not settings: the integrations file",
            "(`DEPTPULSE_GATEWAY_INTEGRATIONS_PATH`) names the variable that holds each one (`token_env`,",
            "`secret_env`, e.g. `DEPTPULSE_GW_JIRA_SECRET`), and `deptpulse gateway` refuses to start while",
            "one of them is unset or shorter than 16 characters (see docs/integrations.md).",
            "",
        ]
    )


def _variables(name: str, alias: object) -> list[str]:
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [f"DEPTPULSE_{name.upper()}"]


def _is_secret(annotation: object) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


def _type_text(annotation: object, metadata: list[Any]) -> str:
    if get_origin(annotation) is Literal:
        text = " \\| ".join(f"`{value}`" for value in get_args(annotation))
    else:
        kinds = [kind for kind in (get_args(annotation) or (annotation,)) if kind is not type(None)]
        text = " or ".join(_TYPE_NAMES.get(kind, "string") for kind in kinds)
    bounds = [
        f"{symbol} {getattr(constraint, attribute)}"
        for constraint in metadata
        for attribute, symbol in _BOUNDS
        if getattr(constraint, attribute, None) is not None
    ]
    return " ".join([text, *bounds])


def _default_text(default: object) -> str:
    if default is None:
        return "unset"
    if isinstance(default, Path):
        if default.is_relative_to(REPO_ROOT):
            return f"`{default.relative_to(REPO_ROOT)}` (in the repository)"
        if default.is_relative_to(Path.home()):
            return f"`~/{default.relative_to(Path.home())}`"
    return f"`{default}`"


def _cell(text: str) -> str:
    """Text for a table cell: pipes escaped, and ``<home>`` kept from being read as an HTML tag."""
    return text.replace("|", "\\|").replace("<", "&lt;")
