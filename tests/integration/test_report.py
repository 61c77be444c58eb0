"""`deptpulse report` on real embedded ClickHouse (chdb): simulated events, processed by the core,
written as minute_buckets deltas, must give the same scorecard as a straightforward computation
over the same events.

The reference counts requests, CSAT and NPS answers from the events themselves; durations and SLA
verdicts come from one RequestTracker per request (the lifecycle rules are the core's, tested on
their own), so what is checked here is everything after the core: the delta rows, the SQL sums and
sumMaps, the merge into windows, the histogram percentiles (within their stated relative error),
the small-sample rule and the changes against the previous window.
"""

from __future__ import annotations

import csv
import io
import json
import math
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from clickhouse_connect.driver.client import Client

from deptpulse.cli import main
from deptpulse.settings import EXAMPLE_DIRECTORY, Settings
from producers.simulator import simulate
from schemas.directory import Directory, load_directory
from schemas.events import (
    ActionRecorded,
    Event,
    FeedbackSubmitted,
    RequestOpened,
    SurveyAnswered,
    SurveyInvited,
)
from stream_processors import storage
from stream_processors.core import BucketKey, MinuteAggregate, PartitionProcessor
from stream_processors.core.aggregates import SampleKind
from stream_processors.core.histogram import MAX_RELATIVE_ERROR, nearest_rank
from stream_processors.core.lifecycle import LifecycleRules, RequestTracker
from stream_processors.reads import read_endpoints
from stream_processors.scorecard.queries import ROLLUP_PROJECTIONS_DDL, ClickHouseAggregates
from stream_processors.scorecard.read_api import ReadApi
from stream_processors.scorecard.rows import ROW_FIELDS
from stream_processors.scorecard.service import ScorecardService
from stream_processors.scorecard.windows import Window
from stream_processors.sinks.clickhouse import BUCKET_COLUMNS
from tests.integration.conftest import free_ports
from tests.read_api_server import serving

pytestmark = pytest.mark.integration

START = datetime(2026, 3, 12, tzinfo=UTC)  # a Thursday: the window below holds a pulse survey (Mon 16)
DAYS = 6
SINCE, UNTIL = START + timedelta(days=3), START + timedelta(days=6)  # previous window: days 0-3


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- loading simulated events into minute_buckets, as the worker does ---------------------------


def insert_deltas(client: Client, deltas: dict[BucketKey, MinuteAggregate]) -> None:
    """One INSERT of a batch's deltas (bucket rows), the way the worker's sink writes them."""
    rows = [
        [
            *("bucket", key.provider_department, key.customer_department, key.service_category),
            *(key.bucket_start, "", -1, 0, *aggregate.to_row()),
        ]
        for key, aggregate in deltas.items()
    ]
    client.insert("minute_buckets", rows, column_names=BUCKET_COLUMNS)


def load_simulation(
    client: Client,
    directory: Directory,
    *,
    start: datetime = START,
    days: int = DAYS,
    rate: float = 0.05,
    seed: int = 3,
    scenario: str = "it-degradation",
    batch: int = 500,
) -> list[Event]:
    """Migrate the test database, simulate ``days`` of events, process them in batches with the core
    and insert every batch's deltas; the events are returned for the reference computation."""
    storage.migrate(client)
    events = list(simulate(directory, start, timedelta(days=days), rate, seed, scenario))
    processor = PartitionProcessor(directory)
    now = start + timedelta(days=days)
    for first in range(0, len(events), batch):
        result = processor.process_batch(enumerate(events[first : first + batch], start=first), now)
        assert not result.dead_letters, result.dead_letters[:3]
        insert_deltas(client, result.deltas)
    return events


# --- the straightforward computation over the same events ---------------------------------------


@dataclass
class Expected:
    opened: int = 0
    resolved: int = 0
    reopened: int = 0
    csat: list[int] = field(default_factory=list)
    nps: list[int] = field(default_factory=list)
    sla_met: int = 0
    sla_breached: int = 0
    first_response_s: list[float] = field(default_factory=list)
    resolution_s: list[float] = field(default_factory=list)


Key = tuple[str, str | None]  # (provider, customer); customer None: the provider overall


def reference(
    events: list[Event], directory: Directory, since: datetime, until: datetime, by: str = "customer"
) -> dict[Key, Expected]:
    """Expected figures per (provider, customer), or per (provider, service) with ``by="service"``
    ('' for events without a service); (provider, None) is the provider overall."""
    expected: dict[Key, Expected] = defaultdict(Expected)
    service_of = {e.request_id: e.service_category or "" for e in events if isinstance(e, RequestOpened)}

    def targets(provider: str, customer: str, service: str = "") -> list[Expected]:
        second = service if by == "service" else customer
        return [expected[(provider, second)], expected[(provider, None)]]

    def inside(moment: datetime) -> bool:
        return since <= moment < until

    opened = {e.request_id: e for e in events if isinstance(e, RequestOpened)}
    for event in events:
        if not inside(event.occurred_at):
            continue
        if isinstance(event, RequestOpened):
            for target in targets(
                event.provider_department, event.customer_department, service_of[event.request_id]
            ):
                target.opened += 1
        elif isinstance(event, FeedbackSubmitted):
            open_event = opened[event.request_id]
            for target in targets(
                open_event.provider_department, open_event.customer_department, service_of[event.request_id]
            ):
                target.csat.append(event.csat)
        elif isinstance(event, SurveyAnswered):
            for target in targets(
                event.provider_department, event.customer_department, event.service_category or ""
            ):
                target.nps.append(event.score)
    # Resolutions, reopens, SLA and durations: replay each request's own events through a tracker.
    rules = LifecycleRules(directory)
    trackers: dict[str, RequestTracker] = {}
    for event in events:
        if isinstance(event, SurveyAnswered | FeedbackSubmitted | SurveyInvited | ActionRecorded):
            continue  # scores are counted above; records are not aggregated
        if isinstance(event, RequestOpened) and event.request_id not in trackers:
            trackers[event.request_id] = RequestTracker(event, rules)
        else:
            trackers[event.request_id].apply(event)
    for tracker in trackers.values():
        for (provider, customer, service, minute), sample in tracker.entries:
            if not inside(datetime.fromtimestamp(minute, UTC)):
                continue
            for target in targets(provider, customer, service):
                kind = sample.kind
                if kind == SampleKind.FIRST_RESPONSE:
                    target.first_response_s.append(sample.business_s)
                elif kind in (SampleKind.FIRST_RESOLUTION, SampleKind.RESOLUTION):
                    target.resolution_s.append(sample.business_s)
                    target.resolved += kind == SampleKind.FIRST_RESOLUTION
                elif kind == SampleKind.REOPENED:
                    target.reopened += 1
                elif kind == SampleKind.SLA_MET:
                    target.sla_met += 1
                elif kind == SampleKind.SLA_BREACHED:
                    target.sla_breached += 1
    return expected


def exact_quantile(samples: list[float], q: float) -> float | None:
    return sorted(samples)[nearest_rank(q, len(samples)) - 1] if samples else None


def assert_quantile(reported: float | None, samples: list[float], q: float) -> None:
    exact = exact_quantile(samples, q)
    if exact is None:
        assert reported is None
    elif exact < 1:
        assert reported == 0.0
    else:
        assert reported is not None
        assert abs(reported - exact) <= MAX_RELATIVE_ERROR * exact + 1e-9, (reported, exact)


def csat_avg(scores: list[int]) -> float | None:
    return sum(scores) / len(scores) if scores else None


def nps_of(scores: list[int]) -> float | None:
    if not scores:
        return None
    promoters = sum(score >= 9 for score in scores)
    detractors = sum(score <= 6 for score in scores)
    return 100 * (promoters - detractors) / len(scores)


def assert_row_matches(row: dict[str, Any], now: Expected, before: Expected, directory: Directory) -> None:
    policy = directory.policy_for(row["provider_department"])
    where = f"{row['provider_department']} -> {row['customer_department']}"
    assert row["requests_opened"] == now.opened, where
    assert row["requests_resolved"] == now.resolved, where
    assert row["requests_reopened"] == now.reopened, where
    assert row["requests_opened_change"] == now.opened - before.opened, where
    assert row["first_response_count"] == len(now.first_response_s), where
    assert row["resolution_count"] == len(now.resolution_s), where
    for name, samples in (("first_response", now.first_response_s), ("resolution", now.resolution_s)):
        assert_quantile(row[f"{name}_p50_s"], samples, 0.5)
        assert_quantile(row[f"{name}_p90_s"], samples, 0.9)
    assert (row["sla_met"], row["sla_breached"]) == (now.sla_met, now.sla_breached), where
    sla_count = now.sla_met + now.sla_breached
    assert row["sla_insufficient"] == (sla_count < policy.sla_min_sample), where
    if not row["sla_insufficient"]:
        assert row["sla_attainment"] == pytest.approx(now.sla_met / sla_count)
    else:
        assert row["sla_attainment"] is None
    assert row["csat_count"] == len(now.csat), where
    assert row["csat_insufficient"] == (len(now.csat) < policy.csat_min_sample), where
    if row["csat_insufficient"]:
        assert row["csat_avg"] is None and row["csat_satisfied_share"] is None, where
        assert row["csat_avg_change"] is None
    else:
        # Exact CSAT sums: the average times the count gives back the integer sum of the answers.
        assert round(row["csat_avg"] * row["csat_count"], 6) == sum(now.csat), where
        satisfied = sum(score >= 4 for score in now.csat)
        assert row["csat_satisfied_share"] == pytest.approx(satisfied / len(now.csat))
        assert row["csat_satisfied_share_lower95"] <= row["csat_satisfied_share"]
        previous_avg = csat_avg(before.csat) if len(before.csat) >= policy.csat_min_sample else None
        if previous_avg is None:
            assert row["csat_avg_change"] is None
        else:
            assert row["csat_avg_change"] == pytest.approx(sum(now.csat) / len(now.csat) - previous_avg)
    assert row["nps_count"] == len(now.nps), where
    assert row["nps_insufficient"] == (len(now.nps) < policy.nps_min_sample), where
    if not row["nps_insufficient"]:
        assert row["nps"] == pytest.approx(nps_of(now.nps))
        assert row["nps_margin95"] > 0
    else:
        assert row["nps"] is None and row["nps_margin95"] is None


# --- running the CLI in this process ------------------------------------------------------------


def env_for(settings: Settings) -> dict[str, str | None]:
    """The environment of `deptpulse report` on ``settings``' chdb database, with no worker listening."""
    [unused_port] = free_ports(1)
    return {
        "DEPTPULSE_CLICKHOUSE_URL": None,
        "DEPTPULSE_CLICKHOUSE_PATH": str(settings.chdb_path),
        "DEPTPULSE_CLICKHOUSE_DATABASE": settings.clickhouse_database,
        "DEPTPULSE_DIRECTORY_PATH": str(EXAMPLE_DIRECTORY),
        "DEPTPULSE_BIND_HOST": "127.0.0.1",
        "DEPTPULSE_WORKER_PORT": str(unused_port),
    }


def report(env: dict[str, str | None], *args: str) -> Result:
    result = CliRunner().invoke(main, ["report", *args], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory(EXAMPLE_DIRECTORY)


@pytest.fixture(scope="module")
def simulated(chdb_path: Path, directory: Directory) -> Iterator[tuple[Settings, list[Event]]]:
    """A database of this module's own on the session's chdb path, loaded once with the simulation
    (the tests below only read it); its Settings and the events."""
    settings = Settings(
        clickhouse_url=None,
        clickhouse_path=chdb_path,
        clickhouse_database=f"test_report_{uuid.uuid4().hex[:8]}",
    )
    client = storage.connect(settings)
    try:
        yield settings, load_simulation(client, directory)
    finally:
        client.command(f"DROP DATABASE IF EXISTS {settings.clickhouse_database} SYNC")
        client.close()


@pytest.fixture
def events(simulated: tuple[Settings, list[Event]]) -> list[Event]:
    return simulated[1]


@pytest.fixture
def cli_env(simulated: tuple[Settings, list[Event]]) -> dict[str, str | None]:
    return env_for(simulated[0])


WINDOW_ARGS = ("--since", rfc3339(SINCE), "--until", rfc3339(UNTIL))


def test_json_report_equals_a_straightforward_computation_over_the_events(
    events: list[Event], directory: Directory, cli_env: dict[str, str | None]
) -> None:
    rows = json.loads(report(cli_env, "--format", "json", *WINDOW_ARGS).stdout)

    now = reference(events, directory, SINCE, UNTIL)
    before = reference(events, directory, SINCE - (UNTIL - SINCE), SINCE)
    # Every provider has its overall row, in directory order, then its customers' rows.
    overall = [row["provider_department"] for row in rows if row["customer_department"] is None]
    assert overall == directory.department_ids()
    pairs = {(row["provider_department"], row["customer_department"]) for row in rows}
    assert {key for key, value in now.items() if value != Expected()} <= pairs
    for row in rows:
        assert list(row) == list(ROW_FIELDS)
        assert (row["since"], row["until"]) == (rfc3339(SINCE), rfc3339(UNTIL))
        key = (row["provider_department"], row["customer_department"])
        assert_row_matches(row, now.get(key, Expected()), before.get(key, Expected()), directory)
    # The data exercises both sides of the small-sample rule, and a real change.
    assert any(row["csat_insufficient"] for row in rows) and any(not row["csat_insufficient"] for row in rows)
    assert any(row["nps"] is not None for row in rows)
    it_finance = next(
        r for r in rows if (r["provider_department"], r["customer_department"]) == ("it", "finance")
    )
    assert it_finance["first_response_p90_s_change"] > 0  # the it-degradation scenario's second half


def test_rows_by_service_equal_a_straightforward_computation_over_the_events(
    events: list[Event], directory: Directory, cli_env: dict[str, str | None]
) -> None:
    rows = json.loads(report(cli_env, "--format", "json", "--by", "service", *WINDOW_ARGS).stdout)

    now = reference(events, directory, SINCE, UNTIL, by="service")
    before = reference(events, directory, SINCE - (UNTIL - SINCE), SINCE, by="service")
    keys = {(row["provider_department"], row["service_category"]) for row in rows}
    assert {key for key, value in now.items() if value != Expected()} <= keys
    assert any(service == "" for _, service in keys if service is not None)  # events without a service
    assert len({service for _, service in keys if service}) >= 3
    for row in rows:
        assert row["customer_department"] is None
        key = (row["provider_department"], row["service_category"])
        assert_row_matches(row, now.get(key, Expected()), before.get(key, Expected()), directory)

    table = report(cli_env, "--by", "service", "--provider", "it", *WINDOW_ARGS).stdout
    assert "Service" in table and "it.access" in table
    csv_rows = list(
        csv.DictReader(
            io.StringIO(report(cli_env, "--format", "csv", "--by", "service", *WINDOW_ARGS).stdout)
        )
    )
    assert [(r["provider_department"], r["service_category"]) for r in csv_rows] == [
        (r["provider_department"], r["service_category"] or "") for r in rows
    ]


def test_an_unknown_service_or_provider_is_refused_with_the_valid_ids(cli_env: dict[str, str | None]) -> None:
    result = CliRunner().invoke(main, ["report", "--provider", "marketing", "--by", "service"], env=cli_env)
    assert result.exit_code == 2 and "known are it, hr" in result.output


def test_provider_and_customer_filters(events: list[Event], cli_env: dict[str, str | None]) -> None:
    rows = json.loads(
        report(cli_env, "--format", "json", "--provider", "it", "--customer", "finance", *WINDOW_ARGS).stdout
    )

    assert [(r["provider_department"], r["customer_department"]) for r in rows] == [
        ("it", None),
        ("it", "finance"),
    ]


def test_csv_has_the_json_fields_and_values(events: list[Event], cli_env: dict[str, str | None]) -> None:
    as_json = json.loads(report(cli_env, "--format", "json", "--provider", "hr", *WINDOW_ARGS).stdout)
    as_csv = list(
        csv.DictReader(
            io.StringIO(report(cli_env, "--format", "csv", "--provider", "hr", *WINDOW_ARGS).stdout)
        )
    )

    assert len(as_csv) == len(as_json)
    for row, expected in zip(as_csv, as_json, strict=True):
        assert list(row) == list(ROW_FIELDS)
        assert row["requests_opened"] == str(expected["requests_opened"])
        assert row["csat_avg"] == ("" if expected["csat_avg"] is None else str(expected["csat_avg"]))
        assert row["csat_insufficient"] == str(expected["csat_insufficient"]).lower()


def test_table_and_html_name_the_departments(
    events: list[Event], cli_env: dict[str, str | None], tmp_path: Path
) -> None:
    table = report(cli_env, "--provider", "hr", *WINDOW_ARGS).stdout
    assert "人力资源部 (hr): all customers" in table
    page = tmp_path / "hr.html"

    report(cli_env, "--format", "html", "--provider", "hr", "--out", str(page), *WINDOW_ARGS)

    html = page.read_text(encoding="utf-8")
    assert "人力资源部" in html and html.count("<svg") >= 6  # 4 trend charts, 2 matrices
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched


def test_a_window_ending_now_reports_the_empty_present(
    events: list[Event], cli_env: dict[str, str | None]
) -> None:
    # The simulated month is in 2026-03; a 1h window ending now has nothing, and says so with zeros.
    rows = json.loads(report(cli_env, "--format", "json", "--window", "1h", "--provider", "it").stdout)

    assert rows[0]["requests_opened"] == 0 and rows[0]["csat_insufficient"] is True
    assert rows[0]["csat_avg"] is None and rows[0]["csat_avg_change"] is None


def test_the_report_fails_clearly_without_the_schema(
    clickhouse_client: Client, clickhouse_settings: Settings
) -> None:
    result = CliRunner().invoke(main, ["report", "--format", "json"], env=env_for(clickhouse_settings))

    assert result.exit_code == 2
    assert "no minute_buckets table" in result.output and "Traceback" not in result.output


# --- the read API: the path the report takes while a worker holds the chdb path -----------------


@pytest.fixture
def read_api_port(
    simulated: tuple[Settings, list[Event]], directory: Directory
) -> Iterator[tuple[int, list[str]]]:
    """The read API on a stdlib HTTP server in a thread (a stand-in for the worker's web server);
    yields its port and the paths it served."""
    client = storage.connect(simulated[0])
    api = ReadApi(
        ScorecardService(ClickHouseAggregates(client), directory),
        directory,
        endpoints=read_endpoints(client, directory, simulated[0]),
    )
    served: list[str] = []
    try:
        with serving(api, served) as port:
            yield port, served
    finally:
        client.close()


def test_the_report_asks_the_read_api_when_a_worker_listens(
    read_api_port: tuple[int, list[str]], cli_env: dict[str, str | None], tmp_path: Path
) -> None:
    port, served = read_api_port
    direct = json.loads(report(cli_env, "--format", "json", *WINDOW_ARGS).stdout)
    env = cli_env | {"DEPTPULSE_WORKER_PORT": str(port)}

    via_api = json.loads(report(env, "--format", "json", *WINDOW_ARGS).stdout)
    report(env, "--format", "html", "--provider", "it", "--out", str(tmp_path / "it.html"), *WINDOW_ARGS)

    by_service = json.loads(report(env, "--format", "json", "--by", "service", *WINDOW_ARGS).stdout)

    assert via_api == direct
    assert by_service == json.loads(
        report(cli_env, "--format", "json", "--by", "service", *WINDOW_ARGS).stdout
    )
    assert served == [
        "/api/v1/scorecard",
        "/api/v1/scorecard",
        "/api/v1/services",
        "/api/v1/matrix",
        "/api/v1/timeseries",
        "/api/v1/questions",
        "/api/v1/surveys",
        "/api/v1/actions",
        "/api/v1/at-risk",
        "/api/v1/services",
    ]


def test_the_read_api_answers_a_timeseries_that_adds_up_to_the_window(
    simulated: tuple[Settings, list[Event]], directory: Directory
) -> None:
    client = storage.connect(simulated[0])
    try:
        api = ReadApi(ScorecardService(ClickHouseAggregates(client), directory), directory)
        params = {"provider": "it", "since": rfc3339(SINCE), "until": rfc3339(SINCE + timedelta(days=2))}
        status, series = api.handle("/api/v1/timeseries", params)
        status_rows, scorecard = api.handle("/api/v1/scorecard", params)
    finally:
        client.close()

    assert (status, status_rows) == (200, 200)
    assert series["step_seconds"] == 3600 and len(series["points"]) == 48
    overall = scorecard["rows"][0]
    assert sum(p["requests_opened"] for p in series["points"]) == overall["requests_opened"]
    assert sum(p["csat_count"] for p in series["points"]) == overall["csat_count"]
    assert sum(p["sla_met"] for p in series["points"]) == overall["sla_met"]
    assert scorecard["previous_window"] == {
        "widened": False,
        "since": (SINCE - timedelta(days=2)).isoformat(),
        "until": SINCE.isoformat(),
    }
    assert math.isclose(
        sum((p["csat_avg"] or 0) * p["csat_count"] for p in series["points"]),
        overall["csat_avg"] * overall["csat_count"],
    )


def test_reported_counts_cover_every_event_type(events: list[Event]) -> None:
    # The simulation is rich enough for the comparisons above to mean something.
    kinds = Counter(event.event_type for event in events)
    assert all(kinds[kind] > 50 for kind in ("request.opened", "feedback.submitted", "survey.answered"))
    assert kinds["request.reopened"] > 10


# --- the rollup projections: the same answers, from far fewer rows -------------------------------


def test_the_rollup_projections_give_the_same_answers(
    clickhouse_client: Client, clickhouse_settings: Settings, directory: Directory
) -> None:
    load_simulation(clickhouse_client, directory)
    env = env_for(clickhouse_settings)
    # Ragged bounds: every tier (edge minutes, hours, whole days) is in play in both windows.
    since, until = datetime(2026, 3, 14, 9, 31, tzinfo=UTC), datetime(2026, 3, 17, 13, 7, tzinfo=UTC)
    args = ("--since", rfc3339(since), "--until", rfc3339(until))
    service = ScorecardService(ClickHouseAggregates(clickhouse_client), directory)
    window = Window(since, until)
    before = (
        report(env, "--format", "json", *args).stdout,
        service.matrix(window),
        service.timeseries(window, "it"),
    )

    for statement in ROLLUP_PROJECTIONS_DDL:
        clickhouse_client.command(statement, settings={"mutations_sync": 2})
    after = (
        report(env, "--format", "json", *args).stdout,
        service.matrix(window),
        service.timeseries(window, "it"),
    )

    assert after == before
    table = f"{clickhouse_settings.clickhouse_database}.minute_buckets"
    for query, tiers in (
        (ClickHouseAggregates.pair_sums_query(window, "it"), ("minutely", "hourly", "daily")),
        (ClickHouseAggregates.series_sums_query(window, "it"), ("minutely", "hourly")),
    ):
        explained = clickhouse_client.query(f"EXPLAIN {query.sql}", parameters=query.parameters)
        reads = [row[0].strip(" │└─") for row in explained.result_rows if "ReadFromMergeTree" in row[0]]
        # Choosing a projection is cost-based: on this little data the table may serve edge minutes.
        assert reads[0] in ("ReadFromMergeTree (minutely)", f"ReadFromMergeTree ({table})"), reads
        assert reads[1:] == [f"ReadFromMergeTree ({name})" for name in tiers[1:]], reads
