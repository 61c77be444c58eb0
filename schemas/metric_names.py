"""Every Prometheus metric name of deptpulse: what the worker, the gateway and the publisher export
and what the generated recording rules record. The exporters and the rule and dashboard generators
all take their names from here; ``tests/unit/test_metric_names.py`` checks that every metric a rule
or a dashboard panel reads is exported or recorded."""

from __future__ import annotations

from typing import Final

# The two-sided 95 % normal quantile, scipy.stats.norm.ppf(0.975) (a test checks it), of every
# interval the metrics and rules carry: the *_margin gauges, the Wilson bounds, the ":95" and
# ":wilson95" recorded series.
Z_95: Final = 1.959963984540054

# --- the worker's pipeline (stream_processors.metrics.Metrics) --------------------------------------
EVENTS: Final = "deptpulse_events_total"
DEAD_LETTERS: Final = "deptpulse_dead_letters_total"
DUPLICATE_EVENTS: Final = "deptpulse_duplicate_events_total"
LATE_EVENTS: Final = "deptpulse_late_events_total"
SINK_ROWS: Final = "deptpulse_sink_rows_total"
SINK_BATCHES: Final = "deptpulse_sink_batches_total"
SINK_ERRORS: Final = "deptpulse_sink_errors_total"
SINK_BATCH_DURATION: Final = "deptpulse_sink_batch_duration_seconds"
CONSUMER_LAG: Final = "deptpulse_consumer_lag"
LAST_EVENT_TIMESTAMP: Final = "deptpulse_last_event_timestamp_seconds"
# Processing-time counts of SLA verdicts (a correction counts again): throughput, not burn rates.
SLA_MET: Final = "deptpulse_sla_met_total"
SLA_BREACHED: Final = "deptpulse_sla_breached_total"
# SLA verdicts by event time (the minute of the resolution that decided them), per provider over
# the burn-rate windows: gauge {provider_department, verdict ("met" | "breached"), window}, read from
# the signed minute buckets, so a corrected verdict moves from one count to the other instead of
# counting twice, and a replayed month lands in the windows of its own dates, not in the last 5m.
SLA_VERDICTS: Final = "deptpulse_sla_verdicts"

# --- the worker's business gauges, {provider_department, customer_department, window} ---------------
CSAT_AVERAGE: Final = "deptpulse_csat_average"
CSAT_AVERAGE_MARGIN: Final = "deptpulse_csat_average_margin"
CSAT_RESPONSES: Final = "deptpulse_csat_responses"
SATISFIED_SHARE: Final = "deptpulse_satisfied_share"
SATISFIED_SHARE_LOWER_BOUND: Final = "deptpulse_satisfied_share_lower_bound"
FIRST_RESPONSE_P90: Final = "deptpulse_first_response_p90_business_seconds"
SLA_ATTAINMENT: Final = "deptpulse_sla_attainment_ratio"
SLA_REQUESTS: Final = "deptpulse_sla_requests"
# The first-response and resolution SLA metrics (issue 18), each verdict judged when the metric
# completes or when its target passes, in that minute.
FIRST_RESPONSE_SLA_ATTAINMENT: Final = "deptpulse_first_response_sla_attainment_ratio"
FIRST_RESPONSE_SLA_REQUESTS: Final = "deptpulse_first_response_sla_requests"
RESOLUTION_SLA_ATTAINMENT: Final = "deptpulse_resolution_sla_attainment_ratio"
RESOLUTION_SLA_REQUESTS: Final = "deptpulse_resolution_sla_requests"
NPS: Final = "deptpulse_nps"
NPS_MARGIN: Final = "deptpulse_nps_margin"
NPS_RESPONSES: Final = "deptpulse_nps_responses"
FIRST_RESPONSE_BACKLOG: Final = "deptpulse_requests_awaiting_first_response_past_target"
# Open requests about to breach an SLA target (stream_processors.core.at_risk): gauge
# {provider_department, customer_department, sla ("first_response" | "resolution")}, re-read from the
# request facts with the gauges; a pair whose count cleared stays at 0.
REQUESTS_AT_RISK: Final = "deptpulse_requests_at_risk_of_sla_breach"

# Per provider x customer x service (stream_processors.metrics.ServiceGauges), labels
# {provider_department, customer_department, service_category, window}: where a shortfall is.
SERVICE_CSAT_RESPONSES: Final = "deptpulse_service_csat_responses"
SERVICE_CSAT_AVERAGE: Final = "deptpulse_service_csat_average"
SERVICE_SATISFIED_SHARE: Final = "deptpulse_service_satisfied_share"
SERVICE_SLA_REQUESTS: Final = "deptpulse_service_sla_requests"
SERVICE_SLA_ATTAINMENT: Final = "deptpulse_service_sla_attainment_ratio"
SERVICE_FIRST_RESPONSE_P90: Final = "deptpulse_service_first_response_p90_business_seconds"

# Improvement actions (action.recorded events), one series each: {provider_department,
# service_category, title, started_on (YYYY-MM-DD)}, valued at midnight UTC of started_on in seconds.
IMPROVEMENT_ACTION_START: Final = "deptpulse_improvement_action_start_timestamp_seconds"

# --- the ingestion gateway (producers.gateway.GatewayMetrics) ---------------------------------------
GATEWAY_REQUESTS: Final = "deptpulse_gateway_requests_total"
GATEWAY_REQUEST_DURATION: Final = "deptpulse_gateway_request_duration_seconds"
GATEWAY_EVENTS_PUBLISHED: Final = "deptpulse_gateway_events_published_total"

# --- the publisher SDK (producers.publisher.PublisherMetrics): its default prefix ---------------------
PUBLISHER_PREFIX: Final = "deptpulse_publisher"

# --- recorded by the generated rules (schemas/observability/rules.py) ---------------------------------
# Policy constants per provider_department (schemas.directory.AlertPolicy), so alerts and
# dashboards join thresholds instead of hard-coding them in every expression.
POLICY_SLA_ATTAINMENT_TARGET: Final = "deptpulse:policy_sla_attainment_target"
POLICY_SLA_ERROR_BUDGET: Final = "deptpulse:policy_sla_error_budget"
POLICY_SATISFIED_SHARE_TARGET: Final = "deptpulse:policy_satisfied_share_target"
POLICY_CSAT_TARGET: Final = "deptpulse:policy_csat_target"
POLICY_NPS_TARGET: Final = "deptpulse:policy_nps_target"
POLICY_CSAT_MIN_SAMPLE: Final = "deptpulse:policy_csat_min_sample"
POLICY_NPS_MIN_SAMPLE: Final = "deptpulse:policy_nps_min_sample"
POLICY_SLA_MIN_SAMPLE: Final = "deptpulse:policy_sla_min_sample"
POLICY_SLA_AT_RISK_SHARE: Final = "deptpulse:policy_sla_at_risk_share"
POLICY_FIRST_RESPONSE_SLA_TARGET: Final = "deptpulse:policy_first_response_sla_attainment_target"
POLICY_RESOLUTION_SLA_TARGET: Final = "deptpulse:policy_resolution_sla_attainment_target"

# Upper ends of 95 % intervals: an alert fires when even the upper end is below target, so a small
# sample just under target is not enough.
SATISFIED_SHARE_UPPER_BOUND: Final = "deptpulse:satisfied_share_upper_bound:wilson95"
SLA_ATTAINMENT_UPPER_BOUND: Final = "deptpulse:sla_attainment_upper_bound:wilson95"
FIRST_RESPONSE_SLA_ATTAINMENT_UPPER_BOUND: Final = "deptpulse:first_response_sla_attainment_upper_bound:wilson95"
RESOLUTION_SLA_ATTAINMENT_UPPER_BOUND: Final = "deptpulse:resolution_sla_attainment_upper_bound:wilson95"
NPS_UPPER_BOUND: Final = "deptpulse:nps_upper_bound:95"
CSAT_AVERAGE_UPPER_BOUND: Final = "deptpulse:csat_average_upper_bound:95"
SLA_ATTAINMENT_LOWER_BOUND: Final = "deptpulse:sla_attainment_lower_bound:wilson95"

# What a figure's 95 % interval says against its target, per row {provider, customer, window}, the
# rule of the alerts and of the HTML scorecard's colours (stream_processors.scorecard.rows.evidence);
# values: schemas.observability.names.EVIDENCE_*.
SATISFIED_SHARE_EVIDENCE: Final = "deptpulse:satisfied_share_evidence:wilson95"
SLA_ATTAINMENT_EVIDENCE: Final = "deptpulse:sla_attainment_evidence:wilson95"
CSAT_AVERAGE_EVIDENCE: Final = "deptpulse:csat_average_evidence:95"
NPS_EVIDENCE: Final = "deptpulse:nps_evidence:95"

# Missing successes per service, recorded only where positive: answers x (target - satisfied share)
# and requests x (target - attainment). The alerts name the service with the largest.
SERVICE_SATISFACTION_SHORTFALL: Final = "deptpulse:service_satisfaction_shortfall"
SERVICE_SLA_SHORTFALL: Final = "deptpulse:service_sla_shortfall"


def sla_requests(window: str) -> str:
    """Requests with an SLA verdict in the window (a count, not a rate)."""
    return f"deptpulse:sla_requests:window{window}"


def sla_breach_ratio(window: str) -> str:
    return f"deptpulse:sla_breach_ratio:window{window}"


def sla_burn_rate(window: str) -> str:
    return f"deptpulse:sla_burn_rate:window{window}"
