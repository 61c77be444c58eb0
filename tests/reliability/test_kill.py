"""kill -9 of the worker at several moments of a run, restarting each time.

The mix is published in chunks; before each chunk the test arms one kind of moment:
``random`` (a random delay after the chunk was published), ``before`` (inside the aggregate
insert, before it lands) and ``after`` (the insert landed, the worker has not yet sent its Kafka
commit or moved on), hit with the fault hook in ``sitecustomize.py``. After the last restart the
totals must equal the independent computation and the dead-letter topic the injected bad messages.
"""

from __future__ import annotations

import os
import random
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
MOMENTS = ("random", "before", "after")


def chunks(mix: Mix, count: int) -> list[Mix]:
    size = -(-len(mix.messages) // count)
    return [Mix(mix.messages[i : i + size]) for i in range(0, len(mix.messages), size)]


def run_with_kills(run: FaultyRun, mix: Mix, kills: int, seed: int) -> list[tuple[str, float]]:
    """Publish ``mix`` in ``kills + 1`` chunks, killing the worker once per chunk but the last;
    returns (moment, seconds from the restart until all published so far is committed)."""
    rnd = random.Random(seed)
    parts = chunks(mix, kills + 1)
    recoveries: list[tuple[str, float]] = []
    run.start()
    ends: dict[int, int] = {}
    for number, part in enumerate(parts):
        moment = MOMENTS[number % len(MOMENTS)] if number < kills else None
        if moment in ("before", "after"):
            run.fault("pause_insert", moment)
        ends = publish(run.settings, part)
        if moment is None:
            break
        if moment == "random":
            time.sleep(rnd.uniform(0.0, 2.0))  # from the publish: idle, fetching, processing or inserting
        else:
            run.wait_in_insert(120)
        run.kill()
        restarted = time.monotonic()
        run.start()
        run.wait_done(ends, 180)  # everything published so far, after the restart
        recoveries.append((moment, round(time.monotonic() - restarted, 1)))
    run.wait_done(ends, 240)
    return recoveries


def check(run: FaultyRun, mix: Mix) -> None:
    run.stop()
    assert_totals(run.pair_totals(), mix, "after kills:")
    duplicates = assert_dead_letters_exact(run.settings, expected_dead_letters(mix))
    print(f"dead letters re-sent after kills (at-least-once): {duplicates}")


def test_worker_killed_at_three_moments_counts_every_event_once(make_run: Callable[..., FaultyRun]) -> None:
    start = _start()
    mix = generate(seed=21, requests=1500, start=start)
    run = make_run("kill3")
    recoveries = run_with_kills(run, mix, kills=3, seed=21)
    print(f"kills (moment, s from restart to caught up): {recoveries}")
    check(run, mix)


@pytest.mark.slow
def test_worker_killed_ten_times_counts_every_event_once(make_run: Callable[..., FaultyRun]) -> None:
    kills = int(os.environ.get("RELIABILITY_KILLS", "10"))
    mix = generate(seed=22, requests=6000, start=_start())
    run = make_run("kill10")
    recoveries = run_with_kills(run, mix, kills=kills, seed=22)
    print(f"kills (moment, s from restart to caught up): {recoveries}")
    check(run, mix)


def _start() -> datetime:
    return (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
