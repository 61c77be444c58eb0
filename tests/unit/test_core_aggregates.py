"""stream_processors.core.aggregates: one table of aggregation cases, row layout, report summaries."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from stream_processors.core import histogram
from stream_processors.core.aggregates import (
    AGGREGATE_COLUMNS,
    MinuteAggregate,
    MinuteAggregator,
    Sample,
    SampleKind,
    nps_with_margin,
    summarize,
    wilson_lower_bound,
)

pytestmark = pytest.mark.unit

K = SampleKind
HOUR = 3600.0
H = histogram.bucket_index


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        pytest.param([], {}, id="nothing"),
        pytest.param([(Sample(K.OPENED), 1)] * 3, {"requests_opened": 3}, id="opened"),
        pytest.param(
            [(Sample(K.FIRST_RESPONSE, wall_s=7200, business_s=HOUR), 1), (Sample(K.FIRST_RESPONSE, 60, 30), 1)],
            {
                "first_response_count": 2,
                "first_response_wall_sum_s": 7260.0,
                "first_response_business_sum_s": 3630.0,
                "first_response_hist": {H(HOUR): 1, H(30): 1},
            },
            id="first-responses",
        ),
        pytest.param(
            [(Sample(K.FIRST_RESOLUTION, 100, 50), 1), (Sample(K.RESOLUTION, 300, 200), 1)],
            {
                "requests_resolved": 1,
                "resolution_count": 2,
                "resolution_wall_sum_s": 400.0,
                "resolution_business_sum_s": 250.0,
                "resolution_hist": {H(50): 1, H(200): 1},
            },
            id="re-resolution-is-a-sample-not-a-request",
        ),
        pytest.param([(Sample(K.REOPENED), 1)], {"requests_reopened": 1}, id="reopened"),
        pytest.param(
            [(Sample(K.SLA_MET), 1), (Sample(K.SLA_MET), 1), (Sample(K.SLA_BREACHED), 1)],
            {"sla_met": 2, "sla_breached": 1},
            id="sla",
        ),
        pytest.param(
            [(Sample(K.CSAT, score=score), 1) for score in (1, 2, 3, 4, 5, 5)],
            {"csat_1": 1, "csat_2": 1, "csat_3": 1, "csat_4": 1, "csat_5": 2},
            id="csat",
        ),
        pytest.param(
            [(Sample(K.NPS, score=score), 1) for score in (0, 6, 7, 8, 9, 10)],
            {"nps_detractors": 2, "nps_passives": 2, "nps_promoters": 2},
            id="nps-bands",
        ),
        pytest.param(
            [(Sample(K.FIRST_RESPONSE, 60, 30), 1), (Sample(K.FIRST_RESPONSE, 60, 30), -1)],
            {},
            id="retraction-cancels-including-the-histogram",
        ),
        pytest.param(
            [(Sample(K.CSAT, score=2), -1)],
            {"csat_2": -1},
            id="retraction-alone-is-a-negative-delta",
        ),
    ],
)
def test_agg(samples: list[tuple[Sample, int]], expected: dict[str, Any]) -> None:
    aggregate = MinuteAggregator.initialize()
    for sample, sign in samples:
        assert MinuteAggregator.agg(aggregate, sample, sign) is aggregate
    result = MinuteAggregator.result(aggregate)
    assert {name: value for name, value in result.items() if value} == expected
    assert aggregate.is_zero() == (not expected)


def test_columns_are_the_fields_in_order() -> None:
    assert tuple(f.name for f in fields(MinuteAggregate)) == AGGREGATE_COLUMNS
    assert len(MinuteAggregate().to_row()) == len(AGGREGATE_COLUMNS)


def test_to_row_copies_histograms() -> None:
    aggregate = MinuteAggregator.agg(MinuteAggregate(), Sample(K.FIRST_RESPONSE, 1, 1))
    row = aggregate.to_row()
    row[AGGREGATE_COLUMNS.index("first_response_hist")][99] = 1  # type: ignore[index]
    assert aggregate.first_response_hist == {H(1): 1}


def test_merge_returns_a_new_value() -> None:
    left = MinuteAggregator.agg(MinuteAggregate(), Sample(K.CSAT, score=5))
    right = MinuteAggregator.agg(MinuteAggregate(), Sample(K.CSAT, score=5))
    merged = MinuteAggregator.merge(left, right)
    assert merged.csat_5 == 2 and left.csat_5 == 1 and right.csat_5 == 1


def test_wilson_lower_bound() -> None:
    # Reference values from the closed form (e.g. statsmodels proportion_confint(method="wilson")).
    assert wilson_lower_bound(8, 10) == pytest.approx(0.4902, abs=1e-4)
    assert wilson_lower_bound(0, 5) == 0.0
    assert wilson_lower_bound(50, 50) == pytest.approx(0.9287, abs=1e-4)
    assert wilson_lower_bound(0, 0) is None


def test_nps_and_its_margin() -> None:
    score, margin = nps_with_margin(promoters=50, passives=30, detractors=20)  # type: ignore[misc]
    assert score == pytest.approx(30.0)
    # variance = 0.5 + 0.2 - 0.3**2 = 0.61; margin = 100 * 1.96 * sqrt(0.61 / 100)
    assert margin == pytest.approx(15.31, abs=0.01)
    assert nps_with_margin(0, 0, 0) is None
    assert nps_with_margin(10, 0, 0) == (100.0, 0.0)


def test_summarize() -> None:
    aggregate = MinuteAggregate(
        csat_1=1, csat_4=2, csat_5=1, nps_promoters=2, nps_detractors=2, sla_met=9, sla_breached=1,
        first_response_hist=histogram.from_samples([60] * 50 + [3600] * 49 + [86400]),
    )
    summary = summarize(aggregate)
    assert summary.csat_count == 4
    assert summary.csat_avg == pytest.approx(14 / 4)
    assert summary.satisfied_share == 0.75
    assert summary.satisfied_share_lower95 == pytest.approx(wilson_lower_bound(3, 4))
    assert (summary.nps_count, summary.nps) == (4, 0.0)
    assert summary.nps_margin95 == pytest.approx(100 * 1.96 * (1 / 4) ** 0.5, rel=1e-3)
    assert (summary.sla_count, summary.sla_attainment) == (10, 0.9)
    assert summary.first_response_p50_s == pytest.approx(60, rel=histogram.MAX_RELATIVE_ERROR)
    assert summary.first_response_p90_s == pytest.approx(3600, rel=histogram.MAX_RELATIVE_ERROR)
    assert summary.first_response_p99_s == pytest.approx(3600, rel=histogram.MAX_RELATIVE_ERROR)
    assert summary.resolution_p50_s is None


def test_summary_of_nothing_is_empty_not_zero() -> None:
    summary = summarize(MinuteAggregate())
    assert summary.csat_avg is None and summary.nps is None and summary.sla_attainment is None
    assert summary.csat_count == summary.nps_count == summary.sla_count == 0
