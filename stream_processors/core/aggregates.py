"""Per-minute aggregates of one (provider, customer, service) pair, and what reports derive from them.

A :class:`MinuteAggregate` is a mergeable value: counters, sums and sparse histograms, so the sink
can add deltas (ClickHouse sums them) and a report can merge minutes into any window. Deltas may be
negative: a correction that retracts a sample an out-of-order event changed; the sink's columns
must therefore be signed. Durations are whole seconds (see :mod:`.lifecycle`), which keeps every
float sum an exact integer, so totals do not depend on the order deltas are added in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Final, NamedTuple

from schemas.metric_names import Z_95

from stream_processors.core import histogram
from stream_processors.core.histogram import Histogram

AGGREGATE_COLUMNS: Final = (
    "requests_opened",
    "requests_resolved",
    "requests_reopened",
    "first_response_count",
    "first_response_business_sum_s",
    "first_response_wall_sum_s",
    "first_response_hist",
    "resolution_count",
    "resolution_business_sum_s",
    "resolution_wall_sum_s",
    "resolution_hist",
    "sla_met",
    "sla_breached",
    "csat_1",
    "csat_2",
    "csat_3",
    "csat_4",
    "csat_5",
    "nps_promoters",
    "nps_passives",
    "nps_detractors",
    "first_response_sla_met",
    "first_response_sla_breached",
    "resolution_sla_met",
    "resolution_sla_breached",
)



class BucketKey(NamedTuple):
    """Where a delta goes: one pair and service in one UTC minute."""

    provider_department: str
    customer_department: str
    service_category: str  # '' when the event has none
    bucket_start: datetime  # minute-aligned, UTC


class SampleKind(IntEnum):
    OPENED = 0
    FIRST_RESPONSE = 1
    FIRST_RESOLUTION = 2  # the request's first: counts requests_resolved and a resolution sample
    RESOLUTION = 3  # a re-resolution after a reopen: a resolution sample only
    REOPENED = 4
    SLA_MET = 5
    SLA_BREACHED = 6
    CSAT = 7
    NPS = 8
    FIRST_RESPONSE_SLA_MET = 9  # the first-response target, judged at the first response
    FIRST_RESPONSE_SLA_BREACHED = 10  # ... or when it passed without one
    RESOLUTION_SLA_MET = 11  # the resolution target, judged at the first resolution
    RESOLUTION_SLA_BREACHED = 12  # ... or when it passed without one


class Sample(NamedTuple):
    """One observation an aggregate counts; durations in seconds, ``score`` for CSAT (1-5)/NPS (0-10)."""

    kind: SampleKind
    wall_s: float = 0.0
    business_s: float = 0.0
    score: int = 0


@dataclass(slots=True)
class MinuteAggregate:
    """The columns of one aggregate row, in :data:`AGGREGATE_COLUMNS` order. Histograms hold business seconds."""

    requests_opened: int = 0
    requests_resolved: int = 0  # first resolutions only: opened - resolved is the never-resolved backlog
    requests_reopened: int = 0
    first_response_count: int = 0
    first_response_business_sum_s: float = 0.0
    first_response_wall_sum_s: float = 0.0
    first_response_hist: Histogram = field(default_factory=dict)
    resolution_count: int = 0  # every resolution, re-resolutions after a reopen included
    resolution_business_sum_s: float = 0.0
    resolution_wall_sum_s: float = 0.0
    resolution_hist: Histogram = field(default_factory=dict)
    sla_met: int = 0  # the combined verdict, at the first resolution: both targets met
    sla_breached: int = 0
    csat_1: int = 0
    csat_2: int = 0
    csat_3: int = 0
    csat_4: int = 0
    csat_5: int = 0
    nps_promoters: int = 0
    nps_passives: int = 0
    nps_detractors: int = 0
    first_response_sla_met: int = 0  # in the minute of the first response
    first_response_sla_breached: int = 0  # in the minute the target passed
    resolution_sla_met: int = 0  # in the minute of the first resolution
    resolution_sla_breached: int = 0  # in the minute the target passed

    def to_row(self) -> tuple[int | float | Histogram, ...]:
        """Column values in :data:`AGGREGATE_COLUMNS` order (histograms copied)."""
        return (
            self.requests_opened,
            self.requests_resolved,
            self.requests_reopened,
            self.first_response_count,
            self.first_response_business_sum_s,
            self.first_response_wall_sum_s,
            dict(self.first_response_hist),
            self.resolution_count,
            self.resolution_business_sum_s,
            self.resolution_wall_sum_s,
            dict(self.resolution_hist),
            self.sla_met,
            self.sla_breached,
            self.csat_1,
            self.csat_2,
            self.csat_3,
            self.csat_4,
            self.csat_5,
            self.nps_promoters,
            self.nps_passives,
            self.nps_detractors,
            self.first_response_sla_met,
            self.first_response_sla_breached,
            self.resolution_sla_met,
            self.resolution_sla_breached,
        )

    def is_zero(self) -> bool:
        """True when adding this delta changes nothing (e.g. a retraction cancelled its sample)."""
        return self == _ZERO


_ZERO: Final = MinuteAggregate()


class MinuteAggregator:
    """quixstreams' aggregator shape (initialize / agg / result) plus ``merge``."""

    @staticmethod
    def initialize() -> MinuteAggregate:
        return MinuteAggregate()

    @staticmethod
    def agg(aggregate: MinuteAggregate, sample: Sample, sign: int = 1) -> MinuteAggregate:
        """Count ``sign`` (+1, or -1 to retract) times one sample into ``aggregate`` in place; return it."""
        kind = sample.kind
        if kind == SampleKind.OPENED:
            aggregate.requests_opened += sign
        elif kind == SampleKind.FIRST_RESPONSE:
            aggregate.first_response_count += sign
            aggregate.first_response_wall_sum_s += sign * sample.wall_s
            aggregate.first_response_business_sum_s += sign * sample.business_s
            histogram.add(aggregate.first_response_hist, histogram.bucket_index(sample.business_s), sign)
        elif kind == SampleKind.FIRST_RESOLUTION or kind == SampleKind.RESOLUTION:
            if kind == SampleKind.FIRST_RESOLUTION:
                aggregate.requests_resolved += sign
            aggregate.resolution_count += sign
            aggregate.resolution_wall_sum_s += sign * sample.wall_s
            aggregate.resolution_business_sum_s += sign * sample.business_s
            histogram.add(aggregate.resolution_hist, histogram.bucket_index(sample.business_s), sign)
        elif kind == SampleKind.REOPENED:
            aggregate.requests_reopened += sign
        elif kind == SampleKind.SLA_MET:
            aggregate.sla_met += sign
        elif kind == SampleKind.SLA_BREACHED:
            aggregate.sla_breached += sign
        elif kind == SampleKind.CSAT:
            name = _CSAT_COLUMNS[sample.score]
            setattr(aggregate, name, getattr(aggregate, name) + sign)
        elif kind == SampleKind.FIRST_RESPONSE_SLA_MET:
            aggregate.first_response_sla_met += sign
        elif kind == SampleKind.FIRST_RESPONSE_SLA_BREACHED:
            aggregate.first_response_sla_breached += sign
        elif kind == SampleKind.RESOLUTION_SLA_MET:
            aggregate.resolution_sla_met += sign
        elif kind == SampleKind.RESOLUTION_SLA_BREACHED:
            aggregate.resolution_sla_breached += sign
        elif kind == SampleKind.NPS:
            score = sample.score
            if score >= 9:
                aggregate.nps_promoters += sign
            elif score >= 7:
                aggregate.nps_passives += sign
            else:
                aggregate.nps_detractors += sign
        return aggregate

    @staticmethod
    def result(aggregate: MinuteAggregate) -> dict[str, int | float | Histogram]:
        """Column name -> value, as the sink writes it."""
        return dict(zip(AGGREGATE_COLUMNS, aggregate.to_row(), strict=True))

    @staticmethod
    def merge(left: MinuteAggregate, right: MinuteAggregate) -> MinuteAggregate:
        """A new aggregate counting both (associative, commutative, identity ``initialize()``)."""
        merged = MinuteAggregate()
        merge_into(merged, left)
        merge_into(merged, right)
        return merged


_CSAT_COLUMNS: Final = {score: f"csat_{score}" for score in range(1, 6)}
_HISTOGRAM_COLUMNS: Final = frozenset({"first_response_hist", "resolution_hist"})


def merge_into(target: MinuteAggregate, other: MinuteAggregate, sign: int = 1) -> None:
    """Add ``sign`` times ``other`` to ``target`` in place."""
    for name in AGGREGATE_COLUMNS:
        if name in _HISTOGRAM_COLUMNS:
            histogram.merge_into(getattr(target, name), getattr(other, name), sign)
        else:
            setattr(target, name, getattr(target, name) + sign * getattr(other, name))


@dataclass(frozen=True, slots=True)
class Summary:
    """What the metrics and reports show for a merged aggregate; None where there is no sample."""

    csat_count: int
    csat_avg: float | None
    satisfied_share: float | None  # share of CSAT answers that are 4 or 5
    satisfied_share_lower95: float | None  # Wilson score lower bound
    nps_count: int
    nps: float | None  # -100..100
    nps_margin95: float | None  # half-width of the 95 % interval, in NPS points
    sla_count: int  # combined verdicts: both targets, judged at the first resolution
    sla_attainment: float | None
    first_response_sla_count: int  # first-response verdicts: at the response or when the target passed
    first_response_sla_attainment: float | None
    resolution_sla_count: int  # resolution verdicts: at the first resolution or when the target passed
    resolution_sla_attainment: float | None
    first_response_p50_s: float | None  # business seconds, from the histogram
    first_response_p90_s: float | None
    first_response_p99_s: float | None
    resolution_p50_s: float | None
    resolution_p90_s: float | None
    resolution_p99_s: float | None


def csat_counts(aggregate: MinuteAggregate) -> tuple[int, int, int, int, int]:
    a = aggregate
    return (a.csat_1, a.csat_2, a.csat_3, a.csat_4, a.csat_5)


def csat_average(aggregate: MinuteAggregate) -> float | None:
    counts = csat_counts(aggregate)
    total = sum(counts)
    return sum(score * n for score, n in enumerate(counts, start=1)) / total if total > 0 else None


def csat_average_margin(aggregate: MinuteAggregate, z: float = Z_95) -> float | None:
    """Half-width of the 95 % interval of the CSAT average: z times the standard error of the mean
    of the answers (1-5); None without answers."""
    counts = csat_counts(aggregate)
    total = sum(counts)
    if total <= 0:
        return None
    mean = sum(score * n for score, n in enumerate(counts, start=1)) / total
    variance = sum(n * (score - mean) ** 2 for score, n in enumerate(counts, start=1)) / total
    return z * math.sqrt(variance / total)


def wilson_lower_bound(successes: int, total: int, z: float = Z_95) -> float | None:
    """Lower bound of the Wilson score interval for a proportion; None when total is 0."""
    if total <= 0:
        return None
    p = successes / total
    z2 = z * z
    centre = p + z2 / (2 * total)
    spread = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total))
    return max(0.0, (centre - spread) / (1 + z2 / total))


def wilson_upper_bound(successes: int, total: int, z: float = Z_95) -> float | None:
    """Upper bound of the Wilson score interval for a proportion; None when total is 0."""
    if total <= 0:
        return None
    if successes >= total:  # exactly 1, not 1 minus a rounding error
        return 1.0
    p = successes / total
    z2 = z * z
    centre = p + z2 / (2 * total)
    spread = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total))
    return min(1.0, (centre + spread) / (1 + z2 / total))


def nps_with_margin(
    promoters: int, passives: int, detractors: int, z: float = Z_95
) -> tuple[float, float] | None:
    """(NPS, margin of error) in points: NPS = 100 (P - D); the margin is z times the standard error
    of the mean of per-answer scores +1/0/-1, whose variance is P + D - (P - D)**2."""
    total = promoters + passives + detractors
    if total <= 0:
        return None
    share_promoters, share_detractors = promoters / total, detractors / total
    score = share_promoters - share_detractors
    variance = max(0.0, share_promoters + share_detractors - score * score)
    return 100 * score, 100 * z * math.sqrt(variance / total)


def summarize(aggregate: MinuteAggregate) -> Summary:
    """Everything a report shows, from one (merged) aggregate."""
    a = aggregate
    csat_count = sum(csat_counts(a))
    satisfied = a.csat_4 + a.csat_5
    nps = nps_with_margin(a.nps_promoters, a.nps_passives, a.nps_detractors)
    sla_count = a.sla_met + a.sla_breached
    first_count = a.first_response_sla_met + a.first_response_sla_breached
    resolution_count = a.resolution_sla_met + a.resolution_sla_breached
    first, resolution = a.first_response_hist, a.resolution_hist
    return Summary(
        csat_count=csat_count,
        csat_avg=csat_average(a),
        satisfied_share=satisfied / csat_count if csat_count > 0 else None,
        satisfied_share_lower95=wilson_lower_bound(satisfied, csat_count),
        nps_count=a.nps_promoters + a.nps_passives + a.nps_detractors,
        nps=nps[0] if nps else None,
        nps_margin95=nps[1] if nps else None,
        sla_count=sla_count,
        sla_attainment=a.sla_met / sla_count if sla_count > 0 else None,
        first_response_sla_count=first_count,
        first_response_sla_attainment=a.first_response_sla_met / first_count if first_count > 0 else None,
        resolution_sla_count=resolution_count,
        resolution_sla_attainment=a.resolution_sla_met / resolution_count if resolution_count > 0 else None,
        first_response_p50_s=histogram.quantile(first, 0.5),
        first_response_p90_s=histogram.quantile(first, 0.9),
        first_response_p99_s=histogram.quantile(first, 0.99),
        resolution_p50_s=histogram.quantile(resolution, 0.5),
        resolution_p90_s=histogram.quantile(resolution, 0.9),
        resolution_p99_s=histogram.quantile(resolution, 0.99),
    )
