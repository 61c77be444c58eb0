"""Sparse log-bucketed histograms of durations in seconds, mergeable by adding counts.

Buckets are fixed for every histogram, so two histograms merge by adding counts per index:
bucket 0 is [0, 1 s); bucket i (1..LAST-1) is [g**(i-1), g**i) seconds with g = 10**(1/20);
bucket LAST is everything from ~92 days up. A quantile is reported as the geometric midpoint of its
bucket, within :data:`MAX_RELATIVE_ERROR` (g**0.5 - 1 = 5.9 %) of the exact value for samples
from 1 s to ~92 days; 0 for samples under 1 s (absolute error < 1 s); the lower bound of the
overflow bucket (an underestimate) above that. A histogram is a ``dict[int, int]`` of bucket index
-> count with no zero counts; durations of a minute's requests touch only a handful of buckets.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from typing import Final

Histogram = dict[int, int]

GROWTH: Final = 10 ** (1 / 20)  # 20 buckets per decade
LAST: Final = 139  # overflow bucket: from 10**(138/20) s = 91.9 days
MAX_RELATIVE_ERROR: Final = math.sqrt(GROWTH) - 1

# LOWER_BOUNDS[i] is the smallest duration in bucket i.
LOWER_BOUNDS: Final = (0.0, *(10 ** ((i - 1) / 20) for i in range(1, LAST + 1)))
_MIDPOINTS: Final = (0.0, *(LOWER_BOUNDS[i] * math.sqrt(GROWTH) for i in range(1, LAST)), LOWER_BOUNDS[LAST])


def bucket_index(seconds: float) -> int:
    """The bucket of a duration; negative durations (clock skew) count as 0."""
    if seconds < 1.0:
        return 0
    return bisect_right(LOWER_BOUNDS, seconds) - 1


def bucket_value(index: int) -> float:
    """The value reported for samples in a bucket (see the module docstring for the error)."""
    return _MIDPOINTS[index]


def add(histogram: Histogram, index: int, count: int = 1) -> None:
    """Add ``count`` (may be negative, for retractions) to a bucket in place; drop it at zero."""
    total = histogram.get(index, 0) + count
    if total:
        histogram[index] = total
    else:
        del histogram[index]


def merge_into(target: Histogram, other: Histogram, sign: int = 1) -> None:
    """Add ``sign`` times every count of ``other`` to ``target`` in place."""
    for index, count in other.items():
        add(target, index, sign * count)


def merge(*histograms: Histogram) -> Histogram:
    """A new histogram holding the sum of the given ones."""
    merged: Histogram = {}
    for histogram in histograms:
        merge_into(merged, histogram)
    return merged


def from_samples(samples: Iterable[float]) -> Histogram:
    histogram: Histogram = {}
    for seconds in samples:
        add(histogram, bucket_index(seconds))
    return histogram


def count(histogram: Histogram) -> int:
    return sum(histogram.values())


def quantile(histogram: Histogram, q: float) -> float | None:
    """The q-quantile (0 <= q <= 1) by nearest rank: the bucket value of the ceil(q*n)-th smallest
    sample (the smallest for q = 0); None for an empty histogram."""
    total = count(histogram)
    if total <= 0:
        return None
    rank = nearest_rank(q, total)
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return _MIDPOINTS[index]
    return _MIDPOINTS[max(histogram)]  # only reachable with negative counts left by a bad merge


def nearest_rank(q: float, total: int) -> int:
    """1-based rank of the q-quantile among ``total`` samples; tolerant of q*n float noise."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {q}")
    return min(total, max(1, math.ceil(q * total - 1e-9)))
