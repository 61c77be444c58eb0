"""ClickHouse unreachable mid-stream (every sink call refused, via the fault hook in sitecustomize.py).

Half the mix is processed, ClickHouse goes down, the other half is published during the outage:
the worker must retry with backoff, stop committing (lag grows by what was published), keep its
memory bounded (RSS sampled from /proc), and after recovery count everything exactly once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.reliability.harness import (
    FaultyRun,
    Mix,
    assert_dead_letters_exact,
    assert_totals,
    expected_dead_letters,
    generate,
    publish,
)

pytestmark = [pytest.mark.reliability, pytest.mark.integration]


def outage(run: FaultyRun, mix: Mix, outage_s: float) -> dict[str, float]:
    half = len(mix.messages) // 2
    first, second = Mix(mix.messages[:half]), Mix(mix.messages[half:])
    run.start()
    ends = publish(run.settings, first)
    run.wait_done(ends, 180)
    baseline_rss = run.rss_mb()
    committed_before = run.progress()

    run.fault("clickhouse_down")
    down_at = time.monotonic()
    ends = publish(run.settings, second)
    published = sum(ends.values())
    rss, lag = [baseline_rss], []
    while time.monotonic() - down_at < outage_s:
        assert run.alive(), f"worker died during the ClickHouse outage. {run.log_tail()}"
        rss.append(run.rss_mb())
        lag.append(published - run.progress())
        time.sleep(0.5)
    assert run.progress() == committed_before, "the worker committed while ClickHouse was down"
    errors = run.log.read_text(errors="replace").count("injected: ClickHouse down")
    assert errors >= 2, f"the worker did not retry ClickHouse ({errors} failures logged). {run.log_tail()}"

    (run.faults / "clickhouse_down").unlink()
    recovery_s = run.wait_done(ends, 180)
    run.stop()
    assert_totals(run.pair_totals(), mix, "after the ClickHouse outage:")
    duplicates = assert_dead_letters_exact(run.settings, expected_dead_letters(mix))
    figures = {
        "outage_s": outage_s, "failed_calls_logged": errors, "rss_baseline_mb": baseline_rss,
        "rss_max_during_outage_mb": max(rss), "lag_max": max(lag), "lag_min": min(lag),
        "recovery_s": round(recovery_s, 1), "dead_letter_resends": duplicates,
    }
    print(f"ClickHouse outage: {figures}")
    # Backpressure: the consumer buffers at most its fetch limits, not the whole backlog.
    assert max(rss) - baseline_rss < 400, f"RSS grew by {max(rss) - baseline_rss:.0f} MiB during the outage"
    return figures


def test_clickhouse_down_for_seconds_loses_and_doubles_nothing(make_run: Callable[..., FaultyRun]) -> None:
    mix = generate(seed=31, requests=1500, start=(datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0))
    outage(make_run("chdown"), mix, float(os.environ.get("RELIABILITY_OUTAGE_S", "8")))


@pytest.mark.slow
def test_clickhouse_down_for_thirty_seconds_loses_and_doubles_nothing(make_run: Callable[..., FaultyRun]) -> None:
    mix = generate(seed=32, requests=6000, start=(datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0))
    outage(make_run("chdown30"), mix, float(os.environ.get("RELIABILITY_SLOW_OUTAGE_S", "30")))
