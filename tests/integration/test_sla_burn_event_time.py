"""Burn rates in event time: SLA verdicts written by the core to chdb, read back with the worker's
query (``sla_verdicts``), exported by its gauges, and judged by the generated rules in promtool.

A replayed month of history lands in the windows of its own dates, so only its last hours count;
a verdict the core corrects (a breach turned into a met SLA by a reply that arrives late) counts
once, as the corrected verdict.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from clickhouse_connect.driver.client import Client
from prometheus_client import CollectorRegistry

from deptpulse.settings import EXAMPLE_DIRECTORY, REPO_ROOT
from schemas import metric_names
from schemas.directory import load_directory
from schemas.events import Event, validate_event
from schemas.observability import RULES_DIR
from stream_processors import storage
from stream_processors.core import PartitionProcessor
from stream_processors.metrics import BURN_WINDOWS, Metrics, SlaVerdictGauges, window_starts
from stream_processors.sinks.breakdowns import sla_verdicts
from tests.integration.test_report import insert_deltas, load_simulation, reference

pytestmark = pytest.mark.integration

DIRECTORY = load_directory(EXAMPLE_DIRECTORY)
RULES = REPO_ROOT / "deploy" / RULES_DIR
BURN_ALERTS = ("DeptpulseSlaBudgetBurnFast", "DeptpulseSlaBudgetBurnSlow")
# A Wednesday afternoon in Berlin: every department is at work, so the short windows hold verdicts.
REPLAY_END = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)

Counts = Mapping[str, Mapping[str, tuple[int, int]]]  # window -> provider -> (met, breached)


def promtool_judges(counts: Counts, tmp_path: Path, expressions: Mapping[str, list[dict[str, Any]]]) -> str:
    """Run the generated policy and SLA rules in promtool on the gauges ``counts`` give, held for 90
    minutes (a worker idle after a replay exports the same values every refresh); no burn-rate
    alert may fire, and each of ``expressions`` must give its samples at 80 minutes."""
    registry = CollectorRegistry()
    SlaVerdictGauges(Metrics.create(registry)).update(counts)
    series = [
        {"series": _series_name(sample.labels), "values": f"{sample.value:g}x90"}
        for family in registry.collect()
        if family.name == metric_names.SLA_VERDICTS
        for sample in family.samples
    ]
    assert series, "the gauges exported nothing"
    test = {
        "rule_files": [str(RULES / "policy.yml"), str(RULES / "sla.yml")],
        "evaluation_interval": "1m",
        "group_eval_order": ["deptpulse-policy", "deptpulse-sla-recording", "deptpulse-sla-alerts"],
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": f"{minute}m", "alertname": alert}
                    for minute in (5, 30, 80)
                    for alert in BURN_ALERTS
                ],
                "promql_expr_test": [
                    {"expr": expr, "eval_time": "80m", "exp_samples": samples}
                    for expr, samples in expressions.items()
                ],
            }
        ],
    }
    path = tmp_path / "burn_test.yml"
    path.write_text(yaml.safe_dump(test, allow_unicode=True), encoding="utf-8")
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus"
    result = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _series_name(labels: Mapping[str, str]) -> str:
    inner = ",".join(f'{name}="{value}"' for name, value in sorted(labels.items()))
    return f"{metric_names.SLA_VERDICTS}{{{inner}}}"


def test_a_replayed_month_counts_in_the_windows_of_its_own_dates(
    clickhouse_client: Client, tmp_path: Path
) -> None:
    days = 30
    events = load_simulation(
        clickhouse_client,
        DIRECTORY,
        start=REPLAY_END - timedelta(days=days),
        days=days,
        rate=0.01,  # about 26,000 events: enough for the short windows, quick to check
        scenario="steady",
    )
    starts = window_starts(REPLAY_END, BURN_WINDOWS)
    counts = sla_verdicts(clickhouse_client, starts)

    [[month_verdicts]] = clickhouse_client.query("SELECT sum(sla_met + sla_breached) FROM minute_buckets").result_rows
    for window, since in starts.items():
        expected = reference(events, DIRECTORY, since, REPLAY_END + timedelta(minutes=1))
        assert counts[window] == {
            provider: (e.sla_met, e.sla_breached)
            for (provider, customer), e in expected.items()
            if customer is None and e.sla_met + e.sla_breached
        }, window
    in_6h = sum(met + breached for met, breached in counts["6h"].values())
    in_1h = sum(met + breached for met, breached in counts["1h"].values())
    print(f"\n{month_verdicts} verdicts in the month; {in_6h} in its last 6 hours, {in_1h} in the last hour")
    assert in_1h >= 10 and in_6h < month_verdicts / 20  # the month is not crowded into the windows

    # The rules read the gauges (the 6h requests per provider) and nothing fires.
    requests_6h = [
        {"labels": f'{metric_names.sla_requests("6h")}{{provider_department="{provider}"}}', "value": met + breached}
        for provider, (met, breached) in sorted(counts["6h"].items())
    ]
    promtool_judges(counts, tmp_path, {metric_names.sla_requests("6h"): requests_6h})


def event(event_type: str, at: datetime, **fields: Any) -> Event:
    return validate_event(
        {
            "schema_version": 1,
            "event_type": event_type,
            "event_id": f"{event_type}@{at.isoformat()}",
            "occurred_at": at,
            "source": "test",
            "provider_department": "it",
            "customer_department": "finance",
            "service_category": "it.outage",  # P1: first response within 10 minutes, calendar clock
            "priority": "P1",
            "request_id": "OUT-1",
        }
        | fields
    )


def test_a_corrected_verdict_counts_once(clickhouse_client: Client, tmp_path: Path) -> None:
    storage.migrate(clickhouse_client)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    opened, resolved = now - timedelta(minutes=50), now - timedelta(minutes=2)
    processor = PartitionProcessor(DIRECTORY)
    # Resolved without a reply: first response after 48 minutes, a breach.
    first = processor.process_batch(
        enumerate([event("request.opened", opened), event("request.resolved", resolved)]), now
    )
    insert_deltas(clickhouse_client, first.deltas)
    starts = window_starts(now, BURN_WINDOWS)
    assert sla_verdicts(clickhouse_client, starts) == {window: {"it": (0, 1)} for window in BURN_WINDOWS}

    # The reply of minute 5 arrives late: the core retracts the breach and adds a met verdict in the
    # same minute. A counter can only add: it would hold one of each, a 50% breach ratio.
    late_reply = processor.process_batch(
        [(2, event("request.responded", opened + timedelta(minutes=5)))], now
    )
    sla_deltas = [
        (a.sla_met, a.sla_breached) for a in late_reply.deltas.values() if a.sla_met or a.sla_breached
    ]
    assert sla_deltas == [(1, -1)]
    insert_deltas(clickhouse_client, late_reply.deltas)

    counts = sla_verdicts(clickhouse_client, starts)
    assert counts == {window: {"it": (1, 0)} for window in BURN_WINDOWS}
    promtool_judges(
        counts,
        tmp_path,
        {
            metric_names.sla_requests("5m"): [
                {"labels": f'{metric_names.sla_requests("5m")}{{provider_department="it"}}', "value": 1}
            ],
            metric_names.sla_burn_rate("1h"): [
                {"labels": f'{metric_names.sla_burn_rate("1h")}{{provider_department="it"}}', "value": 0}
            ],
        },
    )
