"""Names shared by the generated rules, Alertmanager config and dashboards: one place, no drift."""

from __future__ import annotations

# The worker's gauges carry a provider's overall row (every internal customer together) under this
# customer_department; it can never be a department id (schemas.events.DepartmentId).
OVERALL_CUSTOMER = "*"
WINDOWS = ("1h", "24h", "7d", "28d")

DEFAULT_GRAFANA_URL = "http://127.0.0.1:13000"  # Grafana of deploy/compose
PROMETHEUS_DATASOURCE_UID = "prometheus"
CLICKHOUSE_DATASOURCE_UID = "clickhouse"

SCORECARD_UID = "deptpulse-scorecard"
MATRIX_UID = "deptpulse-matrix"
SLA_UID = "deptpulse-sla"
PIPELINE_UID = "deptpulse-pipeline"

# Policy constants recorded per provider_department (schemas.directory.AlertPolicy), so alerts and
# dashboards join thresholds instead of hard-coding them in every expression.
POLICY_SLA_ATTAINMENT_TARGET = "deptpulse:policy_sla_attainment_target"
POLICY_SLA_ERROR_BUDGET = "deptpulse:policy_sla_error_budget"
POLICY_SATISFIED_SHARE_TARGET = "deptpulse:policy_satisfied_share_target"
POLICY_CSAT_TARGET = "deptpulse:policy_csat_target"
POLICY_NPS_TARGET = "deptpulse:policy_nps_target"
POLICY_CSAT_MIN_SAMPLE = "deptpulse:policy_csat_min_sample"
POLICY_NPS_MIN_SAMPLE = "deptpulse:policy_nps_min_sample"
POLICY_SLA_MIN_SAMPLE = "deptpulse:policy_sla_min_sample"
POLICY_SLA_AT_RISK_SHARE = "deptpulse:policy_sla_at_risk_share"

# Upper ends of 95 % intervals: an alert fires when even the upper end is below target, so a small
# sample just under target is not enough.
SATISFIED_SHARE_UPPER_BOUND = "deptpulse:satisfied_share_upper_bound:wilson95"
SLA_ATTAINMENT_UPPER_BOUND = "deptpulse:sla_attainment_upper_bound:wilson95"
NPS_UPPER_BOUND = "deptpulse:nps_upper_bound:95"
CSAT_AVERAGE_UPPER_BOUND = "deptpulse:csat_average_upper_bound:95"
SLA_ATTAINMENT_LOWER_BOUND = "deptpulse:sla_attainment_lower_bound:wilson95"

# What a figure's 95 % interval says against its target, per row {provider, customer, window}, the
# rule of the alerts and of the HTML scorecard's colours (stream_processors.scorecard.rows.evidence):
# EVIDENCE_BELOW when even the upper end is below target, EVIDENCE_ABOVE when the lower end reaches
# it, EVIDENCE_UNCLEAR when the interval straddles it; no series below the policy's sample minimum
# (the dashboards show EVIDENCE_TOO_FEW there).
SATISFIED_SHARE_EVIDENCE = "deptpulse:satisfied_share_evidence:wilson95"
SLA_ATTAINMENT_EVIDENCE = "deptpulse:sla_attainment_evidence:wilson95"
CSAT_AVERAGE_EVIDENCE = "deptpulse:csat_average_evidence:95"
NPS_EVIDENCE = "deptpulse:nps_evidence:95"
EVIDENCE_BELOW, EVIDENCE_UNCLEAR, EVIDENCE_ABOVE, EVIDENCE_TOO_FEW = -1, 0, 1, -2


# Per provider x customer x service gauges of the worker (stream_processors.metrics.ServiceGauges),
# labels {provider_department, customer_department, service_category, window}: where a shortfall is.
# Events without a service are labelled "other": Prometheus treats an empty label value as no label,
# which a selector, a `by` clause or a Grafana variable could not name.
OTHER_SERVICE = "other"
SERVICE_LABEL = "service_category"
SERVICE_CSAT_RESPONSES = "deptpulse_service_csat_responses"
SERVICE_CSAT_AVERAGE = "deptpulse_service_csat_average"
SERVICE_SATISFIED_SHARE = "deptpulse_service_satisfied_share"
SERVICE_SLA_REQUESTS = "deptpulse_service_sla_requests"
SERVICE_SLA_ATTAINMENT = "deptpulse_service_sla_attainment_ratio"
SERVICE_FIRST_RESPONSE_P90 = "deptpulse_service_first_response_p90_business_seconds"

# Missing successes per service, recorded only where positive: answers x (target - satisfied share)
# and requests x (target - attainment). The alerts name the service with the largest.
SERVICE_SATISFACTION_SHORTFALL = "deptpulse:service_satisfaction_shortfall"
SERVICE_SLA_SHORTFALL = "deptpulse:service_sla_shortfall"

# Improvement actions (action.recorded events) started within ACTION_EXPORT_DAYS, one series each:
# {provider_department, service_category ("*": every service of the provider), title, started_on
# (YYYY-MM-DD)}, valued at midnight UTC of started_on in seconds.
IMPROVEMENT_ACTION_START = "deptpulse_improvement_action_start_timestamp_seconds"
ALL_SERVICES = "*"
ACTION_EXPORT_DAYS = 90

# Dashboard panels that alerts send department heads to (rules.py names them, dashboards.py makes them).
BY_SERVICE_PANEL = "By service"  # the scorecard dashboard's row and table
SLA_BY_SERVICE_PANEL = "SLA attainment by service"  # the SLA dashboard's table
# The scorecard's survey-campaign table and improvement-action annotations (ClickHouse datasource).
LATEST_CAMPAIGN_PANEL = "Latest survey campaign"
ACTIONS_ANNOTATION = "Improvement actions"


# SLA verdicts by event time (the minute of the resolution that decided them), per provider over
# the burn-rate windows: gauge {provider_department, verdict ("met" | "breached"), window}, read from
# the signed minute buckets, so a corrected verdict moves from one count to the other instead of
# counting twice, and a replayed month lands in the windows of its own dates, not in the last 5m.
SLA_VERDICTS = "deptpulse_sla_verdicts"
SLA_BURN_WINDOWS = ("5m", "30m", "1h", "6h")


# Open requests about to breach an SLA target (stream_processors.core.at_risk): gauge
# {provider_department, customer_department, sla ("first_response" | "resolution")}, re-read from the
# request facts with the gauges; a pair whose count cleared stays at 0.
REQUESTS_AT_RISK = "deptpulse_requests_at_risk_of_sla_breach"
AT_RISK_SLA_LABEL = "sla"
AT_RISK_PATH = "/api/v1/at-risk"  # the read API's list of them (stream_processors.at_risk.api)


def sla_requests(window: str) -> str:
    """Requests with an SLA verdict in the window (a count, not a rate)."""
    return f"deptpulse:sla_requests:window{window}"


def sla_breach_ratio(window: str) -> str:
    return f"deptpulse:sla_breach_ratio:window{window}"


def sla_burn_rate(window: str) -> str:
    return f"deptpulse:sla_burn_rate:window{window}"


def dashboard_url(grafana_url: str, uid: str, variables: dict[str, str] | None = None) -> str:
    """A Grafana link. Values are department ids, windows or Prometheus template expressions such as
    ``{{$labels.provider_department}}``, all URL-safe once rendered, so they are not escaped here."""
    url = f"{grafana_url.rstrip('/')}/d/{uid}"
    if variables:
        url += "?" + "&".join(f"var-{name}={value}" for name, value in variables.items())
    return url
