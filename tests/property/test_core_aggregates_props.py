"""MinuteAggregate merge laws: associative, commutative, with initialize() as identity."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stream_processors.core.aggregates import AGGREGATE_COLUMNS, MinuteAggregate, MinuteAggregator, merge_into
from stream_processors.core.histogram import LAST

COUNTS = st.integers(-1000, 1000)  # deltas may be negative (retractions)
# Durations are whole seconds, so sums are integral floats and add exactly in any order.
SUMS = st.integers(-(10**9), 10**9).map(float)
HISTOGRAMS = st.dictionaries(st.integers(0, LAST), st.integers(-50, 50).filter(bool), max_size=8)


@st.composite
def aggregates(draw: st.DrawFn) -> MinuteAggregate:
    values: dict[str, Any] = {}
    for name in AGGREGATE_COLUMNS:
        if name.endswith("_hist"):
            values[name] = draw(HISTOGRAMS)
        elif name.endswith("_sum_s"):
            values[name] = draw(SUMS)
        else:
            values[name] = draw(COUNTS)
    return MinuteAggregate(**values)


merge = MinuteAggregator.merge


@settings(max_examples=60, deadline=None)
@given(aggregates(), aggregates(), aggregates())
def test_merge_is_associative(a: MinuteAggregate, b: MinuteAggregate, c: MinuteAggregate) -> None:
    assert merge(merge(a, b), c) == merge(a, merge(b, c))


@settings(max_examples=60, deadline=None)
@given(aggregates(), aggregates())
def test_merge_is_commutative(a: MinuteAggregate, b: MinuteAggregate) -> None:
    assert merge(a, b) == merge(b, a)


@settings(max_examples=30, deadline=None)
@given(aggregates())
def test_initialize_is_the_identity(a: MinuteAggregate) -> None:
    assert merge(a, MinuteAggregator.initialize()) == a == merge(MinuteAggregator.initialize(), a)


@settings(max_examples=30, deadline=None)
@given(aggregates(), aggregates())
def test_subtracting_a_merged_part_gives_the_other_back(a: MinuteAggregate, b: MinuteAggregate) -> None:
    merged = merge(a, b)
    merge_into(merged, b, sign=-1)
    assert merged == a
