"""benchmarks/run_all.py writes docs/benchmarks.md: figures against their baselines, nothing left out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from benchmarks import figure
from benchmarks.run_all import (
    DEFAULT_OUT,
    EXPECTED,
    Outcome,
    command_of,
    discover,
    figures_of,
    render,
    run_one,
)

pytestmark = pytest.mark.unit


def test_every_expected_benchmark_is_reported_even_when_missing() -> None:
    assert list(EXPECTED) == ["publisher", "queries", "gateway", "worker"]
    assert discover()[:4] == list(EXPECTED)
    outcome = run_one("no_such_benchmark", quick=True, bootstrap=None, timeout=1)
    assert outcome.status == "missing"
    assert "does not exist" in outcome.note


def test_commands_take_the_quick_sizes_and_the_broker() -> None:
    assert command_of("publisher", EXPECTED["publisher"], quick=True, bootstrap="127.0.0.1:19092") == [
        "python", "-m", "benchmarks.bench_publisher", "--events", "2000", "--runs", "1",
        "--bootstrap", "127.0.0.1:19092",
    ]  # fmt: skip
    assert command_of("queries", EXPECTED["queries"], quick=False, bootstrap="127.0.0.1:19092") == [
        "python", "-m", "benchmarks.bench_queries",
    ]  # fmt: skip


def test_the_gateway_report_becomes_figures_with_targets() -> None:
    document = {
        "runs": [
            {"name": "single", "requests_per_s": 2500.0, "events_per_s": 2500.0, "p99_ms": 9.0, "errors": 0},
            {"name": "batch100", "requests_per_s": 600.0, "events_per_s": 60000.0, "p99_ms": 30.0, "errors": 0},
            {"name": "rate1000", "requests_per_s": 1000.0, "events_per_s": 1000.0, "p99_ms": 12.5, "errors": 1},
        ],
        "targets": {"single_rps": 2000.0, "p99_at_rate_ms": 50.0, "batch_events_per_s": 50000.0},
    }
    figures = figures_of(document)
    assert [(f["value"], f["unit"], f["target"]) for f in figures] == [
        (2500.0, "requests/s", ">= 2,000 requests/s"),
        (60000.0, "events/s", ">= 50,000 events/s"),
        (12.5, "ms", "<= 50 ms"),
    ]
    assert all(f["baseline"] is None for f in figures)


def test_the_document_shows_each_figure_against_its_baseline() -> None:
    outcomes = [
        Outcome(
            "queries",
            "python -m benchmarks.bench_queries",
            "ok",
            12.0,
            [
                figure("scorecard", 20.0, "ms", better="lower", baseline=400.0, baseline_name="raw tables"),
                figure("publisher", 60_000.0, "events/s", better="higher", baseline=40_000.0),
            ],
        ),
        Outcome("worker", "python -m benchmarks.bench_worker", "missing", note="not written yet"),
    ]
    text = render(outcomes, False, datetime(2026, 3, 2, tzinfo=UTC), "1.00 / 1.00 / 1.00", "2.00 / 1.00 / 1.00")
    assert "| scorecard | 20.0 ms | 400 ms: raw tables | 20.0× faster | — |" in text
    assert "1.50× the baseline" in text
    assert "Not measured: **missing**. not written yet." in text
    assert "`python -m benchmarks.bench_queries` (12 s)" in text
    for heading in ("## Machine", "## Versions", "kafka-python", "faust-streaming", "chdb", "clickhouse-connect"):
        assert heading in text
    assert "Apache Kafka (broker) | 4." in text
    assert "Smoke run" not in text
    assert "Smoke run" in render(outcomes, True, datetime(2026, 3, 2, tzinfo=UTC), "", "")


def test_a_measured_benchmark_links_its_hand_written_page() -> None:
    worker = Outcome(
        "worker",
        "python -m benchmarks.bench_worker",
        "ok",
        300.0,
        [figure("worker", 40_000.0, "events/s", better="higher", baseline=300_000.0)],
    )
    text = render([worker], False, datetime(2026, 3, 2, tzinfo=UTC), "", "")
    assert "[worker-performance.md](worker-performance.md)" in text
    assert (DEFAULT_OUT.parent / "worker-performance.md").is_file()
