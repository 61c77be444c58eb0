"""The at-risk gauge on a private registry: per pair and target, a cleared count goes to 0."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from schemas import metric_names
from schemas.observability import names
from stream_processors.core.at_risk import at_risk, at_risk_counts
from stream_processors.metrics import AtRiskGauge, Metrics
from tests.unit.test_core_at_risk import DIRECTORY, answered_at, fact_of, open_request
from tests.unit.test_core_builders import HOUR, MINUTE, MONDAY_9, make_request_event

pytestmark = pytest.mark.unit


def labels(customer: str, sla: str) -> dict[str, str]:
    return {"provider_department": "it", "customer_department": customer, names.AT_RISK_SLA_LABEL: sla}


def test_the_gauge_counts_each_pair_and_target_and_drops_cleared_ones_to_zero() -> None:
    registry = CollectorRegistry()
    gauge = AtRiskGauge(Metrics.create(registry))
    requests = [
        open_request(fact_of(answered_at(MONDAY_9, request_id="a"))),
        open_request(fact_of(answered_at(MONDAY_9, request_id="b"))),
        open_request(fact_of(answered_at(MONDAY_9, request_id="c", customer="finance"))),
        open_request(
            fact_of([make_request_event("request.opened", MONDAY_9 + 6 * HOUR + 34 * MINUTE, request_id="d")])
        ),
    ]

    gauge.update(at_risk_counts(at_risk(requests, DIRECTORY, MONDAY_9 + 7 * HOUR)))

    value = registry.get_sample_value
    assert value(metric_names.REQUESTS_AT_RISK, labels("hr", "resolution")) == 2
    assert value(metric_names.REQUESTS_AT_RISK, labels("hr", "first_response")) == 1
    assert value(metric_names.REQUESTS_AT_RISK, labels("finance", "resolution")) == 1
    assert value(metric_names.REQUESTS_AT_RISK, labels("finance", "first_response")) is None

    # An hour later a, b and c are past their target and d has been answered in time: none at risk.
    gauge.update(at_risk_counts(at_risk(requests[:3], DIRECTORY, MONDAY_9 + 8 * HOUR + MINUTE)))

    assert value(metric_names.REQUESTS_AT_RISK, labels("hr", "resolution")) == 0
    assert value(metric_names.REQUESTS_AT_RISK, labels("hr", "first_response")) == 0
    assert value(metric_names.REQUESTS_AT_RISK, labels("finance", "resolution")) == 0
