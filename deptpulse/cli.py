"""The `deptpulse` command: one click group, thin subcommands that call into the packages."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from deptpulse.settings import KAFKA_SASL_MECHANISM, Settings, load_settings
from deptpulse.stack import SERVICES, LocalStack, StackError, create_topics


class UserError(click.ClickException):
    """A mistake of the user's or of the set-up: printed as one clear line, exit code 2."""

    exit_code = 2


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """deptpulse: how the departments of an organisation serve each other."""
    try:
        ctx.obj = load_settings()
    except Exception as exc:  # pydantic ValidationError: name the bad setting, no traceback
        raise UserError(f"invalid settings: {exc}") from exc


def settings_of(ctx: click.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


# --- deptpulse stack: the local services ----------------------------------------------------------


@contextmanager
def stack_errors() -> Iterator[None]:
    """Report a StackError as a UserError: its message, exit code 2, no traceback."""
    try:
        yield
    except StackError as exc:
        raise UserError(str(exc)) from exc


@main.group()
def stack() -> None:
    """The local stack: Kafka, Prometheus and Alertmanager as processes under DEPTPULSE_HOME.

    Kafka is PLAINTEXT unless DEPTPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL (see docs/security.md).
    """


only_services = click.option(
    "--service",
    "-s",
    "services",
    multiple=True,
    type=click.Choice(SERVICES),
    help="Only this service (repeatable); default: all.",
)


@stack.command("install")
@click.pass_context
def stack_install(ctx: click.Context) -> None:
    """Resolve the Kafka jars from Maven Central into the per-user cache (once per pom.xml)."""
    with stack_errors():
        jars = LocalStack(settings_of(ctx)).install_kafka()
    click.echo(f"Kafka jars: {jars}")


@stack.command("up")
@only_services
@click.option(
    "--kafka-brokers",
    type=click.IntRange(1, 9),
    help="Run this many Kafka brokers (DEPTPULSE_KAFKA_BROKERS): 3 makes a KRaft quorum, topics with 3 "
    "replicas and min.insync.replicas=2. Later `stack` commands find them without it.",
)
@click.pass_context
def stack_up(ctx: click.Context, services: tuple[str, ...], kafka_brokers: int | None) -> None:
    """Start the local services that are not running yet, then create the Kafka topics."""
    # Read again rather than copied: the broker count decides the default bootstrap servers.
    settings = settings_of(ctx) if kafka_brokers is None else load_settings(kafka_brokers=kafka_brokers)
    with stack_errors():
        for result in LocalStack(settings).up(services or SERVICES):
            state = "already running" if result.already_running else f"started in {result.seconds:.1f} s"
            click.echo(f"{result.name}: {state} (pid {result.pid})")
        created = create_topics(settings) if "kafka" in (services or SERVICES) else None
    if created is not None:
        click.echo(f"topics created: {', '.join(created)}" if created else "topics: already there")
        if settings.kafka_security_protocol == "SASL_SSL":
            click.echo(
                f"kafka: SASL_SSL, {KAFKA_SASL_MECHANISM} as {settings.kafka_sasl_username}; "
                f"clients check the broker against {settings.kafka_ssl_cafile}"
            )


@stack.command("down")
@only_services
@click.pass_context
def stack_down(ctx: click.Context, services: tuple[str, ...]) -> None:
    """Stop the local services (SIGTERM, SIGKILL after a grace period); data stays under DEPTPULSE_HOME."""
    with stack_errors():
        stopped = LocalStack(settings_of(ctx)).down(services or SERVICES)
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@stack.command("status")
@click.pass_context
def stack_status(ctx: click.Context) -> None:
    """Each service: its address, pid and whether it answers."""
    table = Table("service", "address", "pid", "answers")
    answers = {True: "[green]yes[/]", False: "[red]no[/]", None: "-"}
    with stack_errors():
        rows = LocalStack(settings_of(ctx)).status()
    for row in rows:
        table.add_row(row.name, row.address, str(row.pid or "-"), answers[row.answering])
    Console().print(table)


# --- deptpulse demo: the main job -------------------------------------------------------------------


@main.command("demo")
@click.option("--keep-running", is_flag=True, help="Leave the services the demo started running.")
@click.option(
    "--live-seconds",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="How long the it-degradation scenario runs live through the gateway and the SDK.",
)
@click.option(
    "--history-days",
    default=30,
    show_default=True,
    type=click.IntRange(min=8),
    help="Days of simulated history replayed first.",
)
@click.pass_context
def demo(ctx: click.Context, keep_running: bool, live_seconds: float, history_days: int) -> None:
    """The whole story on the local stack: history, a live degradation, the alert mail, the scorecard.

    Stops what it started unless --keep-running; exit code 1 when any step failed (each is named).
    """
    from deptpulse.demo import Demo

    demo = Demo(
        settings_of(ctx),
        Console(),
        keep_running=keep_running,
        live_seconds=live_seconds,
        history_days=history_days,
    )
    if not demo.run():
        ctx.exit(1)


# --- deptpulse gateway: authenticated HTTP ingestion into Kafka -----------------------------------


@main.command("gateway")
@click.option("--host", default=None, help="Address to bind; default DEPTPULSE_BIND_HOST (127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port; default DEPTPULSE_GATEWAY_PORT (18080).")
@click.option(
    "--integrations",
    "integrations_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Integrations YAML; default DEPTPULSE_GATEWAY_INTEGRATIONS_PATH (deploy/gateway/).",
)
@click.pass_context
def gateway(ctx: click.Context, host: str | None, port: int | None, integrations_path: Path | None) -> None:
    """Serve the ingestion gateway: authenticated webhooks and events into Kafka (202 after acks=all)."""
    # Imported here: FastAPI, uvicorn and kafka-python load only for this command.
    from producers.gateway import serve
    from producers.integrations import IntegrationsError, load_integrations
    from producers.publisher import PublisherError
    from schemas.directory import DirectoryError, load_directory

    settings = settings_of(ctx)
    try:
        # The secrets the file references by variable name (token_env/secret_env) are read here,
        # in the composition root, and passed in.
        integrations = load_integrations(integrations_path or settings.gateway_integrations_path, os.environ)
        directory = load_directory(settings.directory_path)
        serve(
            settings,
            host=host or settings.bind_host,
            port=port or settings.gateway_port,
            integrations=integrations,
            directory=directory,
        )
    except (IntegrationsError, DirectoryError, PublisherError) as exc:
        raise UserError(str(exc)) from exc


@main.command("wecom-relay")
@click.option("--host", default=None, help="Address to bind; default DEPTPULSE_BIND_HOST (127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port; default DEPTPULSE_WECOM_RELAY_PORT (19099).")
@click.option(
    "--dead-letters",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON-lines file of undelivered messages; default <home>/wecom-relay/dead-letters.jsonl.",
)
@click.pass_context
def wecom_relay(ctx: click.Context, host: str | None, port: int | None, dead_letters: Path | None) -> None:
    """Relay Alertmanager's webhook to WeCom group robots as markdown messages (POST /wecom/<department>)."""
    import logging

    from notifiers.wecom_relay import DeadLetters, Relay, RetryPolicy, robot_urls, serve
    from schemas.directory import DirectoryError, load_directory

    settings = settings_of(ctx)
    try:
        directory = load_directory(settings.directory_path)
    except DirectoryError as exc:
        raise UserError(str(exc)) from exc
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The robots' URLs are read here, in the composition root, by the variables the directory names.
    urls, problems = robot_urls(directory, os.environ)
    policy = RetryPolicy(
        attempts=settings.wecom_relay_attempts, deadline_seconds=settings.wecom_relay_deadline_seconds
    )
    relay = Relay(
        directory, urls, problems, DeadLetters(dead_letters or settings.wecom_dead_letters_path), policy
    )
    serve(relay, host or settings.bind_host, port or settings.wecom_relay_port)


# --- deptpulse schema / convert: the event contract and the source adapters ------------------------
# Imported where used, so the commands above do not load the adapters.


@main.group()
def schema() -> None:
    """The event contract and the directory as JSON Schema (schemas/jsonschema/)."""


@schema.command("export")
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 if the committed files differ from the models."
)
def schema_export(check: bool) -> None:
    """Generate the JSON Schema files from the pydantic models."""
    from schemas.export import JSONSCHEMA_DIR, drift, json_schemas

    committed = {
        path.name: path.read_text(encoding="utf-8") for path in sorted(JSONSCHEMA_DIR.glob("*.json"))
    }
    if check:
        problems = drift(committed)
        for problem in problems:
            click.echo(f"{JSONSCHEMA_DIR / problem}", err=True)
        if problems:
            click.echo("run `deptpulse schema export` and commit the result", err=True)
            sys.exit(1)
        click.echo(f"{len(committed)} JSON Schema files match the models")
        return
    generated = json_schemas()
    JSONSCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    for stale in committed.keys() - generated.keys():
        (JSONSCHEMA_DIR / stale).unlink()
    for name, text in generated.items():
        (JSONSCHEMA_DIR / name).write_text(text, encoding="utf-8", newline="\n")
    click.echo(f"wrote {len(generated)} JSON Schema files to {JSONSCHEMA_DIR}")


@main.command()
@click.option(
    "--source", "source", required=True, metavar="jira-sm|servicenow|zendesk|hr-survey", help="The vendor."
)
@click.option(
    "--directory",
    "directory_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Department directory YAML; default DEPTPULSE_DIRECTORY_PATH.",
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def convert(ctx: click.Context, source: str, directory_path: Path | None, file: Path) -> None:
    """Print a vendor file's payloads as canonical events (JSON lines); rejects go to stderr.

    FILE holds one JSON payload or a list of them (hr-survey: a CSV export). Exit code 1 if any
    payload was rejected, 2 for an unreadable file, an unknown source or a bad directory.
    """
    from producers.sources import ADAPTERS, read_payloads
    from producers.sources import convert as convert_payloads
    from schemas.directory import DirectoryError, load_directory
    from schemas.events import event_to_json

    if source not in ADAPTERS:
        raise UserError(f"unknown source {source!r}: choose one of {', '.join(ADAPTERS)}")
    try:
        directory = load_directory(directory_path or settings_of(ctx).directory_path)
        payloads = read_payloads(source, file.read_text(encoding="utf-8"))
    except DirectoryError as exc:
        raise UserError(str(exc)) from exc
    except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON
        raise UserError(f"cannot read {file}: {exc}") from exc
    events, rejects = convert_payloads(source, payloads, directory)
    for event in events:
        click.echo(event_to_json(event).decode())
    for reject in rejects:
        click.echo(f"{file}: record {reject.record} rejected: {reject.reason}", err=True)
    click.echo(f"{len(payloads)} records, {len(events)} events, {len(rejects)} rejected", err=True)
    if rejects:
        sys.exit(1)


# --- deptpulse simulate / publish: events into Kafka from the simulator or a file -----------------
# Imported where used, like the commands above.

_PROGRESS_MIN_BYTES = 4 << 20  # files below this are done before a bar would help


@main.command("simulate")
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Request events per second (event time); live runs are paced to it in wall time.",
)
@click.option(
    "--duration", default="60", show_default=True, help="Seconds of event time, or e.g. 10m, 2h, 30d."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same events.")
@click.option("--scenario", default="steady", show_default=True, help="steady | it-degradation | hr-recruiting (use --rate 0.0045 --duration 91d for its quarter).")
@click.option(
    "--start",
    default=None,
    metavar="RFC3339",
    help="Start of event time: history, published as fast as possible. Default: now, paced live.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write JSONL to this file instead of publishing to Kafka.",
)
@click.pass_context
def simulate_command(
    ctx: click.Context,
    rate: float,
    duration: str,
    seed: int,
    scenario: str,
    start: str | None,
    out: Path | None,
) -> None:
    """Simulate the example organisation's service traffic into Kafka (or a JSONL file)."""
    import contextlib
    from collections import Counter
    from datetime import UTC, datetime, timedelta

    from pydantic import TypeAdapter, ValidationError

    from producers.publisher import Publisher, PublisherError
    from producers.simulator import live, scenario_named, simulate
    from schemas.directory import DirectoryError, Seconds, load_directory
    from schemas.events import event_to_json

    settings = settings_of(ctx)
    try:
        directory = load_directory(settings.directory_path)
        chosen = scenario_named(scenario)
        seconds = (
            int(duration) if duration.strip().isdigit() else TypeAdapter(Seconds).validate_python(duration)
        )
        begins = datetime.fromisoformat(start) if start else datetime.now(UTC).replace(microsecond=0)
        if begins.tzinfo is None:
            raise ValueError(f"--start {start!r} needs an offset, e.g. 2026-03-02T09:00:00Z")
    except ValidationError as exc:
        raise UserError(f"--duration: {exc.errors()[0]['msg']}") from exc
    except (DirectoryError, KeyError, ValueError) as exc:
        raise UserError(_one_line(exc)) from exc
    events = simulate(directory, begins, timedelta(seconds=seconds), rate, seed, chosen)
    counts: Counter[str] = Counter()
    clock = time.monotonic()
    if out is not None:
        with out.open("wb") as file:
            for event in events:
                file.write(event_to_json(event) + b"\n")
                counts[event.event_type] += 1
        target = str(out)
    else:
        try:
            # Ctrl-C ends a live run: what was sent is flushed and summarised.
            with (
                Publisher.from_settings(settings, directory) as publisher,
                contextlib.suppress(KeyboardInterrupt),
            ):
                for event in events if start else live(events, rate):
                    publisher.send(event)
                    counts[event.event_type] += 1
        except PublisherError as exc:
            raise UserError(str(exc)) from exc
        target = f"Kafka topic {settings.events_topic}"
    elapsed = time.monotonic() - clock
    total = sum(counts.values())
    click.echo(
        f"{total} events ({counts['request.opened']} requests opened, {counts['feedback.submitted']} CSAT, "
        f"{counts['survey.answered']} survey answers) from {begins.isoformat()} over {seconds} s, "
        f"scenario {chosen.name}, seed {seed} -> {target} in {elapsed:.1f} s ({total / max(elapsed, 1e-9):,.0f}/s)"
    )


@main.command("publish")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where refused lines go, with line numbers and reasons; default FILE.rejects.jsonl.",
)
@click.option("--dry-run", is_flag=True, help="Validate against the directory; publish nothing.")
@click.pass_context
def publish_command(ctx: click.Context, file: Path, rejects_path: Path | None, dry_run: bool) -> None:
    """Validate and publish a file of canonical events: JSONL, or CSV (columns: see producers/importer.py).

    Exit code 1 when any line was rejected, 2 for a bad file, directory or Kafka connection.
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from producers.importer import ImportSummary, ValidatingSink, import_file
    from producers.publisher import Publisher, PublisherError
    from schemas.directory import DirectoryError, load_directory

    settings = settings_of(ctx)
    try:
        directory = load_directory(settings.directory_path)
        sink = ValidatingSink(directory) if dry_run else Publisher.from_settings(settings, directory)
    except (DirectoryError, PublisherError) as exc:
        raise UserError(str(exc)) from exc
    size = file.stat().st_size
    stderr = Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
        # No bar into a CI log or a file: even a transient one leaves a blank line there.
        disable=size < _PROGRESS_MIN_BYTES or not stderr.is_terminal,
    )
    summary: ImportSummary | None = None
    clock = time.monotonic()
    try:
        with sink, progress:  # the publisher flushes on exit: DeliveryError if any send failed
            task = progress.add_task(f"publishing {file.name}", total=size)
            summary = import_file(
                file, sink, rejects_path=rejects_path, progress=lambda read: progress.advance(task, read)
            )
    except PublisherError as exc:
        handed = f", after {summary.published} events were handed to Kafka" if summary else ""
        raise UserError(f"{exc}{handed}") from exc
    except OSError as exc:
        raise UserError(f"cannot read {file}: {exc.strerror or exc}") from exc
    assert summary is not None
    elapsed = time.monotonic() - clock  # up to the last acknowledgement: the sink flushed on exit
    # On stderr with the progress bar: stdout keeps the one summary line scripts read.
    click.echo(
        f"{summary.published:,} events {'validated' if dry_run else 'acknowledged'} in {elapsed:.1f} s: "
        f"{summary.published / max(elapsed, 1e-9):,.0f} events/s",
        err=True,
    )
    verb = "valid" if dry_run else f"published to {settings.events_topic}"
    click.echo(f"{summary.published} events {verb}, {summary.rejected} rejected", nl=not summary.rejected)
    if summary.rejected:
        kinds = ", ".join(f"{kind} {count}" for kind, count in summary.reject_kinds.most_common())
        click.echo(f" ({kinds}): see {summary.rejects_path}")
        ctx.exit(1)


def _one_line(exc: Exception) -> str:
    """An exception's message on one line (pydantic's are multi-line)."""
    return " ".join(str(exc.args[0] if isinstance(exc, KeyError) else exc).split())


# --- deptpulse rules: alerting and dashboards generated from the directory ------------------------


@main.group()
def rules() -> None:
    """Prometheus rules, Alertmanager config and Grafana dashboards generated from the directory."""


@rules.command("generate")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 listing the files that differ.")
@click.option(
    "--directory",
    "directory_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Department directory YAML; default DEPTPULSE_DIRECTORY_PATH.",
)
@click.option(
    "--deploy-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the files go (prometheus/, alertmanager/, grafana/); default the repository's deploy/.",
)
@click.option(
    "--smtp-smarthost",
    help="host:port of the mail relay (default: DEPTPULSE_SMTP_SMARTHOST, the local mail sink).",
)
@click.option("--smtp-from", help="Sender address of the alert mails (default: DEPTPULSE_SMTP_FROM).")
@click.option(
    "--smtp-require-tls/--no-smtp-require-tls",
    default=None,
    help="STARTTLS to the relay (default: DEPTPULSE_SMTP_REQUIRE_TLS, off).",
)
@click.option("--smtp-auth-username", help="User name at the relay (default: DEPTPULSE_SMTP_AUTH_USERNAME).")
@click.option(
    "--smtp-auth-password-file",
    help="File on Alertmanager's host holding the relay password, never the password "
    "(default: DEPTPULSE_SMTP_AUTH_PASSWORD_FILE).",
)
@click.option(
    "--slack-api-url-file", help="File on Alertmanager's host holding the Slack incoming-webhook URL."
)
@click.option(
    "--wecom-relay-url",
    help="Base URL of `deptpulse wecom-relay` as Alertmanager reaches it (default http://127.0.0.1:19099).",
)
@click.option("--sre-email", help="Where pipeline alerts and unrouted departments go.")
@click.option("--grafana-url", help="Grafana's base URL, for the dashboard links of every alert.")
@click.pass_context
def rules_generate(
    ctx: click.Context,
    /,
    check: bool,
    directory_path: Path | None,
    deploy_dir: Path | None,
    **overrides: Any,
) -> None:
    """Write the generated rules, Alertmanager config and templates, dashboards and provisioning.

    The defaults suit the local stack (mail to its sink on 127.0.0.1:2525); a deployment names its
    mail relay and Slack webhook with the options, secrets as files on Alertmanager's host.
    """
    from dataclasses import replace

    from deptpulse.settings import DEPLOY_DIR
    from schemas.directory import DirectoryError, load_directory
    from schemas.observability import ObservabilityOptions, generate_files

    try:
        directory = load_directory(directory_path or settings_of(ctx).directory_path)
    except DirectoryError as exc:
        raise UserError(str(exc)) from exc
    options = ObservabilityOptions()
    grafana_url = overrides.pop("grafana_url")
    # The mail relay: DEPTPULSE_SMTP_* (the digest sends through the same), an option overrides one.
    alertmanager = settings_of(ctx).alertmanager_smtp_options() | {
        name: value for name, value in overrides.items() if value is not None
    }
    options = replace(options, alertmanager=replace(options.alertmanager, **alertmanager))
    if grafana_url is not None:
        options = replace(options, rules=replace(options.rules, grafana_url=grafana_url))
    root = deploy_dir or DEPLOY_DIR
    files = {root / relative: text for relative, text in generate_files(directory, options).items()}
    if check:
        differing = [
            path
            for path, text in files.items()
            if not path.is_file() or path.read_text(encoding="utf-8") != text
        ]
        for path in differing:
            click.echo(str(path), err=True)
        if differing:
            click.echo("run `deptpulse rules generate` and commit the result", err=True)
            sys.exit(1)
        click.echo(f"{len(files)} generated files match the directory")
        return
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
    click.echo(f"wrote {len(files)} files under {root}")


@main.group()
def db() -> None:
    """The ClickHouse schema."""


@db.command("migrate")
@click.pass_context
def db_migrate(ctx: click.Context) -> None:
    """Apply the pending schemas/clickhouse/NNN_*.sql migrations (idempotent)."""
    from stream_processors.storage import MigrationError, connect, migrate

    settings = settings_of(ctx)
    try:
        client = connect(settings)
        applied = migrate(client)
    except MigrationError as exc:
        raise UserError(str(exc)) from exc
    except Exception as exc:  # driver errors: ClickHouse unreachable, chdb path held by a worker
        raise UserError(f"ClickHouse {settings.clickhouse_database}: {_one_line(exc)}") from exc
    client.close()
    for migration in applied:
        click.echo(f"applied {migration.version:03d}_{migration.name}")
    click.echo(f"database {settings.clickhouse_database} is up to date ({len(applied)} applied)")


@main.command("worker")
@click.option(
    "--worker-id",
    "--workers-id",
    "worker_id",
    default="1",
    show_default=True,
    help="This worker's id: its data directory is <home>/worker/<id>.",
)
@click.option(
    "--group", default="deptpulse-worker", show_default=True, help="Kafka consumer group of the workers."
)
@click.option(
    "--pair-limit",
    default=200,
    show_default=True,
    type=click.IntRange(min=0),
    help="At most this many provider/customer pairs get business gauges of their own.",
)
@click.option("--loglevel", default="info", type=click.Choice(["crit", "error", "warn", "info", "debug"]))
@click.pass_context
def worker_command(ctx: click.Context, worker_id: str, group: str, pair_limit: int, loglevel: str) -> None:
    """Run a stream worker: events topic -> ClickHouse, /metrics on the worker port."""
    from schemas.directory import DirectoryError, load_directory
    from stream_processors.access.heads import HeadsError
    from stream_processors.access.rules import ReadAccess
    from stream_processors.app import create_app

    settings = settings_of(ctx)
    try:  # the heads file's secrets are read here, in the composition root, and passed in
        read_access = ReadAccess.configured(
            load_directory(settings.directory_path),
            bind_host=settings.bind_host,
            heads_path=settings.read_api_heads_path,
            environ=os.environ,
            trusted_user_header=settings.read_api_trusted_user_header,
        )
    except (HeadsError, DirectoryError) as exc:
        raise UserError(str(exc)) from exc
    with stack_errors():
        create_topics(settings)
    app = create_app(settings, worker_id, group=group, pair_limit=pair_limit, read_access=read_access)
    sys.argv = [sys.argv[0], "worker", "--loglevel", loglevel]
    app.main()


@main.command("link")
@click.option("--department", required=True, metavar="ID", help="The department whose head gets the link.")
@click.option(
    "--days", default=7, show_default=True, type=click.IntRange(1, 31), help="Days until the link expires."
)
@click.option(
    "--base-url",
    default=None,
    metavar="URL",
    help="The read API as the head reaches it; default the worker on DEPTPULSE_BIND_HOST.",
)
@click.pass_context
def link_command(ctx: click.Context, department: str, days: int, base_url: str | None) -> None:
    """Print a signed link to a department's served scorecard page (the heads file's link secret)."""
    from datetime import UTC, datetime, timedelta

    from schemas.directory import DirectoryError, load_directory
    from stream_processors.access.heads import HeadsError, load_heads, signed_link
    from stream_processors.scorecard.report import read_api_url

    settings = settings_of(ctx)
    if settings.read_api_heads_path is None:
        raise UserError("no heads file: set DEPTPULSE_READ_API_HEADS_PATH (see docs/operations.md)")
    try:
        heads = load_heads(settings.read_api_heads_path, load_directory(settings.directory_path), os.environ)
    except (HeadsError, DirectoryError) as exc:
        raise UserError(str(exc)) from exc
    head = heads.by_department.get(department)
    if head is None or head.link_secret is None:
        raise UserError(f"the heads file gives department {department!r} no link_secret_env")
    expires = datetime.now(UTC) + timedelta(days=days)
    click.echo(signed_link(base_url or read_api_url(settings), department, head.link_secret, expires))


# --- deptpulse report: the scorecard (stream_processors/scorecard/) -------------------------------


@main.command("report")
@click.option("--provider", default=None, metavar="ID", help="Provider department id; default: every one.")
@click.option(
    "--customer",
    default=None,
    metavar="ID",
    help="Only this customer's rows (and the provider's overall row).",
)
@click.option(
    "--window", "window_name", default=None, metavar="1h|24h|7d|28d", help="Ending now; default 7d."
)
@click.option("--since", default=None, metavar="RFC3339", help="Start, with an offset: 2026-03-02T00:00:00Z.")
@click.option(
    "--until", default=None, metavar="RFC3339", help="End (exclusive), with an offset; default now."
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "csv", "html"]),
    default="table",
    show_default=True,
    help="json: a list of rows; html: one self-contained page for a department head (needs --provider).",
)
@click.option(
    "--by",
    type=click.Choice(["customer", "service", "question"]),
    default="customer",
    show_default=True,
    help="Rows per customer department, per service (the provider's overall row first), or per "
    "survey question (score distribution and mean).",
)
@click.option(
    "--with-comments",
    is_flag=True,
    help="HTML only: add the themes of the comments with quotes (withheld below the privacy minimum).",
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write to this file."
)
@click.pass_context
def report_command(
    ctx: click.Context,
    provider: str | None,
    customer: str | None,
    window_name: str | None,
    since: str | None,
    until: str | None,
    output_format: str,
    by: str,
    with_comments: bool,
    out: Path | None,
) -> None:
    """The scorecard of a window and its change against the window of the same length before.

    With embedded chdb, a running worker holds the data path: the report asks the worker's read API
    (http://BIND_HOST:WORKER_PORT/api/v1/...) and opens the path itself only when nothing listens.
    """
    import shutil
    from datetime import UTC, datetime

    from schemas.directory import load_directory
    from stream_processors.actions.api import actions_source
    from stream_processors.at_risk.api import at_risk_source
    from stream_processors.scorecard.report import (
        ReportError,
        ReportRequest,
        comments_source,
        open_backend,
        produce,
        scorecard_source,
    )
    from stream_processors.scorecard.windows import resolve_window, widened_note
    from stream_processors.surveys.api import campaigns_source

    settings = settings_of(ctx)
    now = datetime.now(UTC)
    try:  # every parameter is checked here, before anything is opened or queried
        directory = load_directory(settings.directory_path)
        window = resolve_window(window=window_name, since=since, until=until, now=now)
        request = ReportRequest(window, provider, customer, output_format, by, with_comments)
        request.check(directory)
    except ValueError as exc:  # DirectoryError, WindowError, UnknownDepartment
        raise UserError(str(exc)) from exc
    if window.widened:  # stderr: the report itself stays clean for tools; every format says it too
        click.echo(f"note: {widened_note(window)}", err=True)
    styled = out is None and sys.stdout.isatty()
    width = shutil.get_terminal_size().columns if styled else 200
    try:
        with open_backend(settings) as (backend, origin):
            source = scorecard_source(backend, directory)
            comments = comments_source(backend, settings) if with_comments else None
            html = output_format == "html"
            text = produce(
                source,
                directory,
                request,
                now,
                width,
                styled,
                comments,
                campaigns_source(backend, directory, comments) if html else None,
                actions_source(backend, directory, settings.action_window_days, settings.action_settling_days)
                if html
                else None,
                at_risk=at_risk_source(backend, directory) if html else None,
            )
    except ReportError as exc:
        raise UserError(str(exc)) from exc
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out} ({origin})", err=True)


# --- deptpulse comments / themes: what internal customers say (stream_processors/comments/) ------


def _selection_options(function: Any) -> Any:
    """The options that choose a provider's comments: shared by `comments` and `themes`."""
    options = [
        click.option("--provider", required=True, metavar="ID", help="Provider department id."),
        click.option("--service", default=None, metavar="ID", help="Only this service of the provider."),
        click.option("--customer", default=None, metavar="ID", help="Only this customer department."),
        click.option("--campaign", default=None, metavar="ID", help="Only answers of this survey campaign."),
        click.option(
            "--max-csat",
            type=int,
            default=None,
            metavar="N",
            help="Only CSAT comments with a score of at most N (1-5); survey comments are left out.",
        ),
        click.option(
            "--window", "window_name", default=None, metavar="1h|24h|7d|28d", help="Ending now; default 28d."
        ),
        click.option("--since", default=None, metavar="RFC3339", help="Start, with an offset."),
        click.option("--until", default=None, metavar="RFC3339", help="End (exclusive), with an offset."),
        click.option(
            "--format",
            "output_format",
            type=click.Choice(["table", "json", "csv"]),
            default="table",
            show_default=True,
        ),
        click.option(
            "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write to this file."
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _read_comments(ctx: click.Context, kind: str, count: int, **selection: Any) -> None:
    """`comments` and `themes`: check the selection, read it (worker's read API or ClickHouse), print."""
    import json
    from datetime import UTC, datetime

    from pydantic import BaseModel

    from schemas.directory import load_directory
    from stream_processors.comments import render
    from stream_processors.comments.api import RemoteComments, comment_query
    from stream_processors.comments.reading import ClickHouseComments, CommentsService
    from stream_processors.scorecard.read_api import USER_ERRORS
    from stream_processors.scorecard.remote import RemoteScorecard
    from stream_processors.scorecard.report import ReportError, open_backend, query_errors
    from stream_processors.scorecard.windows import resolve_window, widened_note

    settings = settings_of(ctx)
    output_format, out = selection.pop("output_format"), selection.pop("out")
    try:
        directory = load_directory(settings.directory_path)
        window_name, since, until = (
            selection.pop("window_name"),
            selection.pop("since"),
            selection.pop("until"),
        )
        window = resolve_window(
            window=window_name or (None if since else "28d"), since=since, until=until, now=datetime.now(UTC)
        )
        query = comment_query(directory, window, **selection)
    except (ValueError, *USER_ERRORS) as exc:
        raise UserError(str(exc)) from exc
    if window.widened:
        click.echo(f"note: {widened_note(window)}", err=True)
    try:
        with open_backend(settings) as (backend, origin), query_errors():
            source = (
                RemoteComments(backend)
                if isinstance(backend, RemoteScorecard)
                else CommentsService(
                    ClickHouseComments(backend),
                    settings.comments_min_respondents,
                    settings.themes_min_comments,
                )
            )
            body: BaseModel
            if kind == "comments":
                comments = source.comments(query, count)
                table, body, spreadsheet = (
                    render.comments_table(comments, directory),
                    comments,
                    render.comments_csv(comments),
                )
            else:
                themes = source.themes(query, count)
                table, body, spreadsheet = (
                    render.themes_table(themes, directory),
                    themes,
                    render.themes_csv(themes),
                )
    except ReportError as exc:
        text = str(exc)
        if "ACCESS_DENIED" in text or "privileges" in text.lower():
            text += " (reading comments needs the deptpulse_comments_reader role: see docs/security.md)"
        raise UserError(text) from exc
    if output_format == "json":
        text = json.dumps(body.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n"
    elif output_format == "csv":
        text = spreadsheet
    else:
        text = render.as_text(table, styled=out is None and sys.stdout.isatty())
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out} ({origin})", err=True)


@main.command("comments")
@_selection_options
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(1, 1000), help="Newest N comments."
)
@click.pass_context
def comments_command(ctx: click.Context, /, limit: int, **selection: Any) -> None:
    """The redacted comments of a provider's internal customers, newest first, with their score,
    customer, service and request. Nothing is shown for fewer than DEPTPULSE_COMMENTS_MIN_RESPONDENTS
    distinct respondents (5). On a ClickHouse server, needs the deptpulse_comments_reader role."""
    _read_comments(ctx, "comments", limit, **selection)


@main.command("themes")
@_selection_options
@click.option("--top", default=10, show_default=True, type=click.IntRange(1, 100), help="At most N themes.")
@click.pass_context
def themes_command(ctx: click.Context, /, top: int, **selection: Any) -> None:
    """The recurring themes of the comments, ranked by how much more often low scores (CSAT 1-3,
    NPS 0-6) mention them than high ones (log-odds with an informative Dirichlet prior), each with
    its count of distinct comments, the share of low scores that mention it and two quotes."""
    _read_comments(ctx, "themes", top, **selection)


# --- deptpulse config reference: docs/configuration.md from the Settings model -------------------


@main.group()
def config() -> None:
    """The settings: every DEPTPULSE_ environment variable."""


@config.command("reference")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if docs/configuration.md differs.")
def config_reference(check: bool) -> None:
    """Write docs/configuration.md (every DEPTPULSE_ variable, type, default) from the Settings model."""
    from deptpulse.settings import CONFIGURATION_REFERENCE, reference_markdown

    text = reference_markdown()
    if check:
        if (
            not CONFIGURATION_REFERENCE.is_file()
            or CONFIGURATION_REFERENCE.read_text(encoding="utf-8") != text
        ):
            click.echo(str(CONFIGURATION_REFERENCE), err=True)
            click.echo("run `deptpulse config reference` and commit the result", err=True)
            sys.exit(1)
        click.echo(f"{CONFIGURATION_REFERENCE.name} matches the settings")
        return
    CONFIGURATION_REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    CONFIGURATION_REFERENCE.write_text(text, encoding="utf-8", newline="\n")
    click.echo(f"wrote {CONFIGURATION_REFERENCE}")


# --- deptpulse surveys / actions: did it work? (deptpulse/cli_loop.py) --------------------------
# Imported here, after UserError and settings_of, which its commands import when they run.
from deptpulse.cli_digest import digest  # noqa: E402
from deptpulse.cli_loop import actions, surveys  # noqa: E402

main.add_command(surveys)
main.add_command(actions)
main.add_command(digest)


if __name__ == "__main__":
    sys.exit(main())
