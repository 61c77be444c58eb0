"""The ClickHouse retry policy: exponential backoff, capped, with jitter of up to half the delay."""

from __future__ import annotations

import random

import pytest

from stream_processors.sinks.clickhouse import RetryPolicy

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("draw", "delays"),
    [
        (0.0, [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]),  # the least jitter: half the ceiling
        (1.0, [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0, 10.0]),  # the most: the whole ceiling
    ],
)
def test_delays_double_up_to_the_cap_within_the_jitter(draw: float, delays: list[float]) -> None:
    policy = RetryPolicy(initial_s=0.2, max_s=10.0, factor=2.0, draw=lambda: draw)

    assert [policy.delay(retry) for retry in range(9)] == pytest.approx(delays)


def test_jitter_spreads_workers_that_retry_together() -> None:
    seeded = random.Random(7)
    policy = RetryPolicy(draw=seeded.random)

    first_retries = [policy.delay(0) for _ in range(1000)]

    assert min(first_retries) >= 0.1 and max(first_retries) < 0.2
    assert len({round(delay, 6) for delay in first_retries}) > 900


def test_a_long_outage_never_waits_past_the_cap() -> None:
    assert RetryPolicy(max_s=10.0).delay(10_000) <= 10.0
