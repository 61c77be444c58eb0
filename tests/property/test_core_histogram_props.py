"""Histogram quantiles stay within the stated relative error of the exact nearest-rank quantile."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from stream_processors.core import histogram
from stream_processors.core.histogram import LOWER_BOUNDS, MAX_RELATIVE_ERROR

DURATIONS = st.one_of(
    st.floats(min_value=1.0, max_value=LOWER_BOUNDS[-1], allow_nan=False),
    st.integers(1, 10**6).map(float),  # whole seconds, as the lifecycle produces them
)


@settings(max_examples=150, deadline=None)
@given(samples=st.lists(DURATIONS, min_size=1, max_size=200), q=st.floats(0.0, 1.0))
def test_quantile_is_within_the_relative_error_bound(samples: list[float], q: float) -> None:
    rank = max(1, math.ceil(q * len(samples) - 1e-9))  # nearest rank, 1-based
    exact = sorted(samples)[rank - 1]
    estimate = histogram.quantile(histogram.from_samples(samples), q)
    assert estimate is not None
    assert abs(estimate - exact) <= MAX_RELATIVE_ERROR * exact * (1 + 1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(DURATIONS, max_size=50), st.lists(DURATIONS, max_size=50))
def test_histogram_of_concatenation_is_the_merge(first: list[float], second: list[float]) -> None:
    assert histogram.merge(histogram.from_samples(first), histogram.from_samples(second)) == (
        histogram.from_samples(first + second)
    )


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=0.0, max_value=1e6, allow_nan=False))
def test_every_duration_lies_in_its_bucket(seconds: float) -> None:
    index = histogram.bucket_index(seconds)
    assert LOWER_BOUNDS[index] <= seconds
    assert index == len(LOWER_BOUNDS) - 1 or seconds < LOWER_BOUNDS[index + 1]
