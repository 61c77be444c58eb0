"""`deptpulse demo`: the whole story on the local stack in about three minutes, with live progress.

1. Start the local stack (Kafka, Alertmanager, Prometheus; ClickHouse is embedded), create the
   topics, apply the migrations, generate the alert rules from the example directory into a demo
   copy under ``<home>/demo/deploy`` (business alerts hold seconds instead of half an hour) and
   point the stack's Prometheus at it; start the mail sink (127.0.0.1:2525, the smarthost of the
   generated Alertmanager configuration), the worker and the gateway, logs under ``<home>/logs/``.
2. Replay simulated history of the example organisation from a JSONL file through the importer: a
   month of ``it-degradation`` (for the last two weeks IT answers Finance six times slower) merged,
   in event-time order, with a quarter of ``hr-recruiting`` (HR's recruiting slow, two survey
   campaigns, an improvement action that helps); then run ``it-degradation`` live for a bounded
   time: ServiceNow events through the gateway (HTTP, bearer token), Jira and Zendesk through the SDK.
3. Wait until the mail sink's outbox holds the alert to IT's head and the copy to Finance's head.
4. Print IT's scorecard and write its HTML page; then HR's story: where (the weakest service), why
   (survey questions, comment themes), what was done and whether it worked (campaigns, the action's
   effect), and HR's HTML page with its comments; say where everything is.
5. Stop what it started (unless ``--keep-running``) and check that nothing listens any more.

Composition only: every step calls the packages. A step that fails is reported and the demo goes
on with what does not depend on it; the exit code says whether everything worked.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from deptpulse.mailsink import DEFAULT_PORT as MAIL_SINK_PORT
from deptpulse.mailsink import OutboxMessage, read_outbox
from deptpulse.settings import DEPLOY_DIR, Settings
from deptpulse.stack import (
    PROMETHEUS_CONFIG,
    SERVICES,
    LocalStack,
    accepts_connections,
    connect_host,
    create_topics,
    port_is_free,
    render_prometheus_config,
)
from schemas.directory import Directory, load_directory
from schemas.observability import RULES_DIR, ObservabilityOptions, generate_files
from schemas.observability.alertmanager import AlertmanagerOptions
from schemas.observability.render import to_yaml

SCENARIO = "it-degradation"
PROVIDER, CUSTOMER = "it", "finance"  # the pair the scenario degrades
HR = "hr"  # the provider of the hr-recruiting story
HISTORY_RATE = 0.03  # request events per second of history: ~80,000 events a month
DEMO_HOLD = "5s"  # how long a business alert must hold in the demo copy (production: 15m-30m)
DEMO_INTERVAL = "2s"  # scrape and rule evaluation interval of the demo copy (production: 5s)
# The example integrations that post canonical events with a bearer token; every integration's
# secret must be set for the gateway to start, so the demo makes a random one for each.
GATEWAY_TOKENS = {
    "DEPTPULSE_GW_JIRA_SECRET": None,
    "DEPTPULSE_GW_ZENDESK_SECRET": None,
    "DEPTPULSE_GW_SERVICENOW_TOKEN": "servicenow",
    "DEPTPULSE_GW_HR_TOKEN": "hr-survey",
}
ALERTING_TITLE = (
    "Generating the alert rules from the example directory; Prometheus evaluates them from now on"
)
TEMPLATES = DEPLOY_DIR / "alertmanager" / "templates"
DASHBOARDS = DEPLOY_DIR / "grafana"


# --- the alerting configuration as a copy with other timings (also used by the alert e2e test) ----


@dataclass(frozen=True)
class AlertingCopy:
    """Generated Prometheus and Alertmanager files under ``root`` (laid out like ``deploy/``)."""

    root: Path
    prometheus_config: Path  # the source for ``render_prometheus_config``
    alertmanager_config: Path


def hold_business_alerts(rule_file: dict[str, Any], hold: str) -> dict[str, Any]:
    """The rule file with every business alert's ``for`` set to ``hold``; pipeline alerts keep theirs."""
    for group in rule_file.get("groups", []):
        for rule in group.get("rules", []):
            if "alert" in rule and rule.get("labels", {}).get("category") == "business":
                rule["for"] = hold
    return rule_file


def write_alerting_copy(
    directory: Directory, root: Path, alertmanager: AlertmanagerOptions, *, hold: str, interval: str
) -> AlertingCopy:
    """Generate rules and Alertmanager config for ``directory`` into ``root``, with short timings."""
    files = generate_files(directory, ObservabilityOptions(alertmanager=alertmanager))
    for relative, text in files.items():
        if not relative.startswith(("prometheus/", "alertmanager/")):
            continue  # dashboards: the committed ones are the same for every timing
        if relative.startswith(RULES_DIR):
            text = to_yaml(hold_business_alerts(yaml.safe_load(text), hold), directory.organisation)
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    shutil.copy(TEMPLATES / "deptpulse.tmpl", root / "alertmanager" / "templates" / "deptpulse.tmpl")
    prometheus = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    prometheus["global"] |= {"scrape_interval": interval, "evaluation_interval": interval}
    prometheus_config = root / "prometheus" / "prometheus.yml"
    prometheus_config.write_text(yaml.safe_dump(prometheus, sort_keys=False), encoding="utf-8")
    return AlertingCopy(root, prometheus_config, root / "alertmanager" / "generated" / "alertmanager.yml")


# --- small process and HTTP helpers ----------------------------------------------------------------


def http_get(url: str, timeout: float = 2.0) -> bytes | None:
    """The body of a 2xx answer, or None."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body: bytes = response.read()
            return body
    except (OSError, urllib.error.HTTPError):
        return None


def http_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float = 10.0) -> int:
    """POST and return the status code (0 when nothing answered)."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def wait_for(ready: Callable[[], bool], timeout: float, what: str, alive: Callable[[], str | None]) -> None:
    """Poll ``ready``; ``alive`` returns why to give up early (a process exited)."""
    deadline = time.monotonic() + timeout
    while not ready():
        reason = alive()
        if reason:
            raise DemoError(f"{what}: {reason}")
        if time.monotonic() > deadline:
            raise DemoError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(0.25)


class DemoError(Exception):
    """A step failed; the message says what and where to look."""


@dataclass
class Child:
    """A process the demo runs (mail sink, worker, gateway), its output in ``<home>/logs/<name>.log``."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                env=os.environ | self.env,
            )  # fmt: skip

    def exited(self) -> str | None:
        if self.process is None or self.process.poll() is None:
            return None
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-8:])
        return f"exited with code {self.process.returncode}; last lines of {self.log}:\n{tail}"

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- the demo --------------------------------------------------------------------------------------


@dataclass
class StepResult:
    title: str
    ok: bool
    seconds: float
    error: str = ""


class Demo:
    """One run of the demo; ``run()`` does it all, always cleans up, and returns whether all worked."""

    def __init__(
        self,
        settings: Settings,
        console: Console,
        keep_running: bool = False,
        live_seconds: float = 30.0,
        history_days: int = 30,
        alert_timeout: float = 90.0,
    ) -> None:
        self.settings = settings
        self.console = console
        self.keep_running = keep_running
        self.live_seconds = live_seconds
        self.history_days = history_days
        self.alert_timeout = alert_timeout
        self.stack = LocalStack(settings)
        self.home = self.stack.home
        self.host = connect_host(settings.bind_host)
        self.demo_dir = self.home / "demo"
        self.outbox = self.home / "outbox"
        self.reports = self.home / "reports"
        self.started_services: list[str] = []
        self.children: list[Child] = []
        self.results: list[StepResult] = []
        self.prometheus_was_running = False
        self.tokens = {variable: secrets.token_hex(24) for variable in GATEWAY_TOKENS}
        self.outbox_before: set[Path] = set()
        self.run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")  # labels this run's alerts
        self.history_published_at: float | None = None
        self.history_events = 0
        self.history_end: datetime | None = None
        self.rules_due = 0.0  # monotonic time after which the demo rules may be loaded
        self.rules_loaded = False
        self.directory = load_directory(settings.directory_path)

    # -- driving ---------------------------------------------------------------------------------

    def run(self) -> bool:
        began = time.monotonic()
        self.console.rule("[bold]deptpulse demo[/]")
        try:
            essentials = [
                ("Starting the local stack (Kafka, WeCom relay, Alertmanager, Prometheus; ClickHouse embedded)", self.start_stack),
                ("Creating the topics", self.create_topics),
                ("Applying the ClickHouse migrations (deptpulse db migrate)", self.migrate),
                ("Starting the mail sink, the worker and the gateway", self.start_processes),
            ]  # fmt: skip
            ok = all(self.step(title, action) for title, action in essentials)
            if ok:
                replayed = self.step(
                    "Replaying simulated history: IT's month, HR's quarter", self.replay_history
                )
                replayed = replayed and self.step("Waiting for the worker to catch up", self.catch_up)
                self.step(f"Running the {SCENARIO} scenario live (gateway and SDK)", self.run_live)
                if not self.rules_loaded:
                    self.step(ALERTING_TITLE, self.alerting)
                if replayed and self.rules_loaded:
                    self.step(
                        "Waiting for the alert to reach IT's head and a copy Finance's head",
                        self.wait_for_alert,
                    )
                self.step("IT's scorecard (deptpulse report --provider it)", self.report)
                self.step("IT's scorecard as HTML for its head", self.html_report)
                if replayed:
                    self.hr_story()
            else:
                self.console.print("[red]the demo cannot go on without the step above; cleaning up[/]")
            self.print_locations()
        except KeyboardInterrupt:
            self.results.append(StepResult("interrupted", False, 0.0, "Ctrl-C"))
            self.console.print("[yellow]interrupted: cleaning up[/]")
        finally:
            self.cleanup()
        failed = [result for result in self.results if not result.ok]
        elapsed = time.monotonic() - began
        if failed:
            self.console.print(
                f"[bold red]demo finished in {elapsed:.0f} s with {len(failed)} failed step(s):[/]"
            )
            for result in failed:
                self.console.print(
                    f"  [red]✗ {result.title}[/]: {result.error.splitlines()[0] if result.error else ''}"
                )
        else:
            self.console.print(f"[bold green]demo finished in {elapsed:.0f} s: every step worked[/]")
        return not failed

    def step(self, title: str, action: Callable[[], None]) -> bool:
        self.console.print(f"[bold cyan]▶ {title}[/]")
        began = time.monotonic()
        try:
            action()
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # report, keep going with what does not depend on it
            seconds = time.monotonic() - began
            self.results.append(StepResult(title, False, seconds, f"{type(exc).__name__}: {exc}"))
            self.console.print(
                f"  [bold red]✗ failed after {seconds:.1f} s:[/] {exc}", markup=True, highlight=False
            )
            return False
        seconds = time.monotonic() - began
        self.results.append(StepResult(title, True, seconds))
        self.console.print(f"  [dim]done in {seconds:.1f} s[/]")
        return True

    # -- 1. the stack and the processes -----------------------------------------------------------

    def start_stack(self) -> None:
        self.prometheus_was_running = self.stack.pid("prometheus") is not None
        for result in self.stack.up(SERVICES):
            if not result.already_running:
                self.started_services.append(result.name)
            state = "already running" if result.already_running else f"started in {result.seconds:.1f} s"
            self.console.print(f"  {result.name}: {state} (pid {result.pid})")

    def create_topics(self) -> None:
        created = create_topics(self.settings)
        self.console.print(f"  {', '.join(created) if created else 'topics already there'}")

    def migrate(self) -> None:
        # A subprocess: embedded chdb holds its path for the life of the process that opened it,
        # and the worker must open it next.
        output = self.deptpulse("db", "migrate")
        self.console.print(f"  {output.strip().splitlines()[-1]}")

    def alerting(self) -> None:
        """Rules held seconds, not minutes; the stack's Prometheus reloads with them.

        Loaded once the worker has caught up with the history and refreshed its gauges: half-way
        through a replay, requests whose replies are still in Kafka count as unanswered, and with
        a hold of seconds the backlog alert would fire for every department.
        """
        copy = write_alerting_copy(
            self.directory,
            self.demo_dir / "deploy",
            AlertmanagerOptions(),
            hold=DEMO_HOLD,
            interval=DEMO_INTERVAL,
        )
        rules = sorted(path.name for path in (copy.root / RULES_DIR).glob("*.yml"))
        self.console.print(f"  rules {', '.join(rules)} under {copy.root / RULES_DIR}")
        self.console.print(
            f"  business alerts hold {DEMO_HOLD}, evaluated every {DEMO_INTERVAL} (production: 15-30 min, 5 s)"
        )
        self.reload_prometheus(copy.prometheus_config, run_label=True)
        self.rules_loaded = True
        self.console.print(
            f"  Alertmanager routes with the committed {self.stack_alertmanager_config()} "
            "(same routes; group_wait 30 s, mail to 127.0.0.1:2525)"
        )

    def stack_alertmanager_config(self) -> Path:
        from deptpulse.stack import ALERTMANAGER_CONFIG

        return Path("deploy") / ALERTMANAGER_CONFIG.relative_to(DEPLOY_DIR)

    def reload_prometheus(self, source: Path, run_label: bool = False) -> None:
        """Point the stack's Prometheus at ``source``'s rules. With ``run_label``, every alert it sends
        carries ``demo_run=<this run>``: Alertmanager remembers the alerts it mailed for their repeat
        interval (4 h for "action needed", in its notification log under .deptpulse/alertmanager), so
        without a label of its own a demo run again within that time would mail nobody."""
        config = self.home / "prometheus" / "prometheus.yml"  # what the stack's Prometheus was started with
        labels = {"demo_run": self.run_id} if run_label else None
        config.write_text(render_prometheus_config(self.settings, source, labels), encoding="utf-8")
        address = f"http://{self.host}:{self.settings.prometheus_port}"
        if http_post(f"{address}/-/reload", b"", {}) != 200:
            raise DemoError(
                f"Prometheus at {address} did not reload {config}; see {self.stack.log('prometheus')}"
            )
        self.console.print(f"  Prometheus reloaded with {config}")

    def start_processes(self) -> None:
        ports = {
            "mail sink": MAIL_SINK_PORT,
            "worker": self.settings.worker_port,
            "gateway": self.settings.gateway_port,
        }
        busy = [f"{name} ({port})" for name, port in ports.items() if not port_is_free(self.host, port)]
        if busy:
            raise DemoError(
                f"port(s) in use: {', '.join(busy)}; stop what listens there (or set the DEPTPULSE_ port)"
            )
        self.outbox.mkdir(parents=True, exist_ok=True)
        self.outbox_before = set(self.outbox.glob("*.eml"))
        python, deptpulse = sys.executable, str(Path(sys.executable).with_name("deptpulse"))
        logs = self.home / "logs"
        mail = Child("mail sink", [python, "-m", "deptpulse.mailsink", "--outbox", str(self.outbox),
                                   "--host", self.host, "--port", str(MAIL_SINK_PORT)], logs / "mailsink.log")  # fmt: skip
        worker = Child("worker", [deptpulse, "worker", "--loglevel", "warn"], logs / "worker.log")
        gateway = Child("gateway", [deptpulse, "gateway"], logs / "gateway.log", env=self.tokens)
        checks: dict[str, Callable[[], bool]] = {
            "mail sink": lambda: accepts_connections(self.host, MAIL_SINK_PORT),
            "worker": self.worker_running,
            "gateway": lambda: http_get(f"{self.gateway_url}/readyz") is not None,
        }  # fmt: skip
        for child in (mail, worker, gateway):
            child.start()
            self.children.append(child)
        for child in (mail, worker, gateway):
            began = time.monotonic()
            with self.console.status(f"  waiting for the {child.name}"):
                wait_for(checks[child.name], 90, child.name, child.exited)
            assert child.process is not None
            self.console.print(
                f"  {child.name}: ready in {time.monotonic() - began:.1f} s (pid {child.process.pid}, log {child.log})"
            )

    def worker_running(self) -> bool:
        """The worker's /healthz says its events agent runs."""
        body = http_get(f"{self.worker_url}/healthz")
        return body is not None and json.loads(body).get("running") is True

    @property
    def worker_url(self) -> str:
        return f"http://{self.host}:{self.settings.worker_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.settings.gateway_port}"

    def deptpulse(self, *args: str, stdout: IO[bytes] | int | None = subprocess.PIPE) -> str:
        """Run a deptpulse command; DemoError with its stderr when it fails."""
        command = [str(Path(sys.executable).with_name("deptpulse")), *args]
        result = subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, check=False)
        if result.returncode != 0:
            message = (result.stderr or b"").decode(
                errors="replace"
            ).strip() or f"exit code {result.returncode}"
            raise DemoError(f"`deptpulse {' '.join(args)}` failed: {message}")
        return (result.stdout or b"").decode(errors="replace")

    # -- 2. history and the live scenario ----------------------------------------------------------

    def replay_history(self) -> None:
        from producers.importer import import_file
        from producers.publisher import Publisher
        from producers.simulator import HR_RECRUITING, HR_RECRUITING_DAYS, HR_RECRUITING_RATE_PER_S, history
        from schemas.events import event_to_json

        self.demo_dir.mkdir(parents=True, exist_ok=True)
        path = self.demo_dir / "history.jsonl"
        end = datetime.now(UTC).replace(microsecond=0)
        self.history_end = end
        counts: Counter[str] = Counter()
        began = time.monotonic()
        it_month = history(self.directory, end, self.history_days, HISTORY_RATE, seed=1, scenario=SCENARIO)
        hr_quarter = history(
            self.directory, end, HR_RECRUITING_DAYS, HR_RECRUITING_RATE_PER_S, seed=2, scenario=HR_RECRUITING
        )
        with self.console.status("  simulating"), path.open("wb") as file:
            # One stream in event-time order: the worker takes events over 48 h older than the newest late.
            for event in heapq.merge(it_month, hr_quarter, key=lambda event: event.occurred_at):
                file.write(event_to_json(event) + b"\n")
                counts[event.event_type] += 1
        self.console.print(
            f"  simulated {sum(counts.values()):,} events: {self.history_days} days of {SCENARIO} and "
            f"{HR_RECRUITING_DAYS} of {HR_RECRUITING} ({counts['request.opened']:,} requests, "
            f"{counts['feedback.submitted']:,} CSAT answers, {counts['survey.answered']:,} survey answers, "
            f"{counts['survey.invited']:,} invitations, {counts['action.recorded']:,} action) "
            f"in {time.monotonic() - began:.1f} s -> {path}"
        )
        progress = Progress(
            TextColumn("  {task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
            console=self.console, transient=True,
        )  # fmt: skip
        began = time.monotonic()
        with progress, Publisher.from_settings(self.settings, self.directory) as publisher:
            task = progress.add_task(f"publishing {path.name}", total=path.stat().st_size)
            summary = import_file(path, publisher, progress=lambda read: progress.advance(task, read))
        self.history_published_at = time.monotonic()
        self.history_events = summary.published
        self.console.print(
            f"  published {summary.published:,} events to {self.settings.events_topic} in "
            f"{time.monotonic() - began:.1f} s ({summary.rejected} rejected)"
        )
        if summary.rejected:
            raise DemoError(f"{summary.rejected} history events rejected: see {summary.rejects_path}")

    def catch_up(self) -> None:
        """Until the worker has consumed the history; its gauges are fresh one refresh later."""
        from stream_processors.app import GAUGES_REFRESH_SECONDS

        began = time.monotonic()
        with self.console.status("") as status:
            while (consumed := self.worker_consumed()) < self.history_events:
                reason = self.worker_exited()
                if reason:
                    raise DemoError(f"the worker {reason}")
                if time.monotonic() - began > 120:
                    raise DemoError(
                        f"the worker consumed {consumed:,.0f} of {self.history_events:,} events in 120 s"
                    )
                status.update(f"  worker consumed {consumed:,.0f} of {self.history_events:,} events")
                time.sleep(0.5)
        self.rules_due = time.monotonic() + GAUGES_REFRESH_SECONDS + 1
        self.console.print(f"  the worker consumed all {self.history_events:,} events")

    def worker_exited(self) -> str | None:
        return next((child.exited() for child in self.children if child.name == "worker"), None)

    def run_live(self) -> None:
        from producers.publisher import Publisher
        from producers.simulator import live, simulate
        from schemas.events import event_to_json

        begins = datetime.now(UTC)
        events = simulate(self.directory, begins, timedelta(seconds=self.live_seconds), 4.0, 2, SCENARIO)
        by_source = {source: variable for variable, source in GATEWAY_TOKENS.items() if source}
        routes: Counter[str] = Counter()
        statuses: Counter[int] = Counter()
        with (
            Publisher.from_settings(self.settings, self.directory) as publisher,
            self.console.status("") as status,
        ):
            for event in live(events, rate_per_s=50):
                variable = by_source.get(event.source)
                if variable is not None:
                    code = http_post(
                        f"{self.gateway_url}/v1/events",
                        event_to_json(event),
                        {
                            "Authorization": f"Bearer {self.tokens[variable]}",
                            "Content-Type": "application/json",
                        },
                    )
                    statuses[code] += 1
                    routes[f"gateway ({event.source})"] += 1
                else:
                    publisher.send(event)
                    routes[f"SDK ({event.source})"] += 1
                if not self.rules_loaded and self.rules_due and time.monotonic() >= self.rules_due:
                    self.step(ALERTING_TITLE, self.alerting)
                status.update(
                    f"  live {(datetime.now(UTC) - begins).total_seconds():4.0f}/{self.live_seconds:.0f} s: "
                    + ", ".join(f"{route} {count}" for route, count in sorted(routes.items()))
                    + f" | {self.worker_progress()}"
                )
        self.console.print(
            "  sent " + ", ".join(f"{count} via {route}" for route, count in sorted(routes.items()))
        )
        self.console.print(
            "  gateway answers: "
            + ", ".join(f"{code or 'no answer'} ×{n}" for code, n in sorted(statuses.items()))
        )
        refused = sum(n for code, n in statuses.items() if code != 202)
        if refused:
            raise DemoError(
                f"the gateway did not accept {refused} events; see {self.home / 'logs' / 'gateway.log'}"
            )

    def worker_consumed(self, outcome: str | None = None) -> float:
        """Messages the worker consumed since it started (of one outcome), from its /metrics; -1 when it
        does not answer."""
        from prometheus_client.parser import text_string_to_metric_families

        body = http_get(f"{self.worker_url}/metrics")
        if body is None:
            return -1
        return sum(
            sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
            if sample.name == "deptpulse_events_total" and outcome in (None, sample.labels.get("outcome"))
        )

    def worker_progress(self) -> str:
        processed = self.worker_consumed("processed")
        return "worker /metrics does not answer" if processed < 0 else f"worker processed {processed:,.0f}"

    # -- 3. the alert -----------------------------------------------------------------------------

    def wait_for_alert(self) -> None:
        heads = {PROVIDER: self.head_email(PROVIDER), CUSTOMER: self.head_email(CUSTOMER)}
        deadline = time.monotonic() + self.alert_timeout
        with self.console.status("") as status:
            while True:
                new = self.new_messages()
                reached = {
                    dept for dept, address in heads.items() if any(address in m.envelope_to for m in new)
                }
                if len(reached) == len(heads):
                    break
                reason = self.worker_exited()
                if reason:
                    raise DemoError(f"the worker {reason}")
                if time.monotonic() > deadline:
                    raise DemoError(
                        f"no alert mail for {', '.join(heads[d] for d in heads if d not in reached)} within "
                        f"{self.alert_timeout:.0f} s; {self.alert_states()}; see "
                        f"{self.home / 'logs'} and http://{self.host}:{self.settings.prometheus_port}/alerts"
                    )
                status.update(
                    f"  {self.worker_progress()} | {self.alert_states()} | {len(new)} new mail(s) in {self.outbox}"
                )
                time.sleep(1)
        time.sleep(2)  # mails of the same evaluation arrive together: show them all
        messages = self.new_messages()
        for message in messages:
            self.console.print(f"  [green]✉[/] {message.subject}")
            self.console.print(
                f"      to {', '.join(message.envelope_to)} -> {message.path}", highlight=False
            )
        others = sorted({a for m in messages for a in m.envelope_to} - set(heads.values()))
        self.console.print(
            f"  IT's head {heads[PROVIDER]} and Finance's head {heads[CUSTOMER]} (a copy) have the alert"
            + (f"; also mailed, about their own departments' numbers: {', '.join(others)}" if others else "")
        )

    def head_email(self, department: str) -> str:
        return next(d.head.email for d in self.directory.departments if d.id == department)

    def new_messages(self) -> list[OutboxMessage]:
        return [message for message in read_outbox(self.outbox) if message.path not in self.outbox_before]

    def alert_states(self) -> str:
        """Prometheus' view: how many alerts are pending and firing, by provider department."""
        body = http_get(f"http://{self.host}:{self.settings.prometheus_port}/api/v1/alerts")
        if body is None:
            return "Prometheus does not answer"
        states: Counter[str] = Counter(
            f"{alert['state']} {alert['labels'].get('provider_department', 'pipeline')}"
            for alert in json.loads(body)["data"]["alerts"]
        )
        return "alerts: " + (", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "none yet")

    # -- 4. the scorecard and where things are ------------------------------------------------------

    def report(self) -> None:
        self.console.file.flush()
        self.deptpulse("report", "--provider", PROVIDER, stdout=None)  # straight to the terminal

    def html_report(self) -> None:
        self.reports.mkdir(parents=True, exist_ok=True)
        out = self.reports / f"{PROVIDER}-scorecard.html"
        self.deptpulse("report", "--provider", PROVIDER, "--format", "html", "--out", str(out))
        self.console.print(f"  wrote {out} ({out.stat().st_size:,} bytes)")

    # -- 4b. HR's story: where, why, what was done, did it work ---------------------------------------

    def hr_story(self) -> None:
        """The loop the product serves, on HR's simulated quarter: each step a deptpulse command."""
        from producers.simulator import HR_RECRUITING_DAYS, hr_recruiting_timeline

        assert self.history_end is not None
        timeline = hr_recruiting_timeline(self.directory, self.history_end)
        quarter = self.history_end - timedelta(days=HR_RECRUITING_DAYS)
        before_fix = ("--since", _rfc3339(quarter), "--until", _rfc3339(timeline.action_start))
        self.step(
            "Where: HR's services in the quarter before its fix (deptpulse report --provider hr --by service)",
            lambda: self.hr_where(before_fix),
        )
        self.step(
            "Why: HR's survey questions and what its customers wrote (report --by question, deptpulse themes)",
            lambda: self.hr_why(before_fix),
        )
        self.step(
            "What was done, and did it work (deptpulse surveys, deptpulse actions list)", self.hr_did_it_work
        )
        self.step(
            "HR's scorecard for the quarter as HTML, with its comments",
            lambda: self.hr_html(("--since", _rfc3339(quarter), "--until", _rfc3339(self.history_end or quarter))),
        )

    def hr_where(self, window: tuple[str, ...]) -> None:
        text = self.deptpulse("report", "--provider", HR, "--by", "service", *window)
        self.console.print(text, highlight=False, markup=False, end="")
        marked = [line for line in text.splitlines() if "weakest" in line]
        if not marked or "hr.recruiting" not in marked[0]:
            raise DemoError(f"hr.recruiting is not marked the weakest service: {marked or 'no mark'}")

    def hr_why(self, window: tuple[str, ...]) -> None:
        self.console.print(
            self.deptpulse("report", "--provider", HR, "--by", "question", *window),
            highlight=False, markup=False, end="",
        )  # fmt: skip
        text = self.deptpulse("themes", "--provider", HR, "--top", "5", *window)
        self.console.print(text, highlight=False, markup=False, end="")
        # The table's first row is the first theme (one command, not a second one for JSON).
        first = next((line for line in text.splitlines() if line.startswith("│ 1 ")), "")
        if not any(word in first for word in ("招聘", "recruit", "hiring", "面试", "候选人")):
            raise DemoError(f"the first theme is not the recruiting complaint: {first.strip()!r}")

    def hr_did_it_work(self) -> None:
        self.console.print(self.deptpulse("surveys", "--provider", HR), highlight=False, markup=False, end="")
        text = self.deptpulse("actions", "list", "--provider", HR)
        self.console.print(text, highlight=False, markup=False, end="")
        satisfied = next((line for line in text.splitlines() if "Satisfied share" in line), "")
        if "improved" not in satisfied:
            raise DemoError(f"the recruiting action's satisfied share is not 'improved': {satisfied.strip()!r}")

    def hr_html(self, window: tuple[str, ...]) -> None:
        self.reports.mkdir(parents=True, exist_ok=True)
        out = self.reports / f"{HR}-scorecard.html"
        self.deptpulse("report", "--provider", HR, "--format", "html", "--with-comments", "--out", str(out), *window)
        self.console.print(f"  wrote {out} ({out.stat().st_size:,} bytes)")

    def print_locations(self) -> None:
        self.console.print("[bold cyan]▶ Where to look[/]")
        host, s = self.host, self.settings
        rows = [
            ("worker metrics", f"{self.worker_url}/metrics"),
            ("Prometheus UI", f"http://{host}:{s.prometheus_port}/alerts"),
            ("Alertmanager UI", f"http://{host}:{s.alertmanager_port}"),
            ("gateway API", f"{self.gateway_url}/docs"),
            ("alert mail", str(self.outbox)),
            ("HTML scorecard", str(self.reports / f"{PROVIDER}-scorecard.html")),
            ("HR's scorecard", str(self.reports / f"{HR}-scorecard.html")),
            (
                "Grafana dashboards",
                f"{DASHBOARDS / 'dashboards'} (provisioning: {DASHBOARDS / 'provisioning'})",
            ),
            ("logs", str(self.home / "logs")),
        ]
        for name, where in rows:
            self.console.print(f"  {name:<19} {where}", highlight=False)
        if not self.keep_running:
            self.console.print(
                "  [dim](the URLs answer while the demo runs; --keep-running leaves them up)[/]"
            )

    # -- 5. cleaning up -----------------------------------------------------------------------------

    def cleanup(self) -> None:
        if self.keep_running:
            self.console.print(
                "[bold]--keep-running[/]: everything stays up; `deptpulse stack down` stops the stack, "
                "and the worker, gateway and mail sink are pids "
                + ", ".join(f"{c.name} {c.process.pid}" for c in self.children if c.process)
            )
            return
        self.console.print("[bold cyan]▶ Stopping what the demo started[/]")
        for child in reversed(self.children):
            child.stop()
            self.console.print(f"  {child.name}: stopped")
        if self.prometheus_was_running:  # not ours to stop: give it back its usual rules
            with contextlib.suppress(DemoError):
                self.reload_prometheus(PROMETHEUS_CONFIG)
        if self.started_services:
            stopped = self.stack.down(tuple(self.started_services))
            self.console.print(f"  stack: stopped {', '.join(stopped)}")
        self.check_ports()

    def check_ports(self) -> None:
        s = self.settings
        ours: list[tuple[str, int]] = [(child.name, self.port_of(child.name)) for child in self.children]
        if "kafka" in self.started_services:
            ours += [("kafka", s.kafka_port), ("kafka controller", s.kafka_controller_port)]
        ours += [
            (name, getattr(s, f"{name.replace('-', '_')}_port"))
            for name in ("wecom-relay", "alertmanager", "prometheus")
            if name in self.started_services
        ]
        listening = [
            f"{name} ({port})" for name, port in ours if not port_is_free(s.bind_host or "0.0.0.0", port)
        ]
        if listening:
            self.results.append(
                StepResult("port check", False, 0.0, f"still listening: {', '.join(listening)}")
            )
            self.console.print(f"  [red]still listening: {', '.join(listening)}[/]")
        else:
            self.console.print(
                f"  nothing listens any more on {', '.join(str(port) for _, port in ours) or '(no ports)'}"
            )

    def port_of(self, name: str) -> int:
        return {"mail sink": MAIL_SINK_PORT, "worker": self.settings.worker_port}.get(
            name, self.settings.gateway_port
        )
