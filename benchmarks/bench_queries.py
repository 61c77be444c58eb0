"""Scorecard query latency on embedded ClickHouse (chdb) with 10 million events' worth of rows.

    python -m benchmarks.bench_queries                         # 10M events over 56 days, 10 runs
    python -m benchmarks.bench_queries --events 2000000 --runs 5

Synthetic rows, generated inside ClickHouse (nothing goes through Kafka or the worker): requests
between the example organisation's departments with the simulator's pair weights and service
catalogue, each with its events (open, first reply, pauses, resolution, reopen + re-resolution,
close, CSAT feedback) plus survey answers, about 4.8 events per request. From the same synthetic
events the script writes the three tables the worker writes:

- ``minute_buckets``: bucket rows per (pair, service, minute, Kafka partition), unmerged
  (``optimize_on_insert=0``), as the worker's per-batch deltas are before background merges;
- ``request_facts``: two snapshots per request (opened, then final), as the worker re-writes them;
- ``raw_events``: one row per event with a JSON payload.

The data spans two 28-day windows and the window ends at 09:31, as ``--window 28d`` does, so the
scorecard and its previous window read all of it and every rollup tier (edge minutes, hours,
days) is in play. Timed ``--runs`` times each after one warm-up:

- **scorecard** (one provider, IT, the busiest: overall and per customer) and **matrix** (every
  pair), as the read API computes them (SQL + rows in Python), first on ``minute_buckets`` as the
  migrations leave it, then with the rollup projections of
  :data:`stream_processors.scorecard.queries.ROLLUP_PROJECTIONS_DDL` (applied here unless a
  migration already created them), then after ``OPTIMIZE TABLE ... FINAL``;
- for comparison, the sums as one scan of ``minute_buckets`` and of the ``minute_aggregates`` view;
- **baseline** without pre-aggregation: ``request_facts FINAL`` (counts, exact quantiles, SLA)
  plus ``raw_events FINAL`` (CSAT and NPS from the payloads).

Target (issue 15): median <= 100 ms for the scorecard and the matrix on the parts as inserted,
without relying on background merges (stretch: 50 ms). Where the time goes: docs/performance.md.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from benchmarks import figure, machine, write_json
from deptpulse.settings import EXAMPLE_DIRECTORY, Settings
from producers.simulator import (
    CUSTOMER_WEIGHT,
    PAIR_FACTOR,
    PROVIDER_WEIGHT,
    SERVICE_WEIGHT,
    UNCATEGORISED_SHARE,
)
from schemas.directory import Directory, load_directory
from stream_processors import storage
from stream_processors.core.histogram import LAST
from stream_processors.scorecard.queries import (
    PAIR_SUMS_SQL,
    PROVIDER_PAIR_SUMS_SQL,
    ROLLUP_PROJECTIONS_DDL,
    ClickHouseAggregates,
)
from stream_processors.scorecard.service import ScorecardService
from stream_processors.scorecard.windows import Window

TARGET_MS = 100.0  # issue 15: median, on the parts as inserted (not relying on background merges)
# 1 open + 1 reply + 0.5 pauses + 1 resolution + 0.12 reopen + 0.85 close + 0.35 CSAT = 4.82, of which
# 4.74 fall inside the data's span (the late closes of the last requests are dropped).
EVENTS_PER_REQUEST = 4.74
SURVEY_SHARE = 0.01  # of all events: survey answers
PARTITIONS = 6
END = datetime(2026, 3, 30, 9, 31, tzinfo=UTC)  # a rolling window's end: not on an hour

# --- synthetic data, generated in ClickHouse ----------------------------------------------------


def weighted_keys(directory: Directory) -> tuple[list[str], list[str], list[str], list[float]]:
    """(providers, customers, services, cumulative shares) of every (pair, service) key, weighted
    as the simulator weighs pairs (and services within a provider)."""
    keys: list[tuple[str, str, str, float]] = []
    for customer in directory.departments:
        for provider in directory.departments:
            if customer.id == provider.id:
                continue
            weight = (
                PROVIDER_WEIGHT.get(provider.id, 1.0)
                * CUSTOMER_WEIGHT.get(customer.id, 1.0)
                * PAIR_FACTOR.get((customer.id, provider.id), 1.0)
            )
            services = {s.id: SERVICE_WEIGHT.get(s.id, 1.0) for s in provider.services}
            total = sum(services.values())
            keys.append((provider.id, customer.id, "", weight * (UNCATEGORISED_SHARE if services else 1.0)))
            for service, service_weight in services.items():
                keys.append(
                    (
                        provider.id,
                        customer.id,
                        service,
                        weight * (1 - UNCATEGORISED_SHARE) * service_weight / total,
                    )
                )
    grand = sum(weight for *_, weight in keys)
    cumulative = [value / grand for value in itertools.accumulate(weight for *_, weight in keys)]
    cumulative[-1] = 1.0
    return [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], cumulative


def _uniform(salt: int) -> str:
    """A deterministic uniform (0, 1) per request number."""
    return f"((cityHash64(number, {salt}) % 1000000000) + 0.5) / 1000000000.0"


def _lognormal(median_s: float, sigma: float, salt: int) -> str:
    normal = f"sqrt(-2 * log({_uniform(salt)})) * cos(2 * pi() * {_uniform(salt + 1)})"
    return f"round(exp(log({median_s}) + {sigma} * {normal}))"


def _bucket(expression: str) -> str:
    """stream_processors.core.histogram.bucket_index in SQL: 20 log-spaced buckets per decade."""
    return f"if({expression} < 1, 0, least({LAST}, toUInt16(floor(20 * log10({expression}))) + 1))"


SYNTHETIC_REQUESTS = f"""
CREATE TABLE synthetic_requests ENGINE = MergeTree ORDER BY number AS
SELECT
    number,
    concat('REQ-', toString(number)) AS request_id,
    arrayFirstIndex(c -> c >= {_uniform(1)}, {{cumulative:Array(Float64)}}) AS key_index,
    {{providers:Array(String)}}[key_index] AS provider_department,
    {{customers:Array(String)}}[key_index] AS customer_department,
    {{services:Array(String)}}[key_index] AS service_category,
    addMilliseconds({{start:DateTime64(3, 'UTC')}},
                    intDiv(number * {{span_ms:UInt64}}, {{requests:UInt64}}) + cityHash64(number, 3) % 60000)
        AS opened_at,
    {_lognormal(2400, 1.0, 4)} AS first_response_business_s,
    first_response_business_s + {_lognormal(6 * 3600, 1.0, 6)} AS resolution_business_s,
    addSeconds(opened_at, toInt64(first_response_business_s * 1.8)) AS first_response_at,
    addSeconds(opened_at, toInt64(resolution_business_s * 2.5)) AS resolved_at,
    first_response_business_s <= 4 * 3600 AND resolution_business_s <= 3 * 86400 AS sla_met,
    {_uniform(8)} < 0.25 AS paused,
    {_uniform(9)} < 0.06 AS reopened,
    {_uniform(10)} < 0.85 AS closed,
    {_uniform(11)} < 0.35 AS has_feedback,
    multiIf({_uniform(12)} < 0.55, 5, {_uniform(12)} < 0.80, 4, {_uniform(12)} < 0.90, 3,
            {_uniform(12)} < 0.95, 2, 1) AS csat
FROM numbers({{requests:UInt64}})
"""

SYNTHETIC_EVENTS = """
CREATE TABLE synthetic_events ENGINE = MergeTree ORDER BY (occurred_at) AS
SELECT
    request_id, provider_department, customer_department, service_category,
    event.1 AS event_type, event.2 AS occurred_at, event.3 AS business_s, event.4 AS score,
    event.5 AS first_resolution, sla_met,
    concat(request_id, '-', toString(event.6)) AS event_id
FROM synthetic_requests
ARRAY JOIN arrayFilter(e -> e.7, [
    ('request.opened', opened_at, 0., toUInt8(0), false, 1, true),
    ('request.responded', first_response_at, first_response_business_s, toUInt8(0), false, 2, true),
    ('request.status_changed', addSeconds(opened_at, 60), 0., toUInt8(0), false, 3, paused),
    ('request.status_changed', addSeconds(opened_at, 600), 0., toUInt8(0), false, 4, paused),
    ('request.resolved', resolved_at, resolution_business_s, toUInt8(0), true, 5, true),
    ('request.reopened', addDays(resolved_at, 1), 0., toUInt8(0), false, 6, reopened),
    ('request.resolved', addHours(addDays(resolved_at, 1), 6), resolution_business_s + 14400, toUInt8(0), false,
     7, reopened),
    ('request.closed', addDays(resolved_at, 2), 0., toUInt8(0), false, 8, closed),
    ('feedback.submitted', addHours(resolved_at, 2), 0., toUInt8(csat), false, 9, has_feedback)
]) AS event
UNION ALL
SELECT
    concat('SURVEY-', toString(number)), {providers:Array(String)}[key_index],
    {customers:Array(String)}[key_index], '', 'survey.answered',
    addMilliseconds({start:DateTime64(3, 'UTC')}, intDiv(number * {span_ms:UInt64}, {surveys:UInt64})),
    0., toUInt8(cityHash64(number, 21) % 11), false, false, concat('SURVEY-', toString(number))
FROM (SELECT number, arrayFirstIndex(c -> c >= ((cityHash64(number, 20) % 1000000000) + 0.5) / 1000000000.0,
                                      {cumulative:Array(Float64)}) AS key_index
      FROM numbers({surveys:UInt64}))
"""


def _minute_buckets_insert() -> str:
    responded, resolved = "event_type = 'request.responded'", "event_type = 'request.resolved'"
    return f"""
INSERT INTO minute_buckets
SELECT
    'bucket', provider_department, customer_department, service_category, toStartOfMinute(occurred_at), '', -1,
    0,
    countIf(event_type = 'request.opened'),
    countIf({resolved} AND first_resolution),
    countIf(event_type = 'request.reopened'),
    countIf({responded}),
    sumIf(business_s, {responded}),
    sumIf(round(business_s * 1.8), {responded}),
    sumMapIf(map({_bucket("business_s")}, toInt64(1)), {responded}),
    countIf({resolved}),
    sumIf(business_s, {resolved}),
    sumIf(round(business_s * 2.5), {resolved}),
    sumMapIf(map({_bucket("business_s")}, toInt64(1)), {resolved}),
    countIf({resolved} AND first_resolution AND sla_met),
    countIf({resolved} AND first_resolution AND NOT sla_met),
    countIf(event_type = 'feedback.submitted' AND score = 1),
    countIf(event_type = 'feedback.submitted' AND score = 2),
    countIf(event_type = 'feedback.submitted' AND score = 3),
    countIf(event_type = 'feedback.submitted' AND score = 4),
    countIf(event_type = 'feedback.submitted' AND score = 5),
    countIf(event_type = 'survey.answered' AND score >= 9),
    countIf(event_type = 'survey.answered' AND score BETWEEN 7 AND 8),
    countIf(event_type = 'survey.answered' AND score <= 6)
FROM synthetic_events
GROUP BY provider_department, customer_department, service_category, toStartOfMinute(occurred_at),
         cityHash64(request_id) % {PARTITIONS}
"""


RAW_EVENTS_INSERT = f"""
INSERT INTO raw_events
SELECT
    'deptpulse.events', toUInt32(cityHash64(request_id) % {PARTITIONS}),
    toInt64(rowNumberInAllBlocks()), event_id, event_type, occurred_at, 'jira-sm',
    provider_department, customer_department, service_category, 'P3',
    if(event_type = 'survey.answered', '', request_id),
    concat('{{"schema_version":1,"event_id":"', event_id, '","event_type":"', event_type,
           '","occurred_at":"', toString(occurred_at), '","provider_department":"', provider_department,
           '","customer_department":"', customer_department, '","request_id":"', request_id, '"',
           multiIf(event_type = 'feedback.submitted', concat(',"csat":', toString(score)),
                   event_type = 'survey.answered', concat(',"score":', toString(score)), ''), '}}'),
    occurred_at
FROM synthetic_events
"""

# Columns named: the SLA clock columns of migration 007 keep their defaults ('' reads the clock from
# the status), which the scorecard's baseline does not read.
REQUEST_FACTS_INSERT = """
INSERT INTO request_facts (request_id, provider_department, customer_department, service_category, priority,
    opened_at, first_response_at, resolved_at, closed_at, status, reopen_count, first_response_wall_s,
    first_response_business_s, resolution_wall_s, resolution_business_s, sla_first_response_target_s,
    sla_resolution_target_s, sla_met, last_event_at)
SELECT
    request_id, provider_department, customer_department, service_category, 'P3', opened_at,
    if(snapshot = 0, NULL, first_response_at), if(snapshot = 0, NULL, resolved_at),
    if(snapshot = 1 AND closed, addDays(resolved_at, 2), NULL),
    if(snapshot = 0, 'open', if(closed, 'closed', 'resolved')), if(snapshot = 1 AND reopened, 1, 0),
    if(snapshot = 0, NULL, first_response_business_s * 1.8), if(snapshot = 0, NULL, first_response_business_s),
    if(snapshot = 0, NULL, resolution_business_s * 2.5), if(snapshot = 0, NULL, resolution_business_s),
    14400, 259200, if(snapshot = 0, NULL, sla_met),
    if(snapshot = 0, opened_at, resolved_at)
FROM synthetic_requests
ARRAY JOIN [0, 1] AS snapshot
"""


def generate(client: Client, directory: Directory, events: int, days: int) -> dict[str, int]:
    """Fill minute_buckets, request_facts and raw_events; return row counts."""
    providers, customers, services, cumulative = weighted_keys(directory)
    surveys = int(events * SURVEY_SHARE)
    requests = int((events - surveys) / EVENTS_PER_REQUEST)
    start = END - timedelta(days=days)
    parameters: dict[str, Any] = {
        "providers": providers,
        "customers": customers,
        "services": services,
        "cumulative": cumulative,
        "start": start,
        "span_ms": days * 86_400_000,
        "requests": requests,
        "surveys": surveys,
    }
    for table in ("synthetic_requests", "synthetic_events"):
        client.command(f"DROP TABLE IF EXISTS {table}")
    client.command(SYNTHETIC_REQUESTS, parameters=parameters)
    client.command(SYNTHETIC_EVENTS, parameters=parameters)
    # Events the synthetic lifecycle pushed past the end (late closes) stay out, as in a live system.
    client.command(
        "ALTER TABLE synthetic_events DELETE WHERE occurred_at >= {end:DateTime64(3, 'UTC')}",
        parameters={"end": END},
        settings={"mutations_sync": 2},
    )
    # optimize_on_insert=0: keep the rows a merge would collapse, as the worker's many small inserts do.
    unmerged = {"optimize_on_insert": 0}
    client.command(_minute_buckets_insert(), settings=unmerged)
    client.command(REQUEST_FACTS_INSERT, settings=unmerged)
    client.command(RAW_EVENTS_INSERT)
    counts = {
        table: int(client.command(f"SELECT count() FROM {table}"))  # type: ignore[arg-type]
        for table in ("synthetic_events", "minute_buckets", "request_facts", "raw_events")
    }
    counts["requests"] = requests
    for table in ("synthetic_requests", "synthetic_events"):
        client.command(f"DROP TABLE {table}")
    return counts


# --- the baseline: the same figures without pre-aggregation -------------------------------------

_IN = "{since:DateTime64(3, 'UTC')} <= {column} AND {column} < {until:DateTime64(3, 'UTC')}"
_IN_PREVIOUS = "{previous_since:DateTime64(3, 'UTC')} <= {column} AND {column} < {since:DateTime64(3, 'UTC')}"


def _in(column: str, previous: bool = False) -> str:
    return (_IN_PREVIOUS if previous else _IN).replace("{column}", column)


def _baseline_facts_sql(provider_filter: str) -> str:
    return f"""
SELECT provider_department, customer_department,
    countIf({_in("opened_at")}) AS opened, countIf({_in("opened_at", True)}) AS opened_previous,
    countIf({_in("resolved_at")}) AS resolved,
    sumIf(reopen_count, {_in("resolved_at")}) AS reopened,
    quantilesExactIf(0.5, 0.9)(first_response_business_s, {_in("first_response_at")}) AS first_response,
    quantilesExactIf(0.9)(first_response_business_s, {_in("first_response_at", True)}) AS first_response_previous,
    quantilesExactIf(0.5, 0.9)(resolution_business_s, {_in("resolved_at")}) AS resolution,
    countIf(sla_met AND {_in("resolved_at")}) AS met,
    countIf(NOT sla_met AND {_in("resolved_at")}) AS breached,
    countIf(sla_met AND {_in("resolved_at", True)}) AS met_previous,
    countIf(NOT sla_met AND {_in("resolved_at", True)}) AS breached_previous
FROM request_facts FINAL
WHERE ({{previous_since:DateTime64(3, 'UTC')}} <= opened_at AND opened_at < {{until:DateTime64(3, 'UTC')}}
       OR {{previous_since:DateTime64(3, 'UTC')}} <= resolved_at AND resolved_at < {{until:DateTime64(3, 'UTC')}})
    {provider_filter}
GROUP BY provider_department, customer_department
"""


def _baseline_answers_sql(provider_filter: str) -> str:
    return f"""
SELECT provider_department, customer_department, occurred_at >= {{since:DateTime64(3, 'UTC')}} AS in_window,
    countIf(event_type = 'feedback.submitted') AS csat_count,
    sumIf(JSONExtractInt(payload, 'csat'), event_type = 'feedback.submitted') AS csat_sum,
    countIf(event_type = 'feedback.submitted' AND JSONExtractInt(payload, 'csat') >= 4) AS satisfied,
    countIf(event_type = 'survey.answered' AND JSONExtractInt(payload, 'score') >= 9) AS promoters,
    countIf(event_type = 'survey.answered' AND JSONExtractInt(payload, 'score') <= 6) AS detractors,
    countIf(event_type = 'survey.answered') AS nps_count
FROM raw_events FINAL
WHERE event_type IN ('feedback.submitted', 'survey.answered')
  AND {{previous_since:DateTime64(3, 'UTC')}} <= occurred_at AND occurred_at < {{until:DateTime64(3, 'UTC')}}
  {provider_filter}
GROUP BY provider_department, customer_department, in_window
"""


def baseline(client: Client, window: Window, provider: str | None) -> list[Any]:
    """The scorecard's figures from the raw tables: both queries, rows fetched."""
    parameters: dict[str, Any] = {
        "previous_since": window.previous().since,
        "since": window.since,
        "until": window.until,
    }
    provider_filter = ""
    if provider is not None:
        parameters["provider"], provider_filter = provider, "AND provider_department = {provider:String}"
    facts = client.query(_baseline_facts_sql(provider_filter), parameters=parameters).result_rows
    answers = client.query(_baseline_answers_sql(provider_filter), parameters=parameters).result_rows
    return [facts, answers]


def single_scan(client: Client, window: Window, provider: str | None, source: str) -> list[Any]:
    """The scorecard's sums as ONE minute-tier scan over both windows, of the table or of the view:
    the query before the rollup tiers (no projection can serve it)."""
    queries = PROVIDER_PAIR_SUMS_SQL if provider else PAIR_SUMS_SQL
    sql = queries["minute"]
    if source == "minute_aggregates":
        sql = sql.replace("FROM minute_buckets\nWHERE row_kind = 'bucket'", "FROM minute_aggregates\nWHERE 1")
        assert "minute_aggregates" in sql
    parameters: dict[str, Any] = {
        "since": window.since,
        "minute_from_0": window.previous().since,
        "minute_to_0": window.until,
    }
    for slot in (1, 2, 3):
        parameters[f"minute_from_{slot}"] = parameters[f"minute_to_{slot}"] = datetime.fromtimestamp(0, UTC)
    if provider:
        parameters["provider"] = provider
    return list(
        client.query(sql, parameters=parameters, settings={"optimize_use_projections": 0}).result_rows
    )


def parts(client: Client) -> int:
    return int(
        client.command(  # type: ignore[arg-type]
            "SELECT count() FROM system.parts "
            "WHERE database = currentDatabase() AND table = 'minute_buckets' AND active"
        )
    )


def has_rollups(client: Client) -> bool:
    names = client.query(
        "SELECT name FROM system.projections WHERE database = currentDatabase() AND table = 'minute_buckets'"
    ).result_rows
    return {"hourly", "daily"} <= {name for (name,) in names}


# --- timing --------------------------------------------------------------------------------------


def timed(run: Callable[[], object], runs: int) -> list[float]:
    run()  # warm-up: caches, first-use compilation
    durations = []
    for _ in range(runs):
        began = time.perf_counter()
        run()
        durations.append((time.perf_counter() - began) * 1000)
    return durations


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000, help="Events' worth of rows to generate.")
    parser.add_argument(
        "--days", type=int, default=56, help="Days the data spans, ending at the window's end."
    )
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--provider", default="it", help="The provider of the scorecard query.")
    parser.add_argument("--keep", type=Path, default=None, help="chdb path to keep (default: a temp dir).")
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the figures to this file (for benchmarks.run_all)"
    )
    args = parser.parse_args()
    directory = load_directory(EXAMPLE_DIRECTORY)
    window = Window(END - timedelta(days=28), END)  # as `--window 28d` at 09:31: every tier in play
    provider = args.provider
    timings: dict[str, list[float]] = {}

    with tempfile.TemporaryDirectory(prefix="bench-queries-") as temporary:
        path = args.keep or Path(temporary) / "chdb"
        client = storage.connect(
            Settings(clickhouse_url=None, clickhouse_path=path, clickhouse_database="bench")
        )
        storage.migrate(client)
        for table in ("minute_buckets", "request_facts", "raw_events"):
            client.command(f"TRUNCATE TABLE {table}")
        print(f"generating {args.events:,} events' worth of rows over {args.days} days in chdb at {path} ...")
        began = time.perf_counter()
        counts = generate(client, directory, args.events, args.days)
        print(
            f"  {counts['synthetic_events']:,} events of {counts['requests']:,} requests -> "
            f"minute_buckets {counts['minute_buckets']:,} rows, request_facts {counts['request_facts']:,}, "
            f"raw_events {counts['raw_events']:,} ({time.perf_counter() - began:.0f} s)"
        )
        service = ScorecardService(ClickHouseAggregates(client), directory)
        print(
            f"{machine()}; window {window.since:%Y-%m-%d %H:%M} - {window.until:%Y-%m-%d %H:%M} UTC + the 28 days before"
        )
        print(
            f"{args.runs} runs each after a warm-up; scorecard and matrix = the read API's work (SQL + rows in Python)"
        )

        def measure(key: str, label: str, run: Callable[[], object]) -> None:
            timings[key] = durations = timed(run, args.runs)
            print(
                f"  {label:<66} median {statistics.median(durations):8.1f} ms   max {max(durations):8.1f} ms"
            )

        # Background merges (which rebuild projections) would compete with the queries on 2 CPUs:
        # measure with them stopped, over the parts as inserted, then merged (OPTIMIZE) at the end.
        client.command("SYSTEM STOP MERGES")
        rollups_from_migrations = has_rollups(client)
        if not rollups_from_migrations:
            print(
                f"minute_buckets as the migrations leave it (no rollup projections; {parts(client)} parts):"
            )
            measure(
                "scorecard",
                f"scorecard {provider}: tiers on minute_buckets",
                lambda: service.scorecard(window, provider),
            )
            measure("matrix", "matrix: tiers on minute_buckets", lambda: service.matrix(window))
            measure(
                "scorecard_scan",
                f"scorecard {provider}: one scan of minute_buckets",
                lambda: single_scan(client, window, provider, "minute_buckets"),
            )
            measure(
                "matrix_scan",
                "matrix: one scan of minute_buckets",
                lambda: single_scan(client, window, None, "minute_buckets"),
            )
            measure(
                "scorecard_view",
                f"scorecard {provider}: one scan of the minute_aggregates view",
                lambda: single_scan(client, window, provider, "minute_aggregates"),
            )
            measure(
                "matrix_view",
                "matrix: one scan of the minute_aggregates view",
                lambda: single_scan(client, window, None, "minute_aggregates"),
            )
            began = time.perf_counter()
            client.command("SYSTEM START MERGES")  # MATERIALIZE PROJECTION is a mutation: it needs them
            for statement in ROLLUP_PROJECTIONS_DDL:
                client.command(statement, settings={"mutations_sync": 2})
            client.command("SYSTEM STOP MERGES")
            print(
                f"with the proposed rollup projections (ROLLUP_PROJECTIONS_DDL, built in {time.perf_counter() - began:.1f} s; "
                f"{parts(client)} parts):"
            )
        else:
            print("with the rollup projections the migrations created:")
        measure(
            "scorecard_rollups",
            f"scorecard {provider}: tiers, day/hour tiers from projections",
            lambda: service.scorecard(window, provider),
        )
        measure(
            "matrix_rollups", "matrix: tiers, day/hour tiers from projections", lambda: service.matrix(window)
        )
        measure(
            "timeseries_rollups",
            f"time series {provider} (28 daily points)",
            lambda: service.timeseries(window, provider),
        )
        print("without pre-aggregation (baseline):")
        measure(
            "scorecard_baseline",
            f"scorecard {provider}: request_facts + raw_events FINAL",
            lambda: baseline(client, window, provider),
        )
        measure(
            "matrix_baseline",
            "matrix: request_facts + raw_events FINAL",
            lambda: baseline(client, window, None),
        )
        client.command("SYSTEM START MERGES")
        client.command("OPTIMIZE TABLE minute_buckets FINAL")
        client.command("SYSTEM STOP MERGES")
        merged_rows = int(client.command("SELECT count() FROM minute_buckets"))  # type: ignore[arg-type]
        print(
            f"after OPTIMIZE TABLE minute_buckets FINAL ({merged_rows:,} rows: what background merges converge to):"
        )
        measure(
            "scorecard_merged",
            f"scorecard {provider}: tiers, projections",
            lambda: service.scorecard(window, provider),
        )
        measure("matrix_merged", "matrix: tiers, projections", lambda: service.matrix(window))

        # Both paths count the same CSAT answers (they come from the same synthetic events).
        rows = service.scorecard(window, provider)
        _, answers = baseline(client, window, provider)
        raw_csat = sum(row[3] for row in answers if row[2])
        assert rows[0].csat_count == raw_csat, (rows[0].csat_count, raw_csat)
        print(f"check: {provider}'s CSAT answers in the window agree on both paths ({raw_csat:,})")
        client.close()

    print(f"\nsummary, median / max ms (target: median <= {TARGET_MS:.0f} ms, parts as inserted):")
    for name in ("scorecard", "matrix"):
        fast, slow = timings[f"{name}_rollups"], timings[f"{name}_baseline"]
        verdict = "OK" if statistics.median(fast) <= TARGET_MS else "OVER TARGET"
        line = (
            f"  {name:<10} pre-aggregated {statistics.median(fast):7.1f} / {max(fast):7.1f} {verdict:<11}  "
            f"baseline {statistics.median(slow):8.1f} / {max(slow):8.1f}  "
            f"= {statistics.median(slow) / statistics.median(fast):,.0f}x the median"
        )
        if name in timings:
            line += f"  (no projections: {statistics.median(timings[name]):.1f} / {max(timings[name]):.1f})"
        print(line)
    if args.json:
        write_json(
            args.json,
            "queries",
            _figures(timings, provider),
            events=counts["synthetic_events"],
            days=args.days,
            runs=args.runs,
        )


def _figures(timings: dict[str, list[float]], provider: str) -> list[dict[str, object]]:
    """The run's figures for benchmarks.run_all: pre-aggregated against the raw tables, per query."""
    baseline_name = "request_facts + raw_events FINAL (no pre-aggregation)"
    figures = []
    for name, what in (
        ("scorecard", f"28-day scorecard of {provider}"),
        ("matrix", "28-day matrix, every pair"),
    ):
        for statistic, measure in (("median", statistics.median), ("max", max)):
            for key, how in (
                (f"{name}_rollups", "minute_buckets + rollup projections"),
                (f"{name}_merged", "minute_buckets + rollup projections, merged"),
                (name, "minute_buckets, no projections"),
            ):
                if key in timings:
                    figures.append(
                        figure(
                            f"{what}: {how}, {statistic}",
                            measure(timings[key]),
                            "ms",
                            better="lower",
                            baseline=measure(timings[f"{name}_baseline"]),
                            baseline_name=baseline_name,
                            # The target is the median on the parts as inserted, not after merges.
                            target=f"<= {TARGET_MS:.0f} ms"
                            if (statistic, key) == ("median", f"{name}_rollups")
                            else None,
                        )
                    )
    return figures


if __name__ == "__main__":
    main()
