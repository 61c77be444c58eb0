"""The per-service gauges (where within a provider, and a pair, answers and requests fall short) and
the improvement-action gauge (what the provider already does about it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from prometheus_client import CollectorRegistry

from schemas import metric_names
from schemas.observability import names
from stream_processors.core import MinuteAggregate
from stream_processors.core.histogram import bucket_value
from stream_processors.metrics import ActionGauge, BusinessGauges, Metrics, ServiceGauges, ServiceRow

pytestmark = pytest.mark.unit

ROWS: list[ServiceRow] = [
    ("hr", "finance", "hr.recruiting", MinuteAggregate(csat_5=2, csat_1=6, sla_met=3, sla_breached=1)),
    ("hr", "it", "hr.recruiting", MinuteAggregate(csat_4=4, first_response_hist={40: 9, 60: 1})),
    ("hr", "finance", "hr.payroll", MinuteAggregate(csat_5=10, sla_met=5)),
    ("hr", "finance", "", MinuteAggregate(csat_2=1)),  # an event without a service
    ("it", "hr", "it.access", MinuteAggregate(requests_opened=2)),
]


def service_value(
    registry: CollectorRegistry, metric: str, provider: str, customer: str, service: str, window: str = "7d"
) -> float | None:
    labels = {
        "provider_department": provider,
        "customer_department": customer,
        names.SERVICE_LABEL: service,
        "window": window,
    }
    return registry.get_sample_value(metric, labels)


def test_services_over_all_customers_and_per_pair_with_series() -> None:
    registry = CollectorRegistry()
    gauges = ServiceGauges(Metrics.create(registry))

    gauges.update("7d", ROWS, pairs={("hr", "finance"), ("hr", "*")})

    def value(metric: str, customer: str, service: str) -> float | None:
        return service_value(registry, metric, "hr", customer, service)

    # Over every customer: recruiting has 2 + 4 satisfied of 12 answers.
    assert value(metric_names.SERVICE_CSAT_RESPONSES, "*", "hr.recruiting") == 12
    assert value(metric_names.SERVICE_SATISFIED_SHARE, "*", "hr.recruiting") == pytest.approx(0.5)
    assert value(metric_names.SERVICE_CSAT_AVERAGE, "*", "hr.recruiting") == pytest.approx((10 + 6 + 16) / 12)
    assert value(metric_names.SERVICE_SLA_REQUESTS, "*", "hr.recruiting") == 4
    assert value(metric_names.SERVICE_SLA_ATTAINMENT, "*", "hr.recruiting") == pytest.approx(0.75)
    # p90 of 10 first responses, 9 in bucket 40 (~94 s) and one in bucket 60 (~944 s): bucket 40's.
    assert value(metric_names.SERVICE_FIRST_RESPONSE_P90, "*", "hr.recruiting") == pytest.approx(bucket_value(40))
    # finance's own rows: recruiting 2 of 8, payroll 10 of 10.
    assert value(metric_names.SERVICE_SATISFIED_SHARE, "finance", "hr.recruiting") == pytest.approx(0.25)
    assert value(metric_names.SERVICE_SATISFIED_SHARE, "finance", "hr.payroll") == pytest.approx(1.0)
    # Events without a service are "other" ("" would be no label at all in Prometheus).
    assert value(metric_names.SERVICE_CSAT_RESPONSES, "finance", names.OTHER_SERVICE) == 1
    assert value(metric_names.SERVICE_CSAT_RESPONSES, "finance", "") is None
    # it has no series of its own (not in pairs): it only counts in "*".
    assert value(metric_names.SERVICE_CSAT_RESPONSES, "it", "hr.recruiting") is None
    # A ratio without answers or requests is absent, never 0; the counts are 0.
    assert service_value(registry, metric_names.SERVICE_CSAT_RESPONSES, "it", "*", "it.access") == 0
    assert service_value(registry, metric_names.SERVICE_SATISFIED_SHARE, "it", "*", "it.access") is None
    assert service_value(registry, metric_names.SERVICE_SLA_ATTAINMENT, "it", "*", "it.access") is None
    assert value(metric_names.SERVICE_FIRST_RESPONSE_P90, "finance", "hr.payroll") is None


def test_series_that_left_the_window_are_removed_and_other_windows_kept() -> None:
    registry = CollectorRegistry()
    gauges = ServiceGauges(Metrics.create(registry))
    pairs = {("hr", "finance")}
    gauges.update("7d", ROWS, pairs)
    gauges.update("24h", ROWS[2:3], pairs)

    gauges.update("7d", ROWS[2:], pairs)  # recruiting's answers left the 7-day window

    assert service_value(registry, metric_names.SERVICE_CSAT_RESPONSES, "hr", "*", "hr.recruiting") is None
    assert service_value(registry, metric_names.SERVICE_SATISFIED_SHARE, "hr", "finance", "hr.recruiting") is None
    assert service_value(registry, metric_names.SERVICE_CSAT_RESPONSES, "hr", "finance", "hr.payroll") == 10
    assert service_value(registry, metric_names.SERVICE_CSAT_RESPONSES, "hr", "*", "hr.payroll", "24h") == 10

    gauges.update("7d", [], pairs)
    assert service_value(registry, metric_names.SERVICE_CSAT_RESPONSES, "hr", "finance", "hr.payroll") is None
    assert service_value(registry, metric_names.SERVICE_CSAT_RESPONSES, "hr", "*", "hr.payroll", "24h") == 10


def test_the_pairs_with_service_series_are_those_with_pair_series() -> None:
    metrics = Metrics.create(CollectorRegistry())
    business = BusinessGauges(metrics, pair_limit=1)
    business.update(
        "7d",
        [
            ("hr", "finance", MinuteAggregate(csat_4=5)),
            ("hr", "it", MinuteAggregate(csat_4=1)),
        ],
    )
    business.update("24h", [("it", "hr", MinuteAggregate(csat_4=1))])

    assert business.pairs("7d") == {("hr", "*"), ("hr", "finance")}
    assert business.pairs("24h") == {("it", "*"), ("it", "hr")}


@dataclass(frozen=True)
class Action:
    provider_department: str
    service_category: str | None
    title: str
    started_on: date


def test_recent_improvement_actions_are_published_with_their_start() -> None:
    registry = CollectorRegistry()
    gauge = ActionGauge(Metrics.create(registry))
    now = datetime(2026, 3, 20, 9, 30, tzinfo=UTC)
    recruiting = Action("hr", "hr.recruiting", "Recruiting reorganised", date(2026, 3, 1))
    actions = [
        recruiting,
        recruiting,  # recorded twice: one series
        Action("it", None, "Service desk hours extended", date(2025, 12, 20)),  # 90 days ago: kept
        Action("it", None, "Old reorganisation", date(2025, 12, 19)),  # 91 days ago: not exported
    ]

    gauge.update(actions, now)

    def start(provider: str, service: str, title: str, started_on: str) -> float | None:
        labels = {
            "provider_department": provider,
            names.SERVICE_LABEL: service,
            "title": title,
            "started_on": started_on,
        }
        return registry.get_sample_value(metric_names.IMPROVEMENT_ACTION_START, labels)

    assert (
        start("hr", "hr.recruiting", "Recruiting reorganised", "2026-03-01")
        == datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    )
    # An action for the whole provider is service "*".
    assert start("it", names.ALL_SERVICES, "Service desk hours extended", "2025-12-20") is not None
    assert start("it", names.ALL_SERVICES, "Old reorganisation", "2025-12-19") is None

    gauge.update(actions, datetime(2026, 3, 21, tzinfo=UTC))  # the next day: 2025-12-20 aged out
    assert start("it", names.ALL_SERVICES, "Service desk hours extended", "2025-12-20") is None
    assert start("hr", "hr.recruiting", "Recruiting reorganised", "2026-03-01") is not None
