"""Soak: one worker, generated traffic at a steady rate for a long time (``make soak``).

RELIABILITY_SOAK_S (default 1800) and RELIABILITY_SOAK_RATE (events/s, default 2000) shorten or
lengthen it. Traffic comes in rounds of the e2e mix, each round six hours of event time after the
previous one (event time moves on, as it does in production, so the processors' horizons expire).
Sampled every RELIABILITY_SOAK_SAMPLE_S: worker RSS (must level off), lag = published - committed
(must not grow); at the end the totals and dead letters must be exact. A table is printed.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.reliability.harness import (
    FaultyRun,
    Mix,
    assert_dead_letters_exact,
    assert_pair_totals,
    expected_dead_letters,
    expected_totals,
    generate,
    publish,
)

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.slow]
REQUESTS_PER_ROUND = 400  # about 2,100 messages


@pytest.mark.slow
def test_soak(make_run: Callable[..., FaultyRun]) -> None:
    duration = float(os.environ.get("RELIABILITY_SOAK_S", "1800"))
    rate = float(os.environ.get("RELIABILITY_SOAK_RATE", "2000"))
    sample_every = float(os.environ.get("RELIABILITY_SOAK_SAMPLE_S", str(max(5.0, duration / 30))))
    per_round = len(generate(0, REQUESTS_PER_ROUND, datetime.now(UTC)).messages)
    rounds = math.ceil(duration * rate / per_round)
    base = (datetime.now(UTC) - timedelta(hours=6 * rounds) - timedelta(days=2)).replace(microsecond=0)

    run = make_run("soak")
    run.start()
    expected: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    dead: dict[tuple[int, int], str] = {}
    ends: dict[int, int] = publish(run.settings, Mix())
    published, samples = 0, []
    began = next_sample = time.monotonic()
    for number in range(rounds):
        mix = generate(1000 + number, REQUESTS_PER_ROUND, base + timedelta(hours=6 * number))
        dead |= expected_dead_letters(mix, already=ends)
        for pair, counts in expected_totals(mix).items():
            expected[pair].update(counts)
        ends = publish(run.settings, mix)
        published = sum(ends.values())
        assert run.alive(), f"the worker died during the soak. {run.log_tail()}"
        now = time.monotonic()
        if now >= next_sample:
            samples.append((now - began, published, published - run.progress(), run.rss_mb()))
            next_sample = now + sample_every
        pause = began + published / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    elapsed = time.monotonic() - began
    catch_up = run.wait_done(ends, 300)
    samples.append((time.monotonic() - began, published, 0, run.rss_mb()))
    run.stop()

    print(f"\nsoak: {published} messages in {elapsed:.0f}s ({published / elapsed:.0f}/s), caught up {catch_up:.1f}s later")
    print(f"{'t (s)':>7} {'published':>10} {'lag':>8} {'RSS (MiB)':>10}")
    for t, total, lag, rss in samples:
        print(f"{t:7.0f} {total:10d} {lag:8d} {rss:10.0f}")
    assert_pair_totals(run.pair_totals(), {pair: dict(c) for pair, c in expected.items()}, "after the soak:")
    resent = assert_dead_letters_exact(run.settings, dead)
    print(f"dead letters: {len(dead)} expected, all present, {resent} re-sent")

    half = len(samples) // 2
    first, second = samples[:half], samples[half:-1]
    if first and second:
        assert max(s[2] for s in second) <= 2 * max(s[2] for s in first) + 2 * rate, "lag grew during the soak"
        assert max(s[3] for s in second) <= 1.25 * max(s[3] for s in first) + 64, "RSS did not level off"
