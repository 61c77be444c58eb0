"""Labels, windows, uids and panel titles shared by the generated rules, Alertmanager config and
dashboards (metric names: :mod:`schemas.metric_names`)."""

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

# Values of the evidence series (schemas.metric_names.*_EVIDENCE): EVIDENCE_BELOW when even the
# upper end of the 95 % interval is below target, EVIDENCE_ABOVE when the lower end reaches it,
# EVIDENCE_UNCLEAR when the interval straddles it; no series below the policy's sample minimum
# (the dashboards show EVIDENCE_TOO_FEW there).
EVIDENCE_BELOW, EVIDENCE_UNCLEAR, EVIDENCE_ABOVE, EVIDENCE_TOO_FEW = -1, 0, 1, -2

# The per-service gauges' label (schemas.metric_names.SERVICE_*). Events without a service are
# labelled "other": Prometheus treats an empty label value as no label, which a selector, a `by`
# clause or a Grafana variable could not name.
OTHER_SERVICE = "other"
SERVICE_LABEL = "service_category"

# Improvement actions (schemas.metric_names.IMPROVEMENT_ACTION_START) are exported for the actions
# started within ACTION_EXPORT_DAYS; service_category ALL_SERVICES: every service of the provider.
ALL_SERVICES = "*"
ACTION_EXPORT_DAYS = 90

# Dashboard panels that alerts send department heads to (rules.py names them, dashboards.py makes them).
BY_SERVICE_PANEL = "By service"  # the scorecard dashboard's row and table
SLA_BY_SERVICE_PANEL = "SLA attainment by service"  # the SLA dashboard's table
# The scorecard's survey-campaign table and improvement-action annotations (ClickHouse datasource).
LATEST_CAMPAIGN_PANEL = "Latest survey campaign"
ACTIONS_ANNOTATION = "Improvement actions"

# The burn-rate windows of schemas.metric_names.SLA_VERDICTS and the burn-rate rules.
SLA_BURN_WINDOWS = ("5m", "30m", "1h", "6h")


# The at-risk gauge's label (schemas.metric_names.REQUESTS_AT_RISK): "first_response" | "resolution".
AT_RISK_SLA_LABEL = "sla"
AT_RISK_PATH = "/api/v1/at-risk"  # the read API's list of them (stream_processors.at_risk.api)


def dashboard_url(grafana_url: str, uid: str, variables: dict[str, str] | None = None) -> str:
    """A Grafana link. Values are department ids, windows or Prometheus template expressions such as
    ``{{$labels.provider_department}}``, all URL-safe once rendered, so they are not escaped here."""
    url = f"{grafana_url.rstrip('/')}/d/{uid}"
    if variables:
        url += "?" + "&".join(f"var-{name}={value}" for name, value in variables.items())
    return url
