"""stream_processors.core.effects: each figure checked against numbers computed here, independently."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import confint_proportions_2indep

from schemas.directory import AlertPolicy
from stream_processors.core import histogram
from stream_processors.core.aggregates import MinuteAggregate
from stream_processors.core.effects import (
    Effect,
    compare,
    csat_average_effect,
    median_effect,
    nps_effect,
    proportion_effect,
    response_rate,
)

pytestmark = pytest.mark.unit

Z = NormalDist().inv_cdf(0.975)  # computed here, not taken from aggregates.Z_95
HOUR = 3600.0
MIRROR = {"improved": "worse", "worse": "improved"}


def wilson(successes: int, n: int) -> tuple[float, float]:
    """Wilson score interval, written as in Newcombe 1998 (method 3)."""
    p = successes / n
    centre = (2 * n * p + Z * Z) / (2 * (n + Z * Z))
    half = Z * math.sqrt(Z * Z + 4 * n * p * (1 - p)) / (2 * (n + Z * Z))
    return centre - half, centre + half


def newcombe(successes1: int, n1: int, successes2: int, n2: int) -> tuple[float, float]:
    """Newcombe 1998 method 10 for p1 - p2, from the two Wilson intervals."""
    p1, p2 = successes1 / n1, successes2 / n2
    (low1, high1), (low2, high2) = wilson(successes1, n1), wilson(successes2, n2)
    return (
        p1 - p2 - math.sqrt((p1 - low1) ** 2 + (high2 - p2) ** 2),
        p1 - p2 + math.sqrt((high1 - p1) ** 2 + (p2 - low2) ** 2),
    )


# Newcombe 1998, Statistics in Medicine 17:873, Table II, method 10: (a) to (h), group 1 - group 2.
@pytest.mark.parametrize(
    ("after", "n_after", "before", "n_before", "paper_low", "paper_high"),
    [
        pytest.param(56, 70, 48, 80, 0.0524, 0.3339, id="a-56/70-48/80"),
        pytest.param(9, 10, 3, 10, 0.1705, 0.8090, id="b-9/10-3/10"),
        pytest.param(6, 7, 2, 7, 0.0582, 0.8062, id="c-6/7-2/7"),
        pytest.param(5, 56, 0, 29, -0.0381, 0.1926, id="d-5/56-0/29"),
        pytest.param(0, 10, 0, 20, -0.1611, 0.2775, id="e-0/10-0/20"),
        pytest.param(0, 10, 0, 10, -0.2775, 0.2775, id="f-0/10-0/10"),
        pytest.param(10, 10, 0, 20, 0.6791, 1.0000, id="g-10/10-0/20"),
        pytest.param(10, 10, 0, 10, 0.6075, 1.0000, id="h-10/10-0/10"),
    ],
)
def test_proportion_interval_is_newcombes(
    after: int, n_after: int, before: int, n_before: int, paper_low: float, paper_high: float
) -> None:
    effect = proportion_effect("satisfied_share", before, n_before, after, n_after, min_sample=1)
    assert effect.difference == pytest.approx(after / n_after - before / n_before)
    assert (round(effect.low or 0, 4), round(effect.high or 0, 4)) == (paper_low, paper_high)
    assert (effect.low, effect.high) == pytest.approx(newcombe(after, n_after, before, n_before), abs=1e-12)
    by_statsmodels = confint_proportions_2indep(after, n_after, before, n_before, method="newcomb")
    assert (effect.low, effect.high) == pytest.approx(tuple(map(float, by_statsmodels)), abs=1e-12)


@pytest.mark.parametrize(
    ("counts", "min_sample", "higher_is_better", "verdict"),
    [
        pytest.param((48, 80, 56, 70), 10, True, "improved", id="improved"),
        pytest.param((56, 70, 48, 80), 10, True, "worse", id="worse"),
        pytest.param((48, 80, 56, 70), 10, False, "worse", id="more-is-worse"),
        pytest.param((50, 100, 52, 100), 10, True, "no detectable change", id="no-change"),
        pytest.param((48, 80, 56, 70), 71, True, "insufficient", id="after-below-minimum"),
        pytest.param((48, 80, 56, 70), 81, True, "insufficient", id="both-below-minimum"),
    ],
)
def test_proportion_verdicts(
    counts: tuple[int, int, int, int], min_sample: int, higher_is_better: bool, verdict: str
) -> None:
    effect = proportion_effect(
        "sla_attainment", *counts, min_sample=min_sample, higher_is_better=higher_is_better
    )
    assert effect.verdict == verdict
    assert effect.difference is not None and effect.low is not None and effect.high is not None
    assert (effect.before_count, effect.after_count) == (counts[1], counts[3])


@pytest.mark.parametrize(
    ("counts", "problem"),
    [
        pytest.param((0, 0, 5, 10), None, id="nothing-before"),
        pytest.param(
            (11, 10, 5, 10), "before: more successes (11) than trials (10): a data problem", id="too-many"
        ),
        pytest.param((5, 10, -1, 10), "after: a negative count (-1): a data problem", id="negative"),
    ],
)
def test_proportion_without_usable_counts(counts: tuple[int, int, int, int], problem: str | None) -> None:
    effect = proportion_effect("sla_attainment", *counts, min_sample=1)
    assert (effect.difference, effect.low, effect.high, effect.verdict) == (None, None, None, "insufficient")
    assert effect.problem == problem


def nps_by_hand(promoters: int, passives: int, detractors: int) -> tuple[float, float]:
    """(NPS in points, variance of the NPS as a proportion difference)."""
    n = promoters + passives + detractors
    p, d = promoters / n, detractors / n
    return 100 * (p - d), (p + d - (p - d) ** 2) / n


@pytest.mark.parametrize(
    ("before", "after", "expected_interval", "verdict"),
    [
        # 0 -> 30 points; variances 0.6/100 and (0.7 - 0.09)/100; 100 * Z * sqrt(0.0121) = 21.5596
        pytest.param((30, 40, 30), (50, 30, 20), (8.4404, 51.5596), "improved", id="equal-sizes"),
        pytest.param((10, 5, 5), (40, 30, 30), None, "no detectable change", id="unequal-sizes"),
        pytest.param((50, 30, 20), (30, 40, 30), (-51.5596, -8.4404), "worse", id="worse"),
        pytest.param((3, 1, 1), (1, 1, 3), None, "insufficient", id="below-minimum"),
    ],
)
def test_nps_interval_by_hand(
    before: tuple[int, int, int],
    after: tuple[int, int, int],
    expected_interval: tuple[float, float] | None,
    verdict: str,
) -> None:
    effect = nps_effect(before, after, min_sample=20)
    (nps_before, variance_before), (nps_after, variance_after) = nps_by_hand(*before), nps_by_hand(*after)
    half = 100 * Z * math.sqrt(variance_before + variance_after)
    difference = nps_after - nps_before
    assert (effect.before, effect.after) == pytest.approx((nps_before, nps_after))
    assert effect.difference == pytest.approx(difference)
    assert (effect.low, effect.high) == pytest.approx((difference - half, difference + half), abs=1e-9)
    if expected_interval:
        assert (effect.low, effect.high) == pytest.approx(expected_interval, abs=1e-4)
    assert effect.verdict == verdict


def test_nps_without_answers_and_with_a_negative_count() -> None:
    empty = nps_effect((0, 0, 0), (5, 5, 5), min_sample=1)
    assert (empty.before, empty.after, empty.difference, empty.verdict) == (None, 0.0, None, "insufficient")
    bad = nps_effect((5, -1, 5), (5, 5, 5), min_sample=1)
    assert bad.problem == "before: a negative count (-1): a data problem"
    assert bad.verdict == "insufficient"


def csat(*counts: int) -> MinuteAggregate:
    aggregate = MinuteAggregate()
    aggregate.csat_1, aggregate.csat_2, aggregate.csat_3, aggregate.csat_4, aggregate.csat_5 = counts
    return aggregate


def test_csat_average_interval_by_hand() -> None:
    # before: two of each answer, mean 3, variance 2; after: 3,3,4x4,5x4: mean 4.2, variance 0.56.
    effect = csat_average_effect(csat(2, 2, 2, 2, 2), csat(0, 0, 2, 4, 4), min_sample=10)
    half = Z * math.sqrt(2 / 10 + 0.56 / 10)
    assert (effect.before, effect.after, effect.difference) == pytest.approx((3.0, 4.2, 1.2))
    assert (effect.low, effect.high) == pytest.approx((1.2 - half, 1.2 + half))
    assert effect.verdict == "improved"
    assert (
        csat_average_effect(csat(2, 2, 2, 2, 2), csat(0, 0, 2, 4, 4), min_sample=11).verdict == "insufficient"
    )


def durations(median_s: float, count: int, seed: int, spread: float = 0.5) -> dict[int, int]:
    return histogram.from_samples(np.random.default_rng(seed).lognormal(math.log(median_s), spread, count))


def test_median_huge_drop_is_an_improvement() -> None:
    before, after = durations(10 * HOUR, 200, seed=1), durations(1 * HOUR, 200, seed=2)
    effect = median_effect("resolution_p50_s", before, after, min_sample=10)
    assert effect.verdict == "improved"
    assert effect.before == pytest.approx(10 * HOUR, rel=0.15)
    assert effect.after == pytest.approx(1 * HOUR, rel=0.15)
    assert effect.low is not None and effect.high is not None and effect.difference is not None
    assert effect.low <= effect.difference <= effect.high < 0
    longer = median_effect("resolution_p50_s", before, after, min_sample=10, lower_is_better=False)
    assert longer.verdict == "worse"


def test_median_identical_histograms_show_no_change() -> None:
    same = durations(2 * HOUR, 200, seed=3)
    effect = median_effect("first_response_p50_s", same, dict(same), min_sample=10)
    assert effect.difference == 0
    assert effect.low is not None and effect.high is not None
    assert effect.low < 0 < effect.high
    assert effect.verdict == "no detectable change"


def test_median_two_large_samples_of_one_distribution_show_no_change() -> None:
    # 10k samples pin each median inside one bucket: the bucket edges keep the interval honest.
    before, after = durations(HOUR, 10_000, seed=4, spread=1.5), durations(HOUR, 10_000, seed=5, spread=1.5)
    assert (
        median_effect("first_response_p50_s", before, after, min_sample=10).verdict == "no detectable change"
    )


def test_median_interval_matches_a_multinomial_bootstrap() -> None:
    """The Beta shortcut against plain resampling of the bucket counts, with 10x the resamples."""
    before, after = durations(3 * HOUR, 200, seed=6, spread=1.2), durations(2 * HOUR, 200, seed=7, spread=1.2)
    generator = np.random.default_rng(0)

    def resampled_median_buckets(counts: dict[int, int]) -> npt.NDArray[np.int64]:
        indices = np.array(sorted(counts), dtype=np.int64)
        weights = np.array([counts[i] for i in sorted(counts)])
        total = int(weights.sum())
        draws = generator.multinomial(total, weights / total, size=20_000)
        rank = math.ceil(total / 2)
        median_buckets: npt.NDArray[np.int64] = indices[np.argmax(np.cumsum(draws, axis=1) >= rank, axis=1)]
        return median_buckets

    lower = np.array(histogram.LOWER_BOUNDS)
    upper = np.array([*histogram.LOWER_BOUNDS[1:], histogram.LOWER_BOUNDS[-1]])
    buckets_before, buckets_after = resampled_median_buckets(before), resampled_median_buckets(after)
    reference_low = float(np.quantile(lower[buckets_after] - upper[buckets_before], 0.025))
    reference_high = float(np.quantile(upper[buckets_after] - lower[buckets_before], 0.975))

    effect = median_effect("resolution_p50_s", before, after, min_sample=10)
    assert effect.low == pytest.approx(reference_low, rel=0.1)
    assert effect.high == pytest.approx(reference_high, rel=0.1)


def test_median_is_deterministic_and_ignores_dict_order() -> None:
    before, after = durations(3 * HOUR, 300, seed=8, spread=1.0), durations(2 * HOUR, 300, seed=9, spread=1.0)
    first = median_effect("resolution_p50_s", before, after, min_sample=10)
    again = median_effect("resolution_p50_s", dict(reversed(before.items())), after, min_sample=10)
    assert first == again


@pytest.mark.parametrize(
    ("before", "after", "problem"),
    [
        pytest.param({}, {10: 5}, None, id="empty-before"),
        pytest.param(
            {10: 5, 11: -1}, {10: 5}, "before: a negative count (-1): a data problem", id="negative"
        ),
    ],
)
def test_median_without_usable_counts(
    before: dict[int, int], after: dict[int, int], problem: str | None
) -> None:
    effect = median_effect("resolution_p50_s", before, after, min_sample=1)
    assert (effect.difference, effect.low, effect.high, effect.verdict) == (None, None, None, "insufficient")
    assert effect.problem == problem


def window(
    csat_counts: tuple[int, ...], nps: tuple[int, int, int], sla: tuple[int, int], hours: float
) -> MinuteAggregate:
    aggregate = csat(*csat_counts)
    aggregate.nps_promoters, aggregate.nps_passives, aggregate.nps_detractors = nps
    aggregate.sla_met, aggregate.sla_breached = sla
    aggregate.first_response_hist = durations(hours * HOUR / 10, 50, seed=int(hours))
    aggregate.resolution_hist = durations(hours * HOUR, 50, seed=int(hours) + 1)
    return aggregate


BEFORE = window((10, 10, 10, 10, 10), (10, 10, 30), (20, 30), hours=10)
AFTER = window((0, 0, 5, 10, 35), (40, 5, 5), (48, 2), hours=1)
FIGURES = ("satisfied_share", "csat_avg", "nps", "sla_attainment", "first_response_p50_s", "resolution_p50_s")


@pytest.mark.parametrize("figure", FIGURES)
def test_compare_every_figure_improves_with_enough_samples(figure: str) -> None:
    effect = by_figure(compare(BEFORE, AFTER, AlertPolicy()))[figure]
    assert (effect.before_count, effect.after_count) == (50, 50)
    assert effect.verdict == "improved"


@pytest.mark.parametrize("figure", FIGURES)
def test_compare_gives_no_verdict_below_the_minimum_sample(figure: str) -> None:
    policy = AlertPolicy(csat_min_sample=51, nps_min_sample=51, sla_min_sample=51)
    effect = by_figure(compare(BEFORE, AFTER, policy))[figure]
    assert effect.verdict == "insufficient"
    assert effect.difference is not None and effect.low is not None and effect.high is not None


def by_figure(effects: list[Effect]) -> dict[str, Effect]:
    assert [effect.figure for effect in effects] == list(FIGURES)
    return {effect.figure: effect for effect in effects}


@pytest.mark.parametrize(
    ("invited", "answered", "rate", "problem", "low"),
    [
        pytest.param(10, 3, 0.3, None, False, id="at-the-minimum-is-not-low"),
        pytest.param(100, 20, 0.2, None, True, id="low"),
        pytest.param(0, 0, None, None, False, id="no-invitations"),
        pytest.param(
            10, 12, None, "more answers (12) than invitations (10): a data problem", False, id="too-many"
        ),
        pytest.param(
            0, 1, None, "more answers (1) than invitations (0): a data problem", False, id="none-invited"
        ),
        pytest.param(-1, 0, None, "a negative count (-1): a data problem", False, id="negative"),
    ],
)
def test_response_rate(
    invited: int, answered: int, rate: float | None, problem: str | None, low: bool
) -> None:
    result = response_rate(invited, answered)
    assert (result.rate, result.problem, result.low()) == (rate, problem, low)


def test_response_rate_minimum_is_a_parameter() -> None:
    assert response_rate(10, 3).low(minimum=0.5)


def assert_mirrored(forward: Effect, backward: Effect) -> None:
    assert forward.difference is not None and backward.difference is not None
    assert backward.difference == pytest.approx(-forward.difference, abs=1e-12)
    assert (backward.low, backward.high) == pytest.approx(
        (-(forward.high or 0), -(forward.low or 0)), abs=1e-12
    )
    assert backward.verdict == MIRROR.get(forward.verdict, forward.verdict)


@st.composite
def proportions(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(1, 500))
    return draw(st.integers(0, n)), n


@settings(max_examples=60, deadline=None)
@given(before=proportions(), after=proportions(), min_sample=st.integers(1, 50))
def test_swapping_mirrors_a_proportion_effect(
    before: tuple[int, int], after: tuple[int, int], min_sample: int
) -> None:
    forward = proportion_effect("satisfied_share", *before, *after, min_sample=min_sample)
    backward = proportion_effect("satisfied_share", *after, *before, min_sample=min_sample)
    assert_mirrored(forward, backward)


nps_counts = st.tuples(st.integers(0, 300), st.integers(0, 300), st.integers(0, 300)).filter(
    lambda c: sum(c) > 0
)


@settings(max_examples=60, deadline=None)
@given(before=nps_counts, after=nps_counts, min_sample=st.integers(1, 50))
def test_swapping_mirrors_an_nps_effect(
    before: tuple[int, int, int], after: tuple[int, int, int], min_sample: int
) -> None:
    assert_mirrored(
        nps_effect(before, after, min_sample=min_sample), nps_effect(after, before, min_sample=min_sample)
    )
