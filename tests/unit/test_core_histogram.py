"""stream_processors.core.histogram: bucket layout, sparse merge, quantiles."""

from __future__ import annotations

from itertools import pairwise

import pytest

from stream_processors.core import histogram
from stream_processors.core.histogram import LAST, LOWER_BOUNDS, MAX_RELATIVE_ERROR

pytestmark = pytest.mark.unit


def test_bucket_layout() -> None:
    assert LOWER_BOUNDS[:2] == (0.0, 1.0)
    assert all(low < high for low, high in pairwise(LOWER_BOUNDS))
    assert LOWER_BOUNDS[LAST] > 90 * 86400 > LOWER_BOUNDS[LAST - 1]  # 90 days is inside the regular buckets
    assert abs(MAX_RELATIVE_ERROR - 0.0593) < 1e-4


@pytest.mark.parametrize(
    ("seconds", "index"),
    [(-5.0, 0), (0.0, 0), (0.999, 0), (1.0, 1), (10.0, 21), (9.99, 20), (3600.0, 72), (1e9, LAST)],
)
def test_bucket_index(seconds: float, index: int) -> None:
    assert histogram.bucket_index(seconds) == index


def test_add_drops_buckets_that_reach_zero() -> None:
    counts = {3: 1}
    histogram.add(counts, 3, -1)
    histogram.add(counts, 5, 2)
    assert counts == {5: 2}


def test_merge_adds_counts_and_leaves_inputs_alone() -> None:
    left, right = {1: 2, 4: 1}, {4: -1, 7: 3}
    assert histogram.merge(left, right) == {1: 2, 7: 3}
    assert left == {1: 2, 4: 1} and right == {4: -1, 7: 3}


def test_quantiles() -> None:
    counts = histogram.from_samples([0, 0, 60, 60, 60, 3600, 3600, 3600, 3600, 86400])
    assert histogram.count(counts) == 10
    assert histogram.quantile(counts, 0.0) == 0.0
    assert histogram.quantile(counts, 0.2) == 0.0
    assert histogram.quantile(counts, 0.5) == pytest.approx(60, rel=MAX_RELATIVE_ERROR)
    assert histogram.quantile(counts, 0.9) == pytest.approx(3600, rel=MAX_RELATIVE_ERROR)
    assert histogram.quantile(counts, 1.0) == pytest.approx(86400, rel=MAX_RELATIVE_ERROR)
    assert histogram.quantile({}, 0.5) is None


def test_quantile_rejects_q_outside_0_1() -> None:
    with pytest.raises(ValueError, match="quantile"):
        histogram.quantile({1: 1}, 1.5)


def test_overflow_bucket_reports_its_lower_bound() -> None:
    assert histogram.quantile(histogram.from_samples([400 * 86400]), 0.5) == LOWER_BOUNDS[LAST]
