"""stream_processors.scorecard.rows: figures from merged sums, the small-sample rule, the changes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from schemas.directory import AlertPolicy
from stream_processors.core import MinuteAggregate, MinuteAggregator
from stream_processors.core import histogram as hist
from stream_processors.core.aggregates import Sample, SampleKind, nps_with_margin, wilson_lower_bound
from stream_processors.scorecard.rows import (
    ROW_FIELDS,
    ScorecardRow,
    evidence,
    figure_evidence,
    scorecard_row,
    timeseries_point,
)

pytestmark = pytest.mark.unit

SINCE, UNTIL = datetime(2026, 3, 9, tzinfo=UTC), datetime(2026, 3, 16, tzinfo=UTC)
H = hist.bucket_index
POLICY = AlertPolicy(csat_min_sample=10, sla_min_sample=10, nps_min_sample=20)


def aggregate(
    *,
    opened: int = 0,
    csat: dict[int, int] | None = None,
    nps: dict[int, int] | None = None,
    sla: tuple[int, int] = (0, 0),
    first_responses: Sequence[float] = (),
    resolutions: Sequence[float] = (),
) -> MinuteAggregate:
    """An aggregate built the way the core builds one: sample by sample."""
    result = MinuteAggregator.initialize()
    samples = [Sample(SampleKind.OPENED)] * opened
    samples += [Sample(SampleKind.CSAT, score=s) for s, n in (csat or {}).items() for _ in range(n)]
    samples += [Sample(SampleKind.NPS, score=s) for s, n in (nps or {}).items() for _ in range(n)]
    samples += [Sample(SampleKind.SLA_MET)] * sla[0] + [Sample(SampleKind.SLA_BREACHED)] * sla[1]
    samples += [Sample(SampleKind.FIRST_RESPONSE, seconds, seconds) for seconds in first_responses]
    samples += [Sample(SampleKind.FIRST_RESOLUTION, seconds, seconds) for seconds in resolutions]
    for sample in samples:
        MinuteAggregator.agg(result, sample)
    return result


def row(
    current: MinuteAggregate, previous: MinuteAggregate | None = None, customer: str | None = "finance"
) -> ScorecardRow:
    return scorecard_row("it", customer, SINCE, UNTIL, current, previous or MinuteAggregate(), POLICY)


def test_every_figure_comes_from_the_core_functions() -> None:
    durations = [30.0, 600.0, 3600.0, 7200.0, 86400.0]
    current = aggregate(
        opened=12,
        csat={5: 6, 4: 3, 2: 1, 1: 2},
        nps={10: 12, 8: 5, 3: 4},
        sla=(18, 2),
        first_responses=durations,
        resolutions=[d * 4 for d in durations],
    )

    result = row(current)

    assert result.requests_opened == 12
    assert result.csat_count == 12 and result.csat_avg == pytest.approx((30 + 12 + 2 + 2) / 12)
    assert result.csat_satisfied_share == pytest.approx(9 / 12)
    assert result.csat_satisfied_share_lower95 == wilson_lower_bound(9, 12)
    assert (result.nps, result.nps_margin95) == nps_with_margin(12, 5, 4)
    assert (result.sla_met, result.sla_breached, result.sla_attainment) == (18, 2, 0.9)
    first = hist.from_samples(durations)
    assert result.first_response_p50_s == hist.quantile(first, 0.5)
    assert result.first_response_p90_s == hist.quantile(first, 0.9)
    assert result.resolution_p90_s == hist.quantile(hist.from_samples([d * 4 for d in durations]), 0.9)
    assert result.first_response_count == result.resolution_count == 5
    assert not (result.csat_insufficient or result.sla_insufficient or result.nps_insufficient)


@pytest.mark.parametrize(
    ("csat_answers", "insufficient"), [(0, True), (1, True), (9, True), (10, False), (11, False)]
)
def test_a_sample_below_the_minimum_shows_its_count_and_no_figure(
    csat_answers: int, insufficient: bool
) -> None:
    result = row(aggregate(csat={5: csat_answers}, sla=(csat_answers, 0), nps={9: csat_answers * 2}))

    assert result.csat_count == csat_answers and result.csat_insufficient is insufficient
    assert (result.csat_avg is None) is insufficient
    assert (result.csat_satisfied_share is None) is insufficient
    assert (result.csat_satisfied_share_lower95 is None) is insufficient
    assert result.sla_met == csat_answers and (result.sla_attainment is None) is insufficient
    assert result.nps_count == 2 * csat_answers and (result.nps is None) is insufficient
    assert (result.nps_margin95 is None) is insufficient


def test_the_minimum_is_the_providers_policy() -> None:
    strict = AlertPolicy(csat_min_sample=50)
    current = aggregate(csat={4: 20})

    assert scorecard_row("it", None, SINCE, UNTIL, current, MinuteAggregate(), POLICY).csat_avg == 4.0
    assert scorecard_row("it", None, SINCE, UNTIL, current, MinuteAggregate(), strict).csat_avg is None


def test_changes_are_this_window_minus_the_previous_one() -> None:
    previous = aggregate(
        opened=30, csat={5: 10, 3: 10}, sla=(19, 1), nps={10: 15, 0: 5}, first_responses=[600] * 10
    )
    current = aggregate(
        opened=25, csat={5: 15, 3: 5}, sla=(16, 4), nps={10: 10, 0: 10}, first_responses=[3600] * 10
    )

    result = row(current, previous)

    assert result.requests_opened_change == -5
    assert result.csat_avg_change == pytest.approx(4.5 - 4.0)
    assert result.csat_satisfied_share_change == pytest.approx(0.75 - 0.5)
    assert result.sla_attainment_change == pytest.approx(0.8 - 0.95)
    assert result.nps_change == pytest.approx(0 - 50)
    assert result.first_response_p90_s_change == pytest.approx(
        hist.bucket_value(H(3600)) - hist.bucket_value(H(600))
    )
    assert result.resolution_p90_s_change is None  # no resolutions on either side


@pytest.mark.parametrize("short_side", ["current", "previous"])
def test_no_change_is_given_when_either_side_is_insufficient(short_side: str) -> None:
    enough, too_few = (
        aggregate(csat={5: 10}, sla=(10, 0), nps={9: 20}),
        aggregate(csat={1: 3}, sla=(0, 3), nps={0: 3}),
    )
    current, previous = (too_few, enough) if short_side == "current" else (enough, too_few)

    result = row(current, previous)

    assert result.csat_avg_change is None and result.csat_satisfied_share_change is None
    assert result.sla_attainment_change is None and result.nps_change is None


def test_the_overall_row_has_a_null_customer_and_the_window() -> None:
    result = row(aggregate(opened=1), customer=None)

    dumped = result.model_dump(mode="json")
    assert dumped["customer_department"] is None
    assert (dumped["since"], dumped["until"]) == ("2026-03-09T00:00:00Z", "2026-03-16T00:00:00Z")


def test_the_json_row_keeps_its_documented_fields_in_order() -> None:
    # The row is a public contract (JSON, CSV columns, the read API): change it deliberately.
    assert ROW_FIELDS == (
        "provider_department",
        "customer_department",
        "service_category",
        "since",
        "until",
        "requests_opened",
        "requests_resolved",
        "requests_reopened",
        "first_response_count",
        "first_response_p50_s",
        "first_response_p90_s",
        "resolution_count",
        "resolution_p50_s",
        "resolution_p90_s",
        "sla_met",
        "sla_breached",
        "sla_attainment",
        "sla_attainment_lower95",
        "sla_attainment_upper95",
        "sla_insufficient",
        "csat_count",
        "csat_avg",
        "csat_avg_margin95",
        "csat_satisfied_share",
        "csat_satisfied_share_lower95",
        "csat_satisfied_share_upper95",
        "csat_insufficient",
        "nps_count",
        "nps",
        "nps_margin95",
        "nps_insufficient",
        "requests_opened_change",
        "first_response_p90_s_change",
        "resolution_p90_s_change",
        "sla_attainment_change",
        "csat_avg_change",
        "csat_satisfied_share_change",
        "nps_change",
        "first_response_sla_met",
        "first_response_sla_breached",
        "first_response_sla_attainment",
        "first_response_sla_insufficient",
        "resolution_sla_met",
        "resolution_sla_breached",
        "resolution_sla_attainment",
        "resolution_sla_insufficient",
    )
    assert list(row(MinuteAggregate()).model_dump(mode="json")) == list(ROW_FIELDS)


def test_a_time_series_point_keeps_thin_figures_and_flags_them() -> None:
    point = timeseries_point(SINCE, aggregate(csat={2: 3}, sla=(1, 1)), POLICY)

    assert point.csat_avg == 2.0 and point.csat_insufficient
    assert point.sla_attainment == 0.5 and point.sla_insufficient
    assert point.nps is None and point.nps_count == 0 and point.nps_insufficient


def test_retracted_histogram_counts_do_not_change_the_figures() -> None:
    # A delta that retracts a sample leaves the bucket at zero after the merge; zeros never count.
    current = aggregate(first_responses=[100.0, 5000.0])
    MinuteAggregator.agg(current, Sample(SampleKind.FIRST_RESPONSE, 5000.0, 5000.0), sign=-1)

    result = row(current)

    assert result.first_response_count == 1
    assert result.first_response_p90_s == hist.quantile(hist.from_samples([100.0]), 0.9)


@pytest.mark.parametrize(
    ("satisfied", "answers", "expected"),
    [
        (10, 10, "unclear"),  # 100 % of 10: the interval (72 %-100 %) straddles 80 %: not red
        (7, 10, "unclear"),  # 70 % of 10: the true share could be 89 %
        (20, 80, "below"),  # 25 % of 80: even the upper end (36 %) is below 80 %
        (190, 200, "above"),  # 95 % of 200: even the lower end (91 %) reaches 80 %
    ],
)
def test_a_figure_is_red_only_on_evidence_below_target(satisfied: int, answers: int, expected: str) -> None:
    current = aggregate(csat={5: satisfied, 1: answers - satisfied})
    result = row(current)

    assert figure_evidence(result, POLICY)["satisfied_share"] == expected
    lower, share, upper = (
        result.csat_satisfied_share_lower95,
        result.csat_satisfied_share,
        result.csat_satisfied_share_upper95,
    )
    assert lower is not None and share is not None and upper is not None
    assert lower <= share <= upper


def test_evidence_needs_a_figure() -> None:
    assert evidence(None, None, 0.8) == "none"
    assert evidence(0.5, 0.79, 0.8) == "below" and evidence(0.8, 0.9, 0.8) == "above"


def test_first_response_and_resolution_verdicts_are_separate_figures() -> None:
    current = MinuteAggregate(
        sla_met=3, sla_breached=9, first_response_sla_met=9, first_response_sla_breached=3,
        resolution_sla_met=2, resolution_sla_breached=7,
    )  # fmt: skip
    result = row(current)
    assert result.sla_attainment == pytest.approx(3 / 12)
    assert result.first_response_sla_attainment == pytest.approx(9 / 12)
    assert (result.resolution_sla_met, result.resolution_sla_breached) == (2, 7)
    assert result.resolution_sla_attainment is None and result.resolution_sla_insufficient  # 9 < 10 judged
    assert not result.first_response_sla_insufficient
