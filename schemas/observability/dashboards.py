"""Grafana dashboards as code, and the provisioning that loads them.

Four dashboards (uids in :mod:`schemas.observability.names`): the department scorecard (templated by
``$provider_department``), the provider x customer matrix, SLA and response times, and pipeline
health. The panels query Prometheus (datasource uid ``prometheus``), except the scorecard's latest
survey campaign and its improvement-action annotations, which read ``raw_events`` through the
ClickHouse datasource (uid ``clickhouse``, plugin ``grafana-clickhouse-datasource``) with the SQL the
CLI uses (:mod:`schemas.reads`). Figures with a target (CSAT average, satisfied share, SLA attainment, NPS) are coloured
by the evidence of their 95 % interval (the ``deptpulse:*_evidence:*`` series: the rule of the
alerts and of the HTML scorecard), never by a threshold on the point value; a department's own
targets are plotted from the ``deptpulse:policy_*`` series.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from schemas import metric_names, reads
from schemas.directory import AlertPolicy, Directory
from schemas.observability import names
from schemas.observability.names import OVERALL_CUSTOMER, WINDOWS
from schemas.observability.render import notice
from schemas.observability.rules import BURN_RATE_TIERS, BurnRateTier

DATASOURCE = {"type": "prometheus", "uid": names.PROMETHEUS_DATASOURCE_UID}
CLICKHOUSE = {"type": "grafana-clickhouse-datasource", "uid": names.CLICKHOUSE_DATASOURCE_UID}
# The selected department as an SQL string literal (Grafana quotes and escapes it).
PROVIDER_SQL = "${provider_department:sqlstring}"
GRID_WIDTH = 24
SCHEMA_VERSION = 39  # Grafana 11
PROVIDER_VAR = "$provider_department"
WINDOW_VAR = "$window"
Thresholds = Sequence[tuple[str, float | None]]  # (colour, from value); the first from None


@dataclass(frozen=True)
class DashboardOptions:
    """Where Grafana finds its datasources and dashboards; defaults match deploy/compose."""

    prometheus_url: str = "http://127.0.0.1:19090"
    clickhouse_host: str = "127.0.0.1"
    clickhouse_port: int = 8123
    clickhouse_protocol: str = "http"
    clickhouse_user: str = "grafana"  # holds deptpulse_grafana_ro only (deploy/clickhouse/roles.sql)
    clickhouse_database: str = "deptpulse"
    clickhouse_password_env: str = "DEPTPULSE_GRAFANA_CLICKHOUSE_PASSWORD"  # read by Grafana at start-up
    dashboards_path: str = "/var/lib/grafana/dashboards"  # where compose mounts deploy/grafana/dashboards


# --- panels ------------------------------------------------------------------------------------------


class _Layout:
    """Hands out panel ids and grid positions, left to right, wrapping at Grafana's 24 columns."""

    def __init__(self) -> None:
        self.next_id = 1
        self.x = 0
        self.y = 0
        self.row_height = 0

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def place(self, width: int, height: int) -> dict[str, int]:
        if self.x + width > GRID_WIDTH:
            self.newline()
        position = {"h": height, "w": width, "x": self.x, "y": self.y}
        self.x += width
        self.row_height = max(self.row_height, height)
        return position

    def newline(self) -> None:
        self.y += self.row_height
        self.x, self.row_height = 0, 0

    def row(self, title: str) -> dict[str, Any]:
        if self.x:
            self.newline()
        panel = {
            "id": self._id(),
            "type": "row",
            "title": title,
            "collapsed": False,
            "gridPos": self.place(GRID_WIDTH, 1),
            "panels": [],
        }
        self.newline()
        return panel

    def panel(
        self,
        kind: str,
        title: str,
        targets: list[dict[str, Any]],
        size: tuple[int, int],
        *,
        description: str = "",
        unit: str | None = None,
        thresholds: Thresholds | None = None,
        decimals: int | None = None,
        options: dict[str, Any] | None = None,
        custom: dict[str, Any] | None = None,
        transformations: list[dict[str, Any]] | None = None,
        overrides: list[dict[str, Any]] | None = None,
        color: dict[str, Any] | None = None,
        mappings: list[dict[str, Any]] | None = None,
        datasource: dict[str, str] = DATASOURCE,
    ) -> dict[str, Any]:
        defaults: dict[str, Any] = {}
        if unit:
            defaults["unit"] = unit
        if decimals is not None:
            defaults["decimals"] = decimals
        if thresholds:
            defaults["thresholds"] = {
                "mode": "absolute",
                "steps": [{"color": color, "value": value} for color, value in thresholds],
            }
            defaults["color"] = {"mode": "thresholds"}
        if color:
            defaults["color"] = color
        if mappings:
            defaults["mappings"] = mappings
        if custom:
            defaults["custom"] = custom
        panel: dict[str, Any] = {
            "id": self._id(),
            "type": kind,
            "title": title,
            "description": description,
            "datasource": datasource,
            "gridPos": self.place(*size),
            "targets": [dict(target, refId=chr(ord("A") + i)) for i, target in enumerate(targets)],
            "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
            "options": options or {},
        }
        if transformations:
            panel["transformations"] = transformations
        return panel


def _sql_target(sql: str) -> dict[str, Any]:
    """A ClickHouse datasource query in SQL mode, as a table (the plugin's format 1)."""
    return {"datasource": CLICKHOUSE, "editorType": "sql", "queryType": "table", "format": 1, "rawSql": sql}


def _target(expr: str, legend: str = "", *, instant: bool = False) -> dict[str, Any]:
    target: dict[str, Any] = {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
    if instant:
        target.update(instant=True, range=False, format="table")
    else:
        target.update(instant=False, range=True, format="time_series")
    return target


def _merged_table(
    columns: Sequence[tuple[str, str]], hidden: Sequence[str], renamed: dict[str, str]
) -> list[dict[str, Any]]:
    """Transformations that join instant queries (one per column, refIds A, B, ...) on their labels
    into one table: ``hidden`` labels dropped, the values named after ``columns``."""
    return [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {
                "excludeByName": {
                    "Time": True,
                    **dict.fromkeys(hidden, True),
                    "job": True,
                    "instance": True,
                    "__name__": True,
                },
                "renameByName": {
                    f"Value #{chr(ord('A') + i)}": column for i, (_, column) in enumerate(columns)
                }
                | renamed,
            },
        },
    ]


def _service_variable(providers: str) -> dict[str, Any]:
    """The services of the selected provider(s), from the label values of the per-service gauges
    (events without a service are ``names.OTHER_SERVICE``); every service by default."""
    selector = f'{metric_names.SERVICE_CSAT_RESPONSES}{{provider_department{providers},customer_department="{OVERALL_CUSTOMER}"}}'
    query = f"label_values({selector}, {names.SERVICE_LABEL})"
    return {
        "type": "query",
        "name": "service",
        "label": "Service",
        "datasource": DATASOURCE,
        "query": query,  # Grafana's classic form; its Prometheus datasource asks the label values API
        "definition": query,
        "refresh": 2,  # on time range change: services come and go with the data
        "sort": 1,
        "current": {"text": "All", "value": "$__all"},
        "options": [],
        "multi": True,
        "includeAll": True,
        "allValue": ".+",
        "hide": 0,
    }


def _below_target(target: float) -> Thresholds:
    return [("red", None), ("green", target)]


# The evidence series' values (names.EVIDENCE_*) as words and colours, those of the HTML scorecard.
EVIDENCE_MAPPINGS = [
    {
        "type": "value",
        "options": {
            str(names.EVIDENCE_BELOW): {"text": "below target", "color": "red", "index": 0},
            str(names.EVIDENCE_UNCLEAR): {
                "text": "unclear: the interval straddles the target",
                "color": "orange",
                "index": 1,
            },
            str(names.EVIDENCE_ABOVE): {"text": "meets target", "color": "green", "index": 2},
            str(names.EVIDENCE_TOO_FEW): {"text": "too few samples", "color": "text", "index": 3},
        },
    }
]
_NEUTRAL = {"mode": "fixed", "fixedColor": "text"}


def _evidence_query(evidence: str, count: str, selector: str) -> str:
    """The evidence of each row of ``selector``, and EVIDENCE_TOO_FEW for rows below the sample minimum."""
    return f"{evidence}{selector} or ({count}{selector} * 0 - {-names.EVIDENCE_TOO_FEW})"


def _evidence_override(ref_id: str) -> dict[str, Any]:
    """The field of query ``ref_id`` shown as words, coloured by its mapping."""
    return {
        "matcher": {"id": "byFrameRefID", "options": ref_id},
        "properties": [
            {"id": "mappings", "value": EVIDENCE_MAPPINGS},
            {"id": "color", "value": {"mode": "thresholds"}},
            {"id": "unit", "value": "none"},
        ],
    }


_SEVERITY_COLOURS = {"page": "red", "ticket": "orange", "info": "blue"}


def _factor(tier: BurnRateTier) -> float:
    return tier.factor


_STAT = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "value"}
_CELL_COLOURS = {"cellOptions": {"type": "color-background"}, "align": "center"}


def _window_variable() -> dict[str, Any]:
    return _custom_variable("window", "Window", [(w, w) for w in WINDOWS], current="7d")


def _custom_variable(
    name: str, label: str, options: list[tuple[str, str]], current: str, *, include_all: bool = False
) -> dict[str, Any]:
    """A custom variable; ``options`` are (text, value), written as Grafana's 'text : value' list."""

    def escape(text: str) -> str:
        return text.replace(",", "\\,")

    selected = next(text for text, value in options if value == current) if current != "$__all" else "All"
    variable: dict[str, Any] = {
        "type": "custom",
        "name": name,
        "label": label,
        "query": ",".join(f"{escape(text)} : {value}" if text != value else value for text, value in options),
        "current": {"text": selected, "value": current},
        "options": [{"text": text, "value": value, "selected": value == current} for text, value in options],
        "multi": include_all,
        "includeAll": include_all,
        "hide": 0,
    }
    if include_all:
        variable["allValue"] = ".+"
    return variable


def _department_options(directory: Directory) -> list[tuple[str, str]]:
    return [(department.name, department.id) for department in directory.departments]


def _dashboard(
    directory: Directory,
    uid: str,
    title: str,
    description: str,
    panels: list[dict[str, Any]],
    variables: list[dict[str, Any]],
    time_from: str,
    annotations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "__generated": notice(directory.organisation),
        "uid": uid,
        "title": title,
        "description": f"{description} {notice(directory.organisation)}",
        "tags": ["deptpulse", "generated"],
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "timezone": "browser",
        "refresh": "1m",
        "time": {"from": time_from, "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": annotations or []},
        "links": [
            {
                "type": "dashboards",
                "tags": ["deptpulse"],
                "asDropdown": True,
                "title": "deptpulse",
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "panels": panels,
    }


# --- the department scorecard -----------------------------------------------------------------------


def _overall(metric: str) -> str:
    return (
        f'{metric}{{provider_department="{PROVIDER_VAR}",customer_department="{OVERALL_CUSTOMER}",'
        f'window="{WINDOW_VAR}"}}'
    )


def _per_customer(metric: str) -> str:
    return (
        f'{metric}{{provider_department="{PROVIDER_VAR}",customer_department!="{OVERALL_CUSTOMER}",'
        f'window="{WINDOW_VAR}"}}'
    )


def _per_service(metric: str, providers: str = f'="{PROVIDER_VAR}"') -> str:
    """A per-service gauge of the selected provider(s) and services, every customer together."""
    return (
        f'{metric}{{provider_department{providers},customer_department="{OVERALL_CUSTOMER}",'
        f'{names.SERVICE_LABEL}=~"$service",window="{WINDOW_VAR}"}}'
    )


def _units(units: dict[str, str]) -> list[dict[str, Any]]:
    """Field overrides giving table columns (by their displayed name) a unit."""
    return [
        {"matcher": {"id": "byName", "options": column}, "properties": [{"id": "unit", "value": unit}]}
        for column, unit in units.items()
    ]


def _policy(metric: str) -> str:
    return f'{metric}{{provider_department="{PROVIDER_VAR}"}}'


def scorecard(directory: Directory) -> dict[str, Any]:
    policy: AlertPolicy = directory.alert_policy
    layout = _Layout()
    backlog = (
        f"{metric_names.FIRST_RESPONSE_BACKLOG}"
        f'{{provider_department="{PROVIDER_VAR}",customer_department!="{OVERALL_CUSTOMER}"}}'
    )
    stat_size = (3, 4)

    def figure(
        title: str, metric: str, evidence: str, count: str, description: str, unit: str | None, decimals: int
    ) -> dict[str, Any]:
        """A figure with a target: its value (neutral) above what its 95 % interval says against the
        target (below / unclear / meets, or too few samples), coloured like the HTML scorecard."""
        return layout.panel(
            "stat",
            title,
            [
                _target(_overall(metric), "value"),
                _target(_evidence_query(evidence, count, _overall("")), "against target"),
            ],
            stat_size,
            description=f"{description} Coloured by the 95 % interval against the department's target, "
            "as the alerts judge it: red only when even its upper end is below target.",
            unit=unit,
            decimals=decimals,
            color=_NEUTRAL,
            overrides=[_evidence_override("B")],
            options=_STAT | {"orientation": "horizontal", "textMode": "value"},
        )

    panels = [
        layout.row(f"${{provider_department:text}}: every internal customer, last {WINDOW_VAR}"),
        figure(
            "CSAT average",
            metric_names.CSAT_AVERAGE,
            metric_names.CSAT_AVERAGE_EVIDENCE,
            metric_names.CSAT_RESPONSES,
            "Mean answer, 1 to 5.",
            None,
            2,
        ),
        figure(
            "Satisfied share",
            metric_names.SATISFIED_SHARE,
            metric_names.SATISFIED_SHARE_EVIDENCE,
            metric_names.CSAT_RESPONSES,
            "Share of answers 4 or 5 of 5.",
            "percentunit",
            1,
        ),
        layout.panel(
            "stat",
            "Satisfied share, 95% lower bound",
            [_target(_overall(metric_names.SATISFIED_SHARE_LOWER_BOUND))],
            stat_size,
            description="Wilson lower bound: low when answers are few, so not a verdict on its own "
            "(10 satisfied answers of 10 give 72 %).",
            unit="percentunit",
            decimals=1,
            color=_NEUTRAL,
            options=_STAT,
        ),
        layout.panel(
            "stat",
            "Answers",
            [_target(_overall(metric_names.CSAT_RESPONSES))],
            stat_size,
            description="CSAT answers in the window; alerts wait for the policy's minimum.",
            decimals=0,
            thresholds=_below_target(policy.csat_min_sample),
            options=_STAT,
        ),
        figure(
            "Internal NPS",
            metric_names.NPS,
            metric_names.NPS_EVIDENCE,
            metric_names.NPS_RESPONSES,
            "Promoters minus detractors, -100 to 100.",
            None,
            0,
        ),
        figure(
            "SLA attainment",
            metric_names.SLA_ATTAINMENT,
            metric_names.SLA_ATTAINMENT_EVIDENCE,
            metric_names.SLA_REQUESTS,
            "Share of requests that met their SLA targets.",
            "percentunit",
            1,
        ),
        layout.panel(
            "stat",
            "First response p90",
            [_target(_overall(metric_names.FIRST_RESPONSE_P90))],
            stat_size,
            description="In business time of the department's calendar.",
            unit="s",
            options=_STAT,
        ),
        layout.panel(
            "stat",
            "Waiting past first-response target",
            [_target(f"sum({backlog})")],
            stat_size,
            decimals=0,
            thresholds=[("green", None), ("orange", 1), ("red", 3)],
            options=_STAT,
        ),
        layout.row("Trends"),
        layout.panel(
            "timeseries",
            "Satisfied share vs target",
            [
                _target(_overall(metric_names.SATISFIED_SHARE), "satisfied share"),
                _target(_overall(metric_names.SATISFIED_SHARE_LOWER_BOUND), "95% lower bound"),
                _target(_policy(metric_names.POLICY_SATISFIED_SHARE_TARGET), "target"),
            ],
            (12, 8),
            unit="percentunit",
            custom={"lineWidth": 2},
        ),
        layout.panel(
            "timeseries",
            "SLA attainment vs target",
            [
                _target(_overall(metric_names.SLA_ATTAINMENT), "attainment"),
                _target(_policy(metric_names.POLICY_SLA_ATTAINMENT_TARGET), "target"),
            ],
            (12, 8),
            unit="percentunit",
            custom={"lineWidth": 2},
        ),
        layout.panel(
            "timeseries",
            "SLA error budget burn rate",
            [
                _target(
                    f'{metric_names.sla_burn_rate(tier.long_window)}{{provider_department="{PROVIDER_VAR}"}}',
                    f"{tier.long_window} (alert above {tier.factor:g}x)",
                )
                for tier in BURN_RATE_TIERS
            ],
            (12, 8),
            description="1 = spending the error budget exactly over 28 days.",
            thresholds=[("green", None)]
            + [
                (_SEVERITY_COLOURS[tier.severity], tier.factor)
                for tier in sorted(BURN_RATE_TIERS, key=_factor)
            ],
            custom={"thresholdsStyle": {"mode": "line"}},
        ),
        layout.panel(
            "timeseries",
            "First response p90 by internal customer",
            [_target(_per_customer(metric_names.FIRST_RESPONSE_P90), "{{customer_department}}")],
            (12, 8),
            unit="s",
        ),
        layout.row("By internal customer"),
        layout.panel(
            "table",
            f"Internal customers, last {WINDOW_VAR}",
            [_target(_per_customer(metric), instant=True) for metric, _ in _CUSTOMER_COLUMNS],
            (16, 10),
            description="One row per customer department. Answers below the policy minimum make "
            "the shares noisy: compare the lower bound.",
            transformations=_merged_table(
                _CUSTOMER_COLUMNS, ("provider_department", "window"), {"customer_department": "customer"}
            ),
        ),
        layout.panel(
            "bargauge",
            "Waiting past first-response target",
            [_target(backlog, "{{customer_department}}", instant=True)],
            (8, 10),
            decimals=0,
            thresholds=[("green", None), ("orange", 1), ("red", 3)],
            options={
                "orientation": "horizontal",
                "displayMode": "basic",
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            },
        ),
        layout.row(names.BY_SERVICE_PANEL),
        layout.panel(
            "table",
            f"{names.BY_SERVICE_PANEL}: every internal customer, last {WINDOW_VAR}",
            [_target(_per_service(metric), instant=True) for metric, _, _ in _SERVICE_COLUMNS],
            (24, 10),
            description="One row per service; 'other' is requests and answers without a service. "
            "'Missing' counts what the service lacks to reach the department's target (answers x "
            "(target - satisfied share), requests x (target - attainment)): the alerts name the "
            "service with the most.",
            transformations=_merged_table(
                [(metric, column) for metric, column, _ in _SERVICE_COLUMNS],
                ("provider_department", "customer_department", "window"),
                {names.SERVICE_LABEL: "service"},
            ),
            overrides=_units({column: unit for _, column, unit in _SERVICE_COLUMNS if unit}),
        ),
        layout.panel(
            "timeseries",
            "Satisfied share by service",
            [_target(_per_service(metric_names.SERVICE_SATISFIED_SHARE), "{{service_category}}")],
            (12, 8),
            unit="percentunit",
        ),
        layout.panel(
            "timeseries",
            "SLA attainment by service",
            [_target(_per_service(metric_names.SERVICE_SLA_ATTAINMENT), "{{service_category}}")],
            (12, 8),
            unit="percentunit",
        ),
        layout.row("Survey campaign and improvement actions"),
        layout.panel(
            "table",
            names.LATEST_CAMPAIGN_PANEL,
            [_sql_target(latest_campaign_sql(directory))],
            (24, 5),
            description="The department's most recently started survey campaign, every customer "
            "together, counted as `deptpulse surveys` counts it: the response rate is respondents "
            "over invitations, left out when the invitations are incomplete; the NPS is left out "
            "below the policy's minimum of answers. Each customer, the NPS margin and the change "
            "against the previous campaign: `deptpulse surveys --provider <id>`. Improvement "
            "actions (`deptpulse actions add`) are marked on the time series as annotations.",
            datasource=CLICKHOUSE,
            overrides=_units(
                {"started": "dateTimeAsIso", "last answer": "dateTimeAsIso", "response rate": "percentunit"}
            ),
        ),
    ]
    variables = [
        _custom_variable(
            "provider_department",
            "Department",
            _department_options(directory),
            current=directory.departments[0].id,
        ),
        _window_variable(),
        _service_variable(f'="{PROVIDER_VAR}"'),
    ]
    return _dashboard(
        directory,
        names.SCORECARD_UID,
        "deptpulse: department scorecard",
        "How a department serves its internal customers: satisfaction, NPS, SLA and response times.",
        panels,
        variables,
        "now-7d",
        [
            {
                "name": names.ACTIONS_ANNOTATION,
                "datasource": CLICKHOUSE,
                "enable": True,
                "iconColor": "purple",
                "target": _sql_target(actions_annotation_sql()) | {"refId": "Anno"},
            }
        ],
    )


def _policy_sql(directory: Directory, value: Callable[[AlertPolicy], float]) -> str:
    """The selected department's policy value, as SQL: the directory's values by department id."""
    ids = ", ".join(f"'{department.id}'" for department in directory.departments)
    values = ", ".join(f"{float(value(directory.policy_for(d.id)))!r}" for d in directory.departments)
    return f"transform({PROVIDER_SQL}, [{ids}], [{values}], {float(value(directory.alert_policy))!r})"


def latest_campaign_sql(directory: Directory) -> str:
    """The selected department's most recently started campaign, overall: the CLI's campaign SQL
    (schemas.reads.CAMPAIGNS_SQL) and the rules of ``campaign_row`` (stream_processors.surveys)."""
    campaigns = reads.with_provider_filter(reads.CAMPAIGNS_SQL, f"AND provider_department = {PROVIDER_SQL}")
    min_answers = _policy_sql(directory, lambda policy: policy.nps_min_sample)
    min_rate = _policy_sql(directory, lambda policy: policy.survey_min_response_rate)
    incomplete = (
        "(answered > 0 AND invitation_events = 0) OR (invitation_events > 0 AND respondents > invited)"
    )
    rate = (
        "if(invitations > 0 AND incomplete = 0 AND total_invited > 0 AND people <= total_invited, "
        "people / total_invited, NULL)"
    )
    return f"""SELECT
    campaign_id AS campaign,
    campaign_started AS started,
    campaign_ended AS "last answer",
    if(invitations > 0, total_invited, NULL) AS invited,
    answers AS answered,
    people AS respondents,
    {rate} AS "response rate",
    if(answers >= {min_answers}, round(100 * (promoters_total - detractors_total) / answers, 1), NULL) AS NPS,
    multiIf(
        invitations = 0, 'no invitations recorded',
        incomplete > 0 OR people > total_invited, 'the invitations are incomplete',
        people / total_invited < {min_rate}, 'low response: the figures speak for the few who answered',
        answers < {min_answers}, 'too few answers for an NPS',
        '') AS note
FROM (
    SELECT
        campaign_id,
        anyIf(started, overall = 1) AS campaign_started,
        anyIf(ended, overall = 1) AS campaign_ended,
        anyIf(invitation_events, overall = 1) AS invitations,
        anyIf(invited, overall = 1) AS total_invited,
        anyIf(answered, overall = 1) AS answers,
        anyIf(respondents, overall = 1) AS people,
        anyIf(promoters, overall = 1) AS promoters_total,
        anyIf(detractors, overall = 1) AS detractors_total,
        countIf(overall = 0 AND ({incomplete})) AS incomplete
    FROM ({campaigns})
    GROUP BY campaign_id
    ORDER BY campaign_started DESC, campaign_id DESC
    LIMIT 1
)"""


def actions_annotation_sql() -> str:
    """The selected department's improvement actions in the time range, one annotation each at the
    start of its start day (UTC): the CLI's action SQL (schemas.reads.ACTIONS_SQL)."""
    actions = reads.with_provider_filter(reads.ACTIONS_SQL, f"AND provider_department = {PROVIDER_SQL}")
    return f"""SELECT
    toDateTime(toDate(started_on), 'UTC') AS time,
    concat(title, ' (', if(service_category = '', 'every service', service_category),
           if(customer_department = '', '', concat(', for ', customer_department)), ')') AS text
FROM ({actions})
WHERE $__timeFilter(time)
ORDER BY time, text"""


_CUSTOMER_COLUMNS = [
    (metric_names.SATISFIED_SHARE, "satisfied share"),
    (metric_names.SATISFIED_SHARE_LOWER_BOUND, "lower bound"),
    (metric_names.CSAT_RESPONSES, "answers"),
    (metric_names.CSAT_AVERAGE, "CSAT"),
    (metric_names.NPS, "NPS"),
    (metric_names.SLA_ATTAINMENT, "SLA attainment"),
    (metric_names.FIRST_RESPONSE_P90, "first response p90 (s)"),
]


# (metric, column, unit): the scorecard's by-service table.
_SERVICE_COLUMNS = [
    (metric_names.SERVICE_CSAT_RESPONSES, "answers", ""),
    (metric_names.SERVICE_SATISFIED_SHARE, "satisfied share", "percentunit"),
    (metric_names.SERVICE_CSAT_AVERAGE, "CSAT", ""),
    (metric_names.SERVICE_SATISFACTION_SHORTFALL, "satisfied answers missing", ""),
    (metric_names.SERVICE_SLA_REQUESTS, "requests judged", ""),
    (metric_names.SERVICE_SLA_ATTAINMENT, "SLA attainment", "percentunit"),
    (metric_names.SERVICE_SLA_SHORTFALL, "on-time requests missing", ""),
    (metric_names.SERVICE_FIRST_RESPONSE_P90, "first response p90", "s"),
]
# The SLA dashboard's: every selected provider.
_SLA_SERVICE_COLUMNS = [
    (metric_names.SERVICE_SLA_REQUESTS, "requests judged", ""),
    (metric_names.SERVICE_SLA_ATTAINMENT, "SLA attainment", "percentunit"),
    (metric_names.SERVICE_SLA_SHORTFALL, "on-time requests missing", ""),
    (metric_names.SERVICE_FIRST_RESPONSE_P90, "first response p90", "s"),
]


# --- the provider x customer matrix ----------------------------------------------------------------


def matrix(directory: Directory) -> dict[str, Any]:
    policy = directory.alert_policy
    layout = _Layout()

    pairs = f'{{customer_department!="{OVERALL_CUSTOMER}",window="{WINDOW_VAR}"}}'

    def grid(
        title: str,
        expr: str,
        unit: str | None,
        description: str,
        decimals: int | None = None,
        thresholds: Thresholds | None = None,
        *,
        evidence: bool = False,
    ) -> dict[str, Any]:
        """A provider x customer table; coloured by ``thresholds``, by the evidence mappings when
        ``evidence`` (the query gives names.EVIDENCE_* values), else neutral."""
        return layout.panel(
            "table",
            title,
            [_target(expr, instant=True)],
            (12, 10),
            description=f"Rows: provider department; columns: customer department. {description}",
            unit=unit,
            decimals=decimals,
            thresholds=thresholds,
            color=None if thresholds or evidence else _NEUTRAL,
            mappings=EVIDENCE_MAPPINGS if evidence else None,
            custom=_CELL_COLOURS if thresholds or evidence else {"align": "center"},
            transformations=[
                {
                    "id": "groupingToMatrix",
                    "options": {
                        "columnField": "customer_department",
                        "rowField": "provider_department",
                        "valueField": "Value",
                        "emptyValue": "null",
                    },
                }
            ],
        )

    def against_target(what: str, evidence: str, count: str) -> dict[str, Any]:
        return grid(
            f"{what} against target",
            _evidence_query(evidence, count, pairs),
            None,
            f"What the 95 % interval of the {what.lower()} says against the provider's target, as the "
            "alerts judge it: below only when even its upper end is below target, meets when its "
            "lower end reaches it, unclear in between; too few samples below the policy's minimum.",
            evidence=True,
        )

    panels = [
        grid(
            "Satisfied share",
            f"{metric_names.SATISFIED_SHARE}{pairs}",
            "percentunit",
            "Answers 4 or 5 of 5.",
            0,
        ),
        against_target("Satisfied share", metric_names.SATISFIED_SHARE_EVIDENCE, metric_names.CSAT_RESPONSES),
        grid(
            "SLA attainment",
            f"{metric_names.SLA_ATTAINMENT}{pairs}",
            "percentunit",
            "Requests that met their SLA targets.",
            0,
        ),
        against_target("SLA attainment", metric_names.SLA_ATTAINMENT_EVIDENCE, metric_names.SLA_REQUESTS),
        grid(
            "Internal NPS", f"{metric_names.NPS}{pairs}", None, "Promoters minus detractors, -100 to 100.", 0
        ),
        against_target("Internal NPS", metric_names.NPS_EVIDENCE, metric_names.NPS_RESPONSES),
        grid(
            "CSAT answers",
            f"{metric_names.CSAT_RESPONSES}{pairs}",
            None,
            "Below the policy minimum, no alert fires.",
            0,
            _below_target(policy.csat_min_sample),
        ),
        grid(
            "First response p90 (business time)",
            f"{metric_names.FIRST_RESPONSE_P90}{pairs}",
            "s",
            "In the provider's business hours.",
        ),
    ]
    return _dashboard(
        directory,
        names.MATRIX_UID,
        "deptpulse: internal-customer matrix",
        "Every provider department against every customer department.",
        panels,
        [_window_variable()],
        "now-24h",
    )


# --- SLA and response times ---------------------------------------------------------------------------


def sla(directory: Directory) -> dict[str, Any]:
    layout = _Layout()
    providers = f'provider_department=~"{PROVIDER_VAR}"'
    overall = f'{{{providers},customer_department="{OVERALL_CUSTOMER}",window="{WINDOW_VAR}"}}'
    backlog = f'{{{providers},customer_department!="{OVERALL_CUSTOMER}"}}'
    panels = [
        layout.panel(
            "timeseries",
            f"SLA attainment, last {WINDOW_VAR}",
            [_target(f"{metric_names.SLA_ATTAINMENT}{overall}", "{{provider_department}}")],
            (12, 8),
            unit="percentunit",
        ),
        layout.panel(
            "timeseries",
            f"First response p90 (business time), last {WINDOW_VAR}",
            [_target(f"{metric_names.FIRST_RESPONSE_P90}{overall}", "{{provider_department}}")],
            (12, 8),
            unit="s",
        ),
        *(
            layout.panel(
                "timeseries",
                f"Error budget burn rate, {tier.long_window} and {tier.short_window}",
                [
                    _target(
                        f"{metric_names.sla_burn_rate(tier.long_window)}{{{providers}}}",
                        f"{{{{provider_department}}}} {tier.long_window}",
                    ),
                    _target(
                        f"{metric_names.sla_burn_rate(tier.short_window)}{{{providers}}}",
                        f"{{{{provider_department}}}} {tier.short_window}",
                    ),
                ],
                (12, 8),
                description=f"{tier.severity} when both windows burn faster than {tier.factor:g}x.",
                thresholds=[("green", None), (_SEVERITY_COLOURS[tier.severity], tier.factor)],
                custom={"thresholdsStyle": {"mode": "line"}},
            )
            for tier in BURN_RATE_TIERS
        ),
        layout.panel(
            "timeseries",
            "Requests with an SLA verdict in the last hour",
            [_target(f"{metric_names.sla_requests('1h')}{{{providers}}}", "{{provider_department}}")],
            (12, 8),
            description="By the time of the verdict (the resolution), as the burn rates count them.",
            decimals=0,
        ),
        layout.panel(
            "timeseries",
            "Waiting past first-response target",
            [
                _target(
                    f"sum by (provider_department) ({metric_names.FIRST_RESPONSE_BACKLOG}{backlog})",
                    "{{provider_department}}",
                )
            ],
            (12, 8),
            decimals=0,
        ),
        layout.panel(
            "table",
            f"Pairs below their SLA target, last {WINDOW_VAR}",
            [
                _target(
                    f'{metric_names.SLA_ATTAINMENT}{{{providers},customer_department!="{OVERALL_CUSTOMER}",'
                    f'window="{WINDOW_VAR}"}} < on (provider_department) group_left '
                    f"{metric_names.POLICY_SLA_ATTAINMENT_TARGET}",
                    instant=True,
                )
            ],
            (24, 8),
            unit="percentunit",
            transformations=[
                {"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True}}}
            ],
        ),
        layout.panel(
            "table",
            f"{names.SLA_BY_SERVICE_PANEL}, last {WINDOW_VAR}",
            [
                _target(_per_service(metric, f'=~"{PROVIDER_VAR}"'), instant=True)
                for metric, _, _ in _SLA_SERVICE_COLUMNS
            ],
            (12, 10),
            description="Every customer together; 'other' is requests without a service. 'On-time "
            "requests missing' = requests x (target - attainment): the SLA alert names the service "
            "with the most.",
            transformations=_merged_table(
                [(metric, column) for metric, column, _ in _SLA_SERVICE_COLUMNS],
                ("customer_department", "window"),
                {"provider_department": "provider", names.SERVICE_LABEL: "service"},
            ),
            overrides=_units({column: unit for _, column, unit in _SLA_SERVICE_COLUMNS if unit}),
        ),
        layout.panel(
            "timeseries",
            f"{names.SLA_BY_SERVICE_PANEL}, last {WINDOW_VAR}, over time",
            [
                _target(
                    _per_service(metric_names.SERVICE_SLA_ATTAINMENT, f'=~"{PROVIDER_VAR}"'),
                    "{{provider_department}} {{service_category}}",
                )
            ],
            (12, 10),
            unit="percentunit",
        ),
    ]
    variables = [
        _custom_variable(
            "provider_department",
            "Department",
            _department_options(directory),
            current="$__all",
            include_all=True,
        ),
        _window_variable(),
        _service_variable(f'=~"{PROVIDER_VAR}"'),
    ]
    return _dashboard(
        directory,
        names.SLA_UID,
        "deptpulse: SLA and response times",
        "SLA attainment, error-budget burn rates, first-response times and the backlog, per provider.",
        panels,
        variables,
        "now-7d",
    )


# --- pipeline health -----------------------------------------------------------------------------------


def pipeline(directory: Directory) -> dict[str, Any]:
    layout = _Layout()
    rate = "$__rate_interval"
    up = [("red", None), ("green", 1)]
    panels = [
        layout.panel(
            "stat",
            "Worker up",
            [_target('up{job="deptpulse-worker"}', "{{instance}}")],
            (4, 4),
            thresholds=up,
            options=_STAT,
        ),
        layout.panel(
            "stat",
            "Gateway up",
            [_target('up{job="deptpulse-gateway"}', "{{instance}}")],
            (4, 4),
            thresholds=up,
            options=_STAT,
        ),
        layout.panel(
            "stat",
            "Events consumed / s",
            [_target(f"sum(rate({metric_names.EVENTS}[{rate}]))")],
            (4, 4),
            unit="ops",
            options=_STAT,
        ),
        layout.panel(
            "stat",
            "Consumer lag",
            [_target(f"sum({metric_names.CONSUMER_LAG})")],
            (4, 4),
            decimals=0,
            thresholds=[("green", None), ("orange", 1000)],
            options=_STAT,
        ),
        layout.panel(
            "stat",
            "Dead letters, last hour",
            [_target(f"sum(increase({metric_names.DEAD_LETTERS}[1h]))")],
            (4, 4),
            decimals=0,
            thresholds=[("green", None), ("orange", 1)],
            options=_STAT,
        ),
        layout.panel(
            "stat",
            "Sink errors, last hour",
            [_target(f"sum(increase({metric_names.SINK_ERRORS}[1h]))")],
            (4, 4),
            decimals=0,
            thresholds=[("green", None), ("red", 1)],
            options=_STAT,
        ),
        layout.panel(
            "timeseries",
            "Events by type and outcome",
            [
                _target(
                    f"sum by (event_type, outcome) (rate({metric_names.EVENTS}[{rate}]))",
                    "{{event_type}} {{outcome}}",
                )
            ],
            (12, 8),
            unit="ops",
        ),
        layout.panel(
            "timeseries",
            "Dead letters, duplicates and late events",
            [
                _target(
                    f"sum by (reason) (rate({metric_names.DEAD_LETTERS}[{rate}]))", "dead letter: {{reason}}"
                ),
                _target(f"sum(rate({metric_names.DUPLICATE_EVENTS}[{rate}]))", "duplicate"),
                _target(f"sum(rate({metric_names.LATE_EVENTS}[{rate}]))", "late"),
            ],
            (12, 8),
            unit="ops",
        ),
        layout.panel(
            "timeseries",
            "Consumer lag by partition",
            [_target(metric_names.CONSUMER_LAG, "partition {{partition}}")],
            (12, 8),
            decimals=0,
        ),
        layout.panel(
            "timeseries",
            "Time since the last event, by source",
            [_target(f"time() - {metric_names.LAST_EVENT_TIMESTAMP}", "{{source}}")],
            (12, 8),
            unit="s",
        ),
        layout.panel(
            "timeseries",
            "Sink rows written by table",
            [_target(f"sum by (table) (rate({metric_names.SINK_ROWS}[{rate}]))", "{{table}}")],
            (8, 8),
            unit="rowsps",
        ),
        layout.panel(
            "timeseries",
            "Sink batch duration",
            [
                _target(
                    "histogram_quantile(0.5, sum by (le) "
                    f"(rate({metric_names.SINK_BATCH_DURATION}_bucket[{rate}])))",
                    "p50",
                ),
                _target(
                    "histogram_quantile(0.99, sum by (le) "
                    f"(rate({metric_names.SINK_BATCH_DURATION}_bucket[{rate}])))",
                    "p99",
                ),
            ],
            (8, 8),
            unit="s",
        ),
        layout.panel(
            "timeseries",
            "Sink batches and errors",
            [
                _target(f"sum(rate({metric_names.SINK_BATCHES}[{rate}]))", "batches"),
                _target(f"sum(rate({metric_names.SINK_ERRORS}[{rate}]))", "errors"),
            ],
            (8, 8),
            unit="ops",
        ),
        layout.panel(
            "timeseries",
            "Gateway requests by integration and status",
            [
                _target(
                    f"sum by (integration, status) (rate({metric_names.GATEWAY_REQUESTS}[{rate}]))",
                    "{{integration}} {{status}}",
                )
            ],
            (8, 8),
            unit="reqps",
        ),
        layout.panel(
            "timeseries",
            "Gateway request duration p99 by route",
            [
                _target(
                    "histogram_quantile(0.99, sum by (le, route) "
                    f"(rate({metric_names.GATEWAY_REQUEST_DURATION}_bucket[{rate}])))",
                    "{{route}}",
                )
            ],
            (8, 8),
            unit="s",
        ),
        layout.panel(
            "timeseries",
            "Gateway events published by source",
            [
                _target(
                    f"sum by (source) (rate({metric_names.GATEWAY_EVENTS_PUBLISHED}[{rate}]))", "{{source}}"
                )
            ],
            (8, 8),
            unit="ops",
        ),
    ]
    return _dashboard(
        directory,
        names.PIPELINE_UID,
        "deptpulse: pipeline health",
        "Ingestion gateway, Kafka consumer, ClickHouse sink and event freshness.",
        panels,
        [],
        "now-6h",
    )


# --- files -----------------------------------------------------------------------------------------------


def dashboards(directory: Directory) -> dict[str, dict[str, Any]]:
    """File name (under ``deploy/grafana/dashboards/``) -> dashboard JSON model."""
    return {
        "scorecard.json": scorecard(directory),
        "matrix.json": matrix(directory),
        "sla.json": sla(directory),
        "pipeline.json": pipeline(directory),
    }


def datasources(options: DashboardOptions | None = None) -> dict[str, Any]:
    options = options or DashboardOptions()
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "type": "prometheus",
                "uid": names.PROMETHEUS_DATASOURCE_UID,
                "access": "proxy",
                "url": options.prometheus_url,
                "isDefault": True,
                "editable": False,
                "jsonData": {"timeInterval": "5s", "httpMethod": "POST"},
            },
            {
                "name": "ClickHouse",
                "type": "grafana-clickhouse-datasource",
                "uid": names.CLICKHOUSE_DATASOURCE_UID,
                "editable": False,
                "jsonData": {
                    "host": options.clickhouse_host,
                    "port": options.clickhouse_port,
                    "protocol": options.clickhouse_protocol,
                    "secure": False,
                    "username": options.clickhouse_user,
                    "defaultDatabase": options.clickhouse_database,
                },
                "secureJsonData": {"password": f"${{{options.clickhouse_password_env}}}"},
            },
        ],
    }


def dashboard_provider(options: DashboardOptions | None = None) -> dict[str, Any]:
    options = options or DashboardOptions()
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "deptpulse",
                "folder": "deptpulse",
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": options.dashboards_path, "foldersFromFilesStructure": False},
            }
        ],
    }


def annotation_queries(dashboard: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(annotation name, datasource uid, query) of every annotation query of the dashboard."""
    return [
        (annotation["name"], annotation["datasource"]["uid"], annotation["target"]["rawSql"])
        for annotation in dashboard["annotations"]["list"]
    ]


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[int, str, str]]:
    """(panel id, datasource uid, query) of every target: PromQL ``expr`` or ClickHouse ``rawSql``."""
    return [
        (panel["id"], target["datasource"]["uid"], target.get("expr") or target.get("rawSql") or "")
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
