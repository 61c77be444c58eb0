"""The scorecard's row model, and the rows computed from merged minute aggregates.

One :class:`ScorecardRow` per provider department (``customer_department`` null: the provider's
overall row) and per (provider, customer) pair. Every figure comes from
:func:`stream_processors.core.summarize` over the window's merged sums and histograms.

Small samples (the rule the JSON keeps, stable): when a figure's sample is below the provider's
minimum (``Directory.policy_for(provider)``: ``csat_min_sample``, ``sla_min_sample``,
``nps_min_sample``), the count is still given, the figure and its interval are ``null``, and
``<csat|sla|nps>_insufficient`` is ``true``. A ``*_change`` (this window minus the previous window
of the same length, in the figure's own unit) is ``null`` when either side is null. Durations are
business seconds from the histograms (within 5.9 % of the exact value); they have no minimum, so
read them with their ``*_count``.

Time-series points (:class:`TimeseriesPoint`) are chart data, not verdicts: they carry a figure
whenever its count is above zero, with the same ``*_insufficient`` flags, and charts draw the
points below the minimum hollow.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict

from schemas.directory import AlertPolicy
from stream_processors.core import MinuteAggregate, summarize
from stream_processors.core.aggregates import csat_average_margin, wilson_lower_bound, wilson_upper_bound


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScorecardRow(_Model):
    """How a provider department served one customer department (or everyone) in a window."""

    provider_department: str
    customer_department: str | None  # null: the provider's overall row (or every customer, by service)
    # Rows by service (report --by service): the service id, "" for events without one ("other");
    # null on rows by customer and on the provider's overall row.
    service_category: str | None = None
    since: datetime  # the window, [since, until) in UTC
    until: datetime
    requests_opened: int
    requests_resolved: int  # first resolutions in the window
    requests_reopened: int
    first_response_count: int
    first_response_p50_s: float | None  # business seconds
    first_response_p90_s: float | None
    resolution_count: int  # resolutions in the window, re-resolutions after a reopen included
    resolution_p50_s: float | None
    resolution_p90_s: float | None
    sla_met: int
    sla_breached: int
    sla_attainment: float | None  # 0..1; null when insufficient
    sla_attainment_lower95: float | None  # Wilson score 95 % interval of the attainment
    sla_attainment_upper95: float | None
    sla_insufficient: bool
    csat_count: int
    csat_avg: float | None  # 1..5
    csat_avg_margin95: float | None  # half-width of the 95 % interval of the average
    csat_satisfied_share: float | None  # share of 4 and 5 answers, 0..1
    csat_satisfied_share_lower95: float | None  # Wilson score 95 % lower bound
    csat_satisfied_share_upper95: float | None  # and upper bound
    csat_insufficient: bool
    nps_count: int
    nps: float | None  # -100..100
    nps_margin95: float | None  # half-width of the 95 % interval, NPS points
    nps_insufficient: bool
    # This window minus the previous window of the same length.
    requests_opened_change: int
    first_response_p90_s_change: float | None
    resolution_p90_s_change: float | None
    sla_attainment_change: float | None
    csat_avg_change: float | None
    csat_satisfied_share_change: float | None
    nps_change: float | None
    # Appended (the columns before keep their places): first-response and resolution verdicts, each
    # judged at completion or when its target passed (counted in that minute); the combined verdict's
    # sample minimum applies.
    first_response_sla_met: int
    first_response_sla_breached: int
    first_response_sla_attainment: float | None  # 0..1; null when insufficient
    first_response_sla_insufficient: bool
    resolution_sla_met: int
    resolution_sla_breached: int
    resolution_sla_attainment: float | None
    resolution_sla_insufficient: bool


ROW_FIELDS: Final = tuple(ScorecardRow.model_fields)


class TimeseriesPoint(_Model):
    """One point of a trend: the step starting at ``start``; figures whenever there is a sample."""

    start: datetime
    requests_opened: int
    first_response_count: int
    first_response_p90_s: float | None
    sla_met: int
    sla_breached: int
    sla_attainment: float | None
    sla_insufficient: bool
    csat_count: int
    csat_avg: float | None
    csat_satisfied_share: float | None
    csat_insufficient: bool
    nps_count: int
    nps: float | None
    nps_insufficient: bool


class Timeseries(_Model):
    provider_department: str | None  # null: every provider
    customer_department: str | None  # null: every customer
    since: datetime
    until: datetime
    step_seconds: int
    points: list[TimeseriesPoint]


def _change(current: float | None, previous: float | None) -> float | None:
    return None if current is None or previous is None else current - previous


def _unless(insufficient: bool, value: float | None) -> float | None:
    return None if insufficient else value


def scorecard_row(
    provider: str,
    customer: str | None,
    since: datetime,
    until: datetime,
    current: MinuteAggregate,
    previous: MinuteAggregate,
    policy: AlertPolicy,
    service: str | None = None,
) -> ScorecardRow:
    """The row of one provider (and customer, or None for overall) from the window's merged sums."""
    this, last = summarize(current), summarize(previous)
    csat_short = this.csat_count < policy.csat_min_sample
    sla_short = this.sla_count < policy.sla_min_sample
    first_short = this.first_response_sla_count < policy.sla_min_sample
    resolution_short = this.resolution_sla_count < policy.sla_min_sample
    nps_short = this.nps_count < policy.nps_min_sample
    csat_avg = _unless(csat_short, this.csat_avg)
    satisfied = _unless(csat_short, this.satisfied_share)
    sla_attainment = _unless(sla_short, this.sla_attainment)
    nps = _unless(nps_short, this.nps)
    previous_csat_short = last.csat_count < policy.csat_min_sample
    previous_sla_short = last.sla_count < policy.sla_min_sample
    previous_nps_short = last.nps_count < policy.nps_min_sample
    return ScorecardRow(
        provider_department=provider,
        customer_department=customer,
        service_category=service,
        since=since,
        until=until,
        requests_opened=current.requests_opened,
        requests_resolved=current.requests_resolved,
        requests_reopened=current.requests_reopened,
        first_response_count=current.first_response_count,
        first_response_p50_s=this.first_response_p50_s,
        first_response_p90_s=this.first_response_p90_s,
        resolution_count=current.resolution_count,
        resolution_p50_s=this.resolution_p50_s,
        resolution_p90_s=this.resolution_p90_s,
        sla_met=current.sla_met,
        sla_breached=current.sla_breached,
        sla_attainment=sla_attainment,
        sla_attainment_lower95=_unless(sla_short, wilson_lower_bound(current.sla_met, this.sla_count)),
        sla_attainment_upper95=_unless(sla_short, wilson_upper_bound(current.sla_met, this.sla_count)),
        sla_insufficient=sla_short,
        first_response_sla_met=current.first_response_sla_met,
        first_response_sla_breached=current.first_response_sla_breached,
        first_response_sla_attainment=_unless(first_short, this.first_response_sla_attainment),
        first_response_sla_insufficient=first_short,
        resolution_sla_met=current.resolution_sla_met,
        resolution_sla_breached=current.resolution_sla_breached,
        resolution_sla_attainment=_unless(resolution_short, this.resolution_sla_attainment),
        resolution_sla_insufficient=resolution_short,
        csat_count=this.csat_count,
        csat_avg=csat_avg,
        csat_avg_margin95=_unless(csat_short, csat_average_margin(current)),
        csat_satisfied_share=satisfied,
        csat_satisfied_share_lower95=_unless(csat_short, this.satisfied_share_lower95),
        csat_satisfied_share_upper95=_unless(
            csat_short, wilson_upper_bound(current.csat_4 + current.csat_5, this.csat_count)
        ),
        csat_insufficient=csat_short,
        nps_count=this.nps_count,
        nps=nps,
        nps_margin95=_unless(nps_short, this.nps_margin95),
        nps_insufficient=nps_short,
        requests_opened_change=current.requests_opened - previous.requests_opened,
        first_response_p90_s_change=_change(this.first_response_p90_s, last.first_response_p90_s),
        resolution_p90_s_change=_change(this.resolution_p90_s, last.resolution_p90_s),
        sla_attainment_change=_change(sla_attainment, _unless(previous_sla_short, last.sla_attainment)),
        csat_avg_change=_change(csat_avg, _unless(previous_csat_short, last.csat_avg)),
        csat_satisfied_share_change=_change(satisfied, _unless(previous_csat_short, last.satisfied_share)),
        nps_change=_change(nps, _unless(previous_nps_short, last.nps)),
    )


def timeseries_point(start: datetime, aggregate: MinuteAggregate, policy: AlertPolicy) -> TimeseriesPoint:
    """One chart point: figures whenever there is a sample, flagged below the policy's minimums."""
    summary = summarize(aggregate)
    return TimeseriesPoint(
        start=start,
        requests_opened=aggregate.requests_opened,
        first_response_count=aggregate.first_response_count,
        first_response_p90_s=summary.first_response_p90_s,
        sla_met=aggregate.sla_met,
        sla_breached=aggregate.sla_breached,
        sla_attainment=summary.sla_attainment,
        sla_insufficient=summary.sla_count < policy.sla_min_sample,
        csat_count=summary.csat_count,
        csat_avg=summary.csat_avg,
        csat_satisfied_share=summary.satisfied_share,
        csat_insufficient=summary.csat_count < policy.csat_min_sample,
        nps_count=summary.nps_count,
        nps=summary.nps,
        nps_insufficient=summary.nps_count < policy.nps_min_sample,
    )


def shortfall(row: ScorecardRow, policy: AlertPolicy) -> float:
    """How many answers and requests short of the targets a row is: satisfied answers missing to the
    satisfied-share target plus requests missing to the SLA-attainment target, counting only figures
    with enough samples. The same measure names the service "carrying most of the shortfall" in
    the alerts; 0 when the row meets its targets or has too few samples to tell."""
    missing = 0.0
    if row.csat_satisfied_share is not None:
        missing += row.csat_count * max(0.0, policy.satisfied_share_target - row.csat_satisfied_share)
    if row.sla_attainment is not None:
        sla_count = row.sla_met + row.sla_breached
        missing += sla_count * max(0.0, policy.sla_attainment_target - row.sla_attainment)
    return missing


def weakest(rows: Sequence[ScorecardRow], policy: AlertPolicy) -> ScorecardRow | None:
    """The row with the largest :func:`shortfall`; None when no row falls short."""
    ranked = max(rows, key=lambda row: shortfall(row, policy), default=None)
    return ranked if ranked is not None and shortfall(ranked, policy) > 0 else None


Evidence = Literal["below", "above", "unclear", "none"]


def evidence(low: float | None, high: float | None, target: float) -> Evidence:
    """What a figure's 95 % interval says against its target, the rule the alerts follow: "below"
    only when even the upper end is below it, "above" when the lower end reaches it, "unclear" when
    the interval straddles it, "none" without a figure (too few samples)."""
    if low is None or high is None:
        return "none"
    if high < target:
        return "below"
    if low >= target:
        return "above"
    return "unclear"


def _around(value: float | None, margin: float | None) -> tuple[float | None, float | None]:
    if value is None or margin is None:
        return None, None
    return value - margin, value + margin


def figure_evidence(row: ScorecardRow, policy: AlertPolicy) -> dict[str, Evidence]:
    """The evidence of each figure with a target: csat_avg, satisfied_share, sla_attainment, nps."""
    return {
        "csat_avg": evidence(*_around(row.csat_avg, row.csat_avg_margin95), policy.csat_target),
        "satisfied_share": evidence(
            row.csat_satisfied_share_lower95, row.csat_satisfied_share_upper95, policy.satisfied_share_target
        ),
        "sla_attainment": evidence(
            row.sla_attainment_lower95, row.sla_attainment_upper95, policy.sla_attainment_target
        ),
        "nps": evidence(*_around(row.nps, row.nps_margin95), policy.nps_target),
    }
