"""The worker's Prometheus metrics, created on a registry the caller owns.

Pipeline metrics are updated per batch by the agent. Business gauges (CSAT, satisfied share, NPS,
SLA attainment, first-response p90 over 1h/24h/7d/28d) are recomputed every few seconds by
:class:`BusinessGauges` from the merged minute buckets in ClickHouse, off the event loop: the
worker keeps no month of minute buckets in memory, and the gauges show exactly what is stored.
``customer_department="*"`` is the provider over all its customers; per-pair series are limited
to the ``pair_limit`` pairs with most answers (the rest only count in ``"*"``). :class:`ServiceGauges`
splits the same figures by service, for ``"*"`` and for the pairs that have series.
:class:`SlaVerdictGauges` counts each provider's SLA verdicts over the burn-rate windows (5m to 6h)
by event time, for the burn-rate rules.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, Generic, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas import metric_names
from schemas.observability import names
from stream_processors.core import MinuteAggregate, summarize
from stream_processors.core.aggregates import csat_average_margin, merge_into
from stream_processors.core.at_risk import SlaKind

WINDOWS: Final = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "28d": timedelta(days=28),
}
BURN_WINDOWS: Final = {
    name: timedelta(seconds=int(name[:-1]) * {"m": 60, "h": 3600}[name[-1]])
    for name in names.SLA_BURN_WINDOWS
}
ALL_CUSTOMERS: Final = names.OVERALL_CUSTOMER
_PAIR = ("provider_department", "customer_department", "window")
_SERVICE = ("provider_department", "customer_department", names.SERVICE_LABEL, "window")
ServiceRow = tuple[str, str, str, MinuteAggregate]  # provider, customer, service ('' for none), aggregate


@dataclass(frozen=True)
class Metrics:
    events: Counter
    dead_letters: Counter
    duplicates: Counter
    late: Counter
    sink_rows: Counter
    sink_batches: Counter
    sink_errors: Counter
    sink_batch_duration: Histogram
    consumer_lag: Gauge
    last_event_timestamp: Gauge
    sla_met: Counter
    sla_breached: Counter
    sla_verdicts: Gauge
    csat_average: Gauge
    csat_average_margin: Gauge
    csat_responses: Gauge
    satisfied_share: Gauge
    satisfied_share_lower_bound: Gauge
    first_response_p90: Gauge
    sla_attainment: Gauge
    sla_requests: Gauge
    first_response_sla_attainment: Gauge
    first_response_sla_requests: Gauge
    resolution_sla_attainment: Gauge
    resolution_sla_requests: Gauge
    nps: Gauge
    nps_margin: Gauge
    nps_responses: Gauge
    first_response_backlog: Gauge
    requests_at_risk: Gauge
    service_csat_responses: Gauge
    service_csat_average: Gauge
    service_satisfied_share: Gauge
    service_sla_requests: Gauge
    service_sla_attainment: Gauge
    service_first_response_p90: Gauge
    improvement_action_start: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        def counter(name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
            return Counter(name, doc, list(labels), registry=registry)

        def gauge(name: str, doc: str, labels: Iterable[str] = _PAIR) -> Gauge:
            return Gauge(name, doc, list(labels), registry=registry)

        return cls(
            events=counter(
                metric_names.EVENTS,
                "Messages consumed, by event type and outcome (processed, duplicate, dead_letter).",
                ("event_type", "outcome"),
            ),
            dead_letters=counter(
                metric_names.DEAD_LETTERS, "Messages sent to the dead-letter topic.", ("reason",)
            ),
            duplicates=counter(metric_names.DUPLICATE_EVENTS, "Events dropped as repeats of an event_id."),
            late=counter(metric_names.LATE_EVENTS, "Events older than the watermark minus the grace period."),
            sink_rows=counter(metric_names.SINK_ROWS, "Rows written to ClickHouse.", ("table",)),
            sink_batches=counter(metric_names.SINK_BATCHES, "Batches written to ClickHouse."),
            sink_errors=counter(metric_names.SINK_ERRORS, "Failed ClickHouse calls (each is retried)."),
            sink_batch_duration=Histogram(
                metric_names.SINK_BATCH_DURATION,
                "Time from taking a batch to having it in ClickHouse.",
                buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
                registry=registry,
            ),
            consumer_lag=gauge(
                metric_names.CONSUMER_LAG, "Messages behind the partition's high watermark.", ("partition",)
            ),
            last_event_timestamp=gauge(
                metric_names.LAST_EVENT_TIMESTAMP,
                "occurred_at of the newest processed event.",
                ("source",),
            ),
            # Processing-time throughput of the verdicts, not burn rates: a correction (breach
            # retracted, met added) adds to met without taking from breached, and a replay counts a
            # month of verdicts at once. Burn rates read deptpulse_sla_verdicts.
            sla_met=counter(
                metric_names.SLA_MET,
                "SLA verdicts 'met' as processed (a correction counts again; not for burn rates).",
                ("provider_department", "customer_department"),
            ),
            sla_breached=counter(
                metric_names.SLA_BREACHED,
                "SLA verdicts 'breached' as processed (a correction counts again; not for burn rates).",
                ("provider_department", "customer_department"),
            ),
            sla_verdicts=gauge(
                metric_names.SLA_VERDICTS,
                "Requests whose SLA verdict (met or breached) falls in the window by event time; "
                "corrections retracted.",
                ("provider_department", "verdict", "window"),
            ),
            csat_average=gauge(metric_names.CSAT_AVERAGE, "Mean CSAT (1-5) over the window."),
            csat_average_margin=gauge(
                metric_names.CSAT_AVERAGE_MARGIN, "Half-width of the 95 % interval of the mean CSAT."
            ),
            csat_responses=gauge(metric_names.CSAT_RESPONSES, "CSAT answers in the window."),
            satisfied_share=gauge(metric_names.SATISFIED_SHARE, "Share of CSAT answers that are 4 or 5."),
            satisfied_share_lower_bound=gauge(
                metric_names.SATISFIED_SHARE_LOWER_BOUND, "Wilson 95 % lower bound of the satisfied share."
            ),
            first_response_p90=gauge(
                metric_names.FIRST_RESPONSE_P90,
                "90th percentile of first-response business time.",
            ),
            sla_attainment=gauge(metric_names.SLA_ATTAINMENT, "Share of judged requests within SLA."),
            sla_requests=gauge(metric_names.SLA_REQUESTS, "Requests judged against their SLA in the window."),
            first_response_sla_attainment=gauge(
                metric_names.FIRST_RESPONSE_SLA_ATTAINMENT,
                "Share of first-response verdicts in the window that met the target.",
            ),
            first_response_sla_requests=gauge(
                metric_names.FIRST_RESPONSE_SLA_REQUESTS,
                "First-response verdicts in the window: at the first response, or when its target passed.",
            ),
            resolution_sla_attainment=gauge(
                metric_names.RESOLUTION_SLA_ATTAINMENT, "Share of resolution verdicts in the window that met the target."
            ),
            resolution_sla_requests=gauge(
                metric_names.RESOLUTION_SLA_REQUESTS,
                "Resolution verdicts in the window: at the first resolution, or when its target passed.",
            ),
            nps=gauge(metric_names.NPS, "Internal NPS (-100..100) over the window."),
            nps_margin=gauge(
                metric_names.NPS_MARGIN, "Half-width of the 95 % interval of the NPS, in points."
            ),
            nps_responses=gauge(metric_names.NPS_RESPONSES, "Survey answers in the window."),
            first_response_backlog=gauge(
                metric_names.FIRST_RESPONSE_BACKLOG,
                "Open requests without a first response whose first-response target has passed.",
                ("provider_department", "customer_department"),
            ),
            requests_at_risk=gauge(
                metric_names.REQUESTS_AT_RISK,
                "Open requests with at most the alert policy's sla_at_risk_share of an SLA target left "
                "on the SLA's clock, not yet past it.",
                ("provider_department", "customer_department", names.AT_RISK_SLA_LABEL),
            ),
            service_csat_responses=gauge(
                metric_names.SERVICE_CSAT_RESPONSES, "CSAT answers about one service in the window.", _SERVICE
            ),
            service_csat_average=gauge(
                metric_names.SERVICE_CSAT_AVERAGE, "Mean CSAT (1-5) of one service.", _SERVICE
            ),
            service_satisfied_share=gauge(
                metric_names.SERVICE_SATISFIED_SHARE,
                "Share of one service's CSAT answers that are 4 or 5.",
                _SERVICE,
            ),
            service_sla_requests=gauge(
                metric_names.SERVICE_SLA_REQUESTS,
                "Requests of one service judged against their SLA.",
                _SERVICE,
            ),
            service_sla_attainment=gauge(
                metric_names.SERVICE_SLA_ATTAINMENT,
                "Share of one service's judged requests within SLA.",
                _SERVICE,
            ),
            service_first_response_p90=gauge(
                metric_names.SERVICE_FIRST_RESPONSE_P90,
                "90th percentile of one service's first-response business time.",
                _SERVICE,
            ),
            improvement_action_start=gauge(
                metric_names.IMPROVEMENT_ACTION_START,
                "Start (midnight UTC of started_on) of an improvement action; service_category '*': every service.",
                ("provider_department", names.SERVICE_LABEL, "title", "started_on"),
            ),
        )


class BusinessGauges:
    """Sets the business gauges from (provider, customer, aggregate) rows of one window."""

    def __init__(self, metrics: Metrics, pair_limit: int = 200) -> None:
        self.metrics = metrics
        self.pair_limit = pair_limit
        self._published: set[tuple[str, str, str]] = set()

    def update(self, window: str, rows: Iterable[tuple[str, str, MinuteAggregate]]) -> None:
        rows = list(rows)
        by_provider: dict[str, MinuteAggregate] = {}
        for provider, _customer, aggregate in rows:
            merge_into(by_provider.setdefault(provider, MinuteAggregate()), aggregate)
        ranked = sorted(rows, key=lambda row: -_answers(row[2]))[: self.pair_limit]
        current: set[tuple[str, str, str]] = set()
        for provider, aggregate in by_provider.items():
            self._set((provider, ALL_CUSTOMERS, window), aggregate)
            current.add((provider, ALL_CUSTOMERS, window))
        for provider, customer, aggregate in ranked:
            self._set((provider, customer, window), aggregate)
            current.add((provider, customer, window))
        for labels in {labels for labels in self._published if labels[2] == window} - current:
            self._remove(labels)
        self._published = {labels for labels in self._published if labels[2] != window} | current

    def pairs(self, window: str) -> set[tuple[str, str]]:
        """The (provider, customer) pairs with series in ``window``, ``"*"`` rows included."""
        return {
            (provider, customer) for provider, customer, published in self._published if published == window
        }

    def _gauges(self) -> tuple[Gauge, ...]:
        m = self.metrics
        return (
            m.csat_average,
            m.csat_average_margin,
            m.csat_responses,
            m.satisfied_share,
            m.satisfied_share_lower_bound,
            m.first_response_p90,
            m.sla_attainment,
            m.sla_requests,
            m.first_response_sla_attainment,
            m.first_response_sla_requests,
            m.resolution_sla_attainment,
            m.resolution_sla_requests,
            m.nps,
            m.nps_margin,
            m.nps_responses,
        )

    def _set(self, labels: tuple[str, str, str], aggregate: MinuteAggregate) -> None:
        m, summary = self.metrics, summarize(aggregate)
        m.csat_responses.labels(*labels).set(summary.csat_count)
        m.sla_requests.labels(*labels).set(summary.sla_count)
        m.first_response_sla_requests.labels(*labels).set(summary.first_response_sla_count)
        m.resolution_sla_requests.labels(*labels).set(summary.resolution_sla_count)
        m.nps_responses.labels(*labels).set(summary.nps_count)
        # A ratio without answers is absent rather than 0: alerts must not fire on nothing.
        for gauge, value in (
            (m.csat_average, summary.csat_avg),
            (m.csat_average_margin, csat_average_margin(aggregate)),
            (m.satisfied_share, summary.satisfied_share),
            (m.satisfied_share_lower_bound, summary.satisfied_share_lower95),
            (m.first_response_p90, summary.first_response_p90_s),
            (m.sla_attainment, summary.sla_attainment),
            (m.first_response_sla_attainment, summary.first_response_sla_attainment),
            (m.resolution_sla_attainment, summary.resolution_sla_attainment),
            (m.nps, summary.nps),
            (m.nps_margin, summary.nps_margin95),
        ):
            if value is None:
                _remove_child(gauge, labels)
            else:
                gauge.labels(*labels).set(value)

    def _remove(self, labels: tuple[str, str, str]) -> None:
        for gauge in self._gauges():
            _remove_child(gauge, labels)


class ServiceGauges:
    """Sets the per-service gauges from (provider, customer, service, aggregate) rows of one window:
    each provider's services over all its customers (``"*"``), and the services of ``pairs`` (those
    :class:`BusinessGauges` publishes), so the series stay as bounded as the pairs' times the
    directory's services. Events without a service are labelled ``names.OTHER_SERVICE``."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._published: set[tuple[str, str, str, str]] = set()

    def update(self, window: str, rows: Iterable[ServiceRow], pairs: Collection[tuple[str, str]]) -> None:
        merged: dict[tuple[str, str, str, str], MinuteAggregate] = {}
        for provider, customer, service, aggregate in rows:
            service = service or names.OTHER_SERVICE
            customers = (ALL_CUSTOMERS, customer) if (provider, customer) in pairs else (ALL_CUSTOMERS,)
            for labels_customer in customers:
                merge_into(
                    merged.setdefault((provider, labels_customer, service, window), MinuteAggregate()),
                    aggregate,
                )
        for labels, aggregate in merged.items():
            self._set(labels, aggregate)
        current = set(merged)
        for labels in {labels for labels in self._published if labels[3] == window} - current:
            for gauge in self._gauges():
                _remove_child(gauge, labels)
        self._published = {labels for labels in self._published if labels[3] != window} | current

    def _gauges(self) -> tuple[Gauge, ...]:
        m = self.metrics
        return (
            m.service_csat_responses,
            m.service_csat_average,
            m.service_satisfied_share,
            m.service_sla_requests,
            m.service_sla_attainment,
            m.service_first_response_p90,
        )

    def _set(self, labels: tuple[str, str, str, str], aggregate: MinuteAggregate) -> None:
        m, summary = self.metrics, summarize(aggregate)
        m.service_csat_responses.labels(*labels).set(summary.csat_count)
        m.service_sla_requests.labels(*labels).set(summary.sla_count)
        for gauge, value in (
            (m.service_csat_average, summary.csat_avg),
            (m.service_satisfied_share, summary.satisfied_share),
            (m.service_sla_attainment, summary.sla_attainment),
            (m.service_first_response_p90, summary.first_response_p90_s),
        ):
            if value is None:
                _remove_child(gauge, labels)
            else:
                gauge.labels(*labels).set(value)


class RecordedAction(Protocol):
    """What the action gauge reads of an ``action.recorded`` event as storage holds it."""

    @property
    def provider_department(self) -> str: ...
    @property
    def service_category(self) -> str | None: ...  # None: every service of the provider
    @property
    def title(self) -> str: ...
    @property
    def started_on(self) -> date: ...


class ActionGauge:
    """Publishes the improvement actions started within ``names.ACTION_EXPORT_DAYS`` days, one
    series per provider, service, title and start day (two records of one action are one series)."""

    def __init__(self, metrics: Metrics) -> None:
        self.gauge = metrics.improvement_action_start
        self._published: set[tuple[str, str, str, str]] = set()

    def update(self, actions: Iterable[RecordedAction], now: datetime) -> None:
        since = (now - timedelta(days=names.ACTION_EXPORT_DAYS)).date()
        current: dict[tuple[str, str, str, str], float] = {}
        for action in actions:
            day = action.started_on
            if day >= since:
                service = action.service_category or names.ALL_SERVICES
                labels = (action.provider_department, service, action.title, day.isoformat())
                current[labels] = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        for labels in self._published - set(current):
            _remove_child(self.gauge, labels)
        for labels, start in current.items():
            self.gauge.labels(*labels).set(start)
        self._published = set(current)


class SlaVerdictGauges:
    """Publishes each provider's met and breached verdicts per burn-rate window: every provider with
    a verdict in any window gets both counts in every window (0 where it has none), so a ratio over
    a quiet short window is 0 of n rather than missing; a provider without any loses its series."""

    def __init__(self, metrics: Metrics) -> None:
        self.gauge = metrics.sla_verdicts
        self._published: set[str] = set()

    def update(self, counts: Mapping[str, Mapping[str, tuple[int, int]]]) -> None:
        """``counts``: window -> provider -> (met, breached)."""
        providers = {provider for by_provider in counts.values() for provider in by_provider}
        for provider in self._published - providers:
            for window in BURN_WINDOWS:
                for verdict in ("met", "breached"):
                    _remove_child(self.gauge, (provider, verdict, window))
        for provider in providers:
            for window in BURN_WINDOWS:
                met, breached = counts.get(window, {}).get(provider, (0, 0))
                self.gauge.labels(provider, "met", window).set(met)
                self.gauge.labels(provider, "breached", window).set(breached)
        self._published = providers


def window_starts(now: datetime, windows: Mapping[str, timedelta] = WINDOWS) -> dict[str, datetime]:
    """The start of every window (the business windows by default), minute-aligned, ending at ``now``."""
    minute = now.replace(second=0, microsecond=0)
    return {name: minute - length for name, length in windows.items()}


def _answers(aggregate: MinuteAggregate) -> int:
    a = aggregate
    return (
        a.csat_1
        + a.csat_2
        + a.csat_3
        + a.csat_4
        + a.csat_5
        + a.nps_promoters
        + a.nps_passives
        + a.nps_detractors
        + a.sla_met
        + a.sla_breached
        + a.first_response_count
    )


def _remove_child(gauge: Gauge, labels: tuple[str, ...]) -> None:
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)


LabelValues = TypeVar("LabelValues", bound=tuple[str, ...])


class CountGauge(Generic[LabelValues]):
    """Publishes counts by label values; a series whose count cleared goes to 0."""

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge
        self._published: set[LabelValues] = set()

    def update(self, counts: Mapping[LabelValues, int]) -> None:
        for labels in self._published - set(counts):
            self.gauge.labels(*labels).set(0)
        for labels, count in counts.items():
            self.gauge.labels(*labels).set(count)
        self._published |= set(counts)


class BacklogGauge(CountGauge[tuple[str, str]]):
    """The first-response backlog per pair."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(metrics.first_response_backlog)


class AtRiskGauge(CountGauge[tuple[str, str, SlaKind]]):
    """Requests at risk of an SLA breach per pair and target (``first_response``, ``resolution``)."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(metrics.requests_at_risk)
