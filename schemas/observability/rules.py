"""Prometheus recording and alerting rules generated from the department directory.

The directory's alert policies become constant series per ``provider_department`` (``policy.yml``);
every business alert joins them, so one rule serves every department and a department's own policy
changes its thresholds without a new expression. Business alerts never fire below the policy's
sample minimum. Metric contract (the worker's ``/metrics``):

* gauges ``{provider_department, customer_department, window}`` with ``window`` in 1h|24h|7d|28d and
  ``customer_department="*"`` for the provider's overall row (every internal customer together);
* gauges ``deptpulse_sla_verdicts{provider_department, verdict, window}``: met and breached SLA
  verdicts by event time over the burn-rate windows (5m|30m|1h|6h), read from the signed minute
  buckets; the burn rates are ratios of these, not ``rate()`` of the processing-time counters
  ``deptpulse_sla_{met,breached}_total`` (a correction would count twice, a replay would crowd
  weeks of verdicts into the last minutes);
* pipeline metrics of the worker (job ``deptpulse-worker``) and gateway (job ``deptpulse-gateway``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from textwrap import dedent
from typing import Any, Final, Literal

from schemas import metric_names
from schemas.directory import AlertPolicy, Directory
from schemas.observability import names
from schemas.observability.names import AT_RISK_PATH, OVERALL_CUSTOMER

Severity = Literal["page", "ticket", "info"]
Category = Literal["business", "pipeline"]
Text = tuple[str, str]  # (English, Chinese)

PROVIDER = "provider_department"
CUSTOMER = "customer_department"
SERVICE = names.SERVICE_LABEL
SLA_BUDGET_PERIOD_DAYS = 28  # the period the burn-rate factors are calibrated for (Google SRE workbook)


@dataclass(frozen=True)
class BurnRateTier:
    """One multi-window burn-rate alert: both windows must burn faster than ``factor`` x the budget."""

    name: str
    severity: Severity
    long_window: str
    short_window: str
    factor: float
    for_: str


BURN_RATE_TIERS = (
    BurnRateTier("Fast", "page", "1h", "5m", 14.4, "2m"),  # 2% of a 28-day budget in 1h
    BurnRateTier("Slow", "ticket", "6h", "30m", 6.0, "15m"),  # 5% of a 28-day budget in 6h
)


def _default_source_silence() -> dict[str, int]:
    return {"hr-survey": 8 * 86400}  # survey exports arrive weekly


@dataclass(frozen=True)
class RuleOptions:
    """Generator parameters that the directory does not hold."""

    grafana_url: str = names.DEFAULT_GRAFANA_URL
    runbook_base_url: str | None = None  # e.g. a wiki page; each alert links to #<alertname lower-case>
    satisfaction_window: str = "7d"
    falling_window: str = "24h"  # "green SLA, red satisfaction" compares this window ...
    baseline_window: str = "7d"  # ... with this one
    sla_window: str = "7d"
    nps_window: str = "28d"
    burn_rate_tiers: tuple[BurnRateTier, ...] = BURN_RATE_TIERS
    backlog_min_requests: int = 3
    at_risk_min_requests: int = 1  # every request about to breach is worth a warning
    at_risk_for: str = "1m"  # short: the warning is useful only before the breach (20 % of 10 min is 2 min)
    consumer_lag_threshold: int = 1000
    dead_letter_ratio: float = 0.05
    late_event_ratio: float = 0.10
    gateway_error_ratio: float = 0.05
    sink_errors_per_15m: int = 3
    source_silence_seconds: int = 86400  # a ticketing source quiet for a day means a broken webhook
    source_silence_overrides: Mapping[str, int] = field(default_factory=_default_source_silence)
    action_recent_days: int = 28  # satisfaction alerts name an improvement action started this recently

    def __post_init__(self) -> None:
        unexported = {
            window
            for tier in self.burn_rate_tiers
            for window in (tier.long_window, tier.short_window)
            if window not in names.SLA_BURN_WINDOWS
        }
        if unexported:
            raise ValueError(
                f"burn-rate windows {sorted(unexported)}: the worker exports SLA verdicts over "
                f"{', '.join(names.SLA_BURN_WINDOWS)} only"
            )
        if not 1 <= self.action_recent_days <= names.ACTION_EXPORT_DAYS:
            raise ValueError(
                f"action_recent_days {self.action_recent_days}: the worker exports the actions of the "
                f"last {names.ACTION_EXPORT_DAYS} days only"
            )


# --- expressions -----------------------------------------------------------------------------------


def _num(value: float) -> str:
    """A PromQL literal without float noise (1 - 0.95 -> 0.05)."""
    return f"{round(value, 10):.10g}"


def _expr(text: str) -> str:
    return dedent(text).strip()


def _window_sel(window: str, *extra: str) -> str:
    return "{" + ",".join((f'window="{window}"', *extra)) + "}"


def _guarded(metric: str, window: str, op: str, policy_metric: str) -> str:
    """``metric{window} <op> policy`` joined per provider (one policy series, many rows)."""
    return f"{metric}{_window_sel(window)} {op} on ({PROVIDER}) group_left {policy_metric}"


# --- annotation text --------------------------------------------------------------------------------

_CUSTOMER = {
    "en": '{{ if eq $labels.customer_department "*" }}all internal customers'
    "{{ else }}{{ $labels.customer_department }}{{ end }}",
    # Spaces around a Latin id inside Chinese text, none around the Chinese phrase.
    "zh": '{{ if eq $labels.customer_department "*" }}所有内部客户部门'
    "{{ else }} {{ $labels.customer_department }} {{ end }}",
}
_FORMATS = {
    "pct": "humanizePercentage",
    "int": 'printf "%.0f"',
    "1f": 'printf "%.1f"',
    "2f": 'printf "%.2f"',
    "duration": "humanizeDuration",
}
_TOKEN = re.compile(r"(?<!\{)\{([a-z_0-9:]+)\}(?!\})")


def _query(selector_format: str, args: str, fmt: str) -> str:
    """A template that queries one value (e.g. a policy target) when the alert is rendered."""
    return f'{{{{ with printf "{selector_format}" {args} | query }}}}{{{{ . | first | value | {_FORMATS[fmt]} }}}}{{{{ end }}}}'


def policy_value(metric: str, fmt: str) -> str:
    return _query(f"{metric}{{{PROVIDER}=%q}}", "$labels.provider_department", fmt)


def row_value(metric: str, fmt: str, window: str | None = None) -> str:
    """The same pair's value of another metric, in the alert's window or a fixed one."""
    window_arg = "$labels.window" if window is None else f'"{window}"'
    return _query(
        f"{metric}{{{PROVIDER}=%q,{CUSTOMER}=%q,window=%q}}",
        f"$labels.provider_department $labels.customer_department {window_arg}",
        fmt,
    )


def _fill(text: str, lang: str, snippets: Mapping[str, str | Text]) -> str:
    """Replace ``{token}`` placeholders (never Go's ``{{ }}``) with template snippets; a snippet given
    as (English, Chinese) is taken in the text's language."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(1)
        if token == "provider":
            return "{{ $labels.provider_department }}"
        if token == "customer":
            return _CUSTOMER[lang]
        if token == "window":
            return "{{ $labels.window }}"
        if token.startswith("value:"):
            return "{{ $value | " + _FORMATS[token.removeprefix("value:")] + " }}"
        snippet = snippets[token]
        return snippet if isinstance(snippet, str) else snippet[0 if lang == "en" else 1]

    return _TOKEN.sub(replace, text)


def command(name: str, *options: str, customer: bool = True) -> str:
    """A ``deptpulse`` command about the alert's provider (and its customer, for a pair's alert)."""
    customer_option = (
        f'{{{{ if ne $labels.customer_department "{OVERALL_CUSTOMER}" }}}} --customer '
        "{{ $labels.customer_department }}{{ end }}"
        if customer
        else ""
    )
    return (
        f"`deptpulse {name} --provider {{{{ $labels.provider_department }}}}{customer_option}"
        + "".join(f" {option}" for option in options)
        + "`"
    )


def by_service_report(window: str = "{{ $labels.window }}", *, customer: bool = True) -> str:
    """``deptpulse report --by service``: one row per service of the provider (and customer)."""
    return command("report", "--by service", f"--window {window}", customer=customer)


_SERVICE_NAME = {  # events without a service are labelled OTHER_SERVICE by the worker
    "en": f'{{{{ if eq $service "{names.OTHER_SERVICE}" }}}}requests without a service'
    "{{ else }}{{ $service }}{{ end }}",
    "zh": f'{{{{ if eq $service "{names.OTHER_SERVICE}" }}}}未指定服务的请求{{{{ else }}}} {{{{ $service }}}}{{{{ end }}}}',
}


def service_shortfall(shortfall: str, share: str, count: str, sentence: Text) -> Text:
    """A sentence naming the service with the largest ``shortfall`` in the alert's row (provider,
    customer, window), with its ``share`` and ``count``; nothing when there is no service data.
    ``sentence`` holds ``{service}``, ``{share}`` and ``{count}``."""
    row = f"{PROVIDER}=%q,{CUSTOMER}=%q,window=%q"
    args = "$labels.provider_department $labels.customer_department $labels.window"
    values = {
        "share": _query(f"{share}{{{row},{SERVICE}=%q}}", f"{args} $service", "pct"),
        "count": _query(f"{count}{{{row},{SERVICE}=%q}}", f"{args} $service", "int"),
    }

    def one(text: str, lang: str) -> str:
        body = text.format(service=_SERVICE_NAME[lang], **values)
        return (
            f'{{{{ with printf "topk(1, {shortfall}{{{row}}})" {args} | query }}}}'
            f"{{{{ range . }}}}{{{{ $service := .Labels.{SERVICE} }}}}{body}{{{{ end }}}}{{{{ end }}}}"
        )

    return one(sentence[0], "en"), one(sentence[1], "zh")


def satisfaction_by_service() -> Text:
    return service_shortfall(
        metric_names.SERVICE_SATISFACTION_SHORTFALL,
        metric_names.SERVICE_SATISFIED_SHARE,
        metric_names.SERVICE_CSAT_RESPONSES,
        (
            " Most of the shortfall is in {service}: {share} satisfied of {count} answers.",
            "主要是{service}：{count} 份评价中 {share} 为满意。",
        ),
    )


def sla_by_service() -> Text:
    return service_shortfall(
        metric_names.SERVICE_SLA_SHORTFALL,
        metric_names.SERVICE_SLA_ATTAINMENT,
        metric_names.SERVICE_SLA_REQUESTS,
        (
            " Most of the shortfall is in {service}: {share} of {count} requests met their SLA.",
            "主要是{service}：{count} 个请求中 {share} 达成 SLA。",
        ),
    )


def improvement_action(days: int) -> Text:
    """A sentence naming the newest improvement action started within ``days`` days on the alert's
    provider, for every service or for a service that falls short in the alert's row (provider,
    customer, window); nothing when there is none."""
    action, seconds = metric_names.IMPROVEMENT_ACTION_START, days * 86400
    query = (
        f"topk(1, ({action}{{{PROVIDER}=%q,{SERVICE}=%q}} > time() - {seconds}) "
        f"or (({action}{{{PROVIDER}=%q}} > time() - {seconds}) and on ({SERVICE}) "
        f"{metric_names.SERVICE_SATISFACTION_SHORTFALL}{{{PROVIDER}=%q,{CUSTOMER}=%q,window=%q}}))"
    )
    args = (
        f'$labels.provider_department "{names.ALL_SERVICES}" $labels.provider_department '
        "$labels.provider_department $labels.customer_department $labels.window"
    )
    every = f'{{{{ if eq .Labels.{SERVICE} "{names.ALL_SERVICES}" }}}}'
    effect = command("actions list", customer=False)
    english = (
        f" An improvement action on {every}every service{{{{ else }}}}{{{{ .Labels.{SERVICE} }}}}{{{{ end }}}} "
        f"started on {{{{ .Labels.started_on }}}}: {{{{ .Labels.title }}}}; its effect: {effect}."
    )
    chinese = (
        f"针对{every}所有服务{{{{ else }}}} {{{{ .Labels.{SERVICE} }}}} {{{{ end }}}}的改进措施已于 "
        f"{{{{ .Labels.started_on }}}} 开始：{{{{ .Labels.title }}}}；其成效：{effect}。"
    )

    def newest(sentence: str) -> str:
        return f'{{{{ with printf "{query}" {args} | query }}}}{{{{ range . }}}}{sentence}{{{{ end }}}}{{{{ end }}}}'

    return newest(english), newest(chinese)


def _dissatisfied_say() -> dict[str, str]:
    """What customers say in the alert's window: the themes (what low scores say more often than high
    ones) and the comments of the dissatisfied answers (CSAT 1-3)."""
    window = "--window {{ $labels.window }}"
    return {"themes": command("themes", window), "comments": command("comments", "--max-csat 3", window)}


@dataclass(frozen=True)
class _AlertSpec:
    name: str
    expr: str
    for_: str
    severity: Severity
    category: Category
    summary: Text | str
    description: Text | str
    dashboard_uid: str
    snippets: Mapping[str, str | Text] = field(default_factory=dict)
    dashboard_window: bool = False  # the alert's rows carry a window: open the dashboard on it


def _alert(spec: _AlertSpec, options: RuleOptions) -> dict[str, Any]:
    annotations: dict[str, str] = {}
    for key, text in (("summary", spec.summary), ("description", spec.description)):
        if isinstance(text, str):
            annotations[key] = _fill(text, "en", spec.snippets)
        else:
            annotations[key] = _fill(text[0], "en", spec.snippets)
            annotations[f"{key}_zh"] = _fill(text[1], "zh", spec.snippets)
    variables = {PROVIDER: "{{$labels.provider_department}}"} if spec.category == "business" else None
    if variables is not None and spec.dashboard_window:
        variables["window"] = "{{$labels.window}}"
    annotations["dashboard_url"] = names.dashboard_url(options.grafana_url, spec.dashboard_uid, variables)
    if options.runbook_base_url:
        annotations["runbook_url"] = f"{options.runbook_base_url}#{spec.name.lower()}"
    return {
        "alert": spec.name,
        "expr": spec.expr,
        "for": spec.for_,
        "labels": {"severity": spec.severity, "category": spec.category},
        "annotations": annotations,
    }


# --- policy -----------------------------------------------------------------------------------------


def _policy_values(policy: AlertPolicy) -> list[tuple[str, float]]:
    return [
        (metric_names.POLICY_SLA_ATTAINMENT_TARGET, policy.sla_attainment_target),
        (metric_names.POLICY_SLA_ERROR_BUDGET, 1 - policy.sla_attainment_target),
        (metric_names.POLICY_SATISFIED_SHARE_TARGET, policy.satisfied_share_target),
        (metric_names.POLICY_CSAT_TARGET, policy.csat_target),
        (metric_names.POLICY_NPS_TARGET, policy.nps_target),
        (metric_names.POLICY_CSAT_MIN_SAMPLE, policy.csat_min_sample),
        (metric_names.POLICY_SLA_MIN_SAMPLE, policy.sla_min_sample),
        (metric_names.POLICY_NPS_MIN_SAMPLE, policy.nps_min_sample),
        (metric_names.POLICY_SLA_AT_RISK_SHARE, policy.sla_at_risk_share),
        (metric_names.POLICY_FIRST_RESPONSE_SLA_TARGET, policy.first_response_target),
        (metric_names.POLICY_RESOLUTION_SLA_TARGET, policy.resolution_target),
    ]


def policy_rules(directory: Directory) -> dict[str, Any]:
    """Each department's alert policy (its own or the organisation's default) as constant series."""
    rules = [
        {"record": metric, "expr": f"vector({_num(value)})", "labels": {PROVIDER: department.id}}
        for department in directory.departments
        for metric, value in _policy_values(directory.policy_for(department.id))
    ]
    return {"groups": [{"name": "deptpulse-policy", "rules": rules}]}


# --- SLA ---------------------------------------------------------------------------------------------


def _shortfall(count: str, share: str, target_metric: str) -> str:
    """Missing successes per service row: ``count x (target - share)``, only where positive."""
    return _expr(
        f"""
        {count}
        * on ({PROVIDER}, {CUSTOMER}, {SERVICE}, window)
          ({target_metric} - on ({PROVIDER}) group_right {share})
        > 0
        """
    )


def _burn_windows(options: RuleOptions) -> list[str]:
    windows = {w for tier in options.burn_rate_tiers for w in (tier.short_window, tier.long_window)}
    return sorted(windows, key=_window_seconds)


def _window_seconds(window: str) -> int:
    value, unit = int(window[:-1]), window[-1]
    return value * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def sla_rules(options: RuleOptions) -> dict[str, Any]:
    recording: list[dict[str, Any]] = []
    breached = 'verdict="breached"'
    for window in _burn_windows(options):
        recording += [
            {
                "record": metric_names.sla_requests(window),
                "expr": f"sum by ({PROVIDER}) ({metric_names.SLA_VERDICTS}{_window_sel(window)})",
            },
            {
                # Absent, not 0/0, while a window has no verdict.
                "record": metric_names.sla_breach_ratio(window),
                "expr": f"sum by ({PROVIDER}) ({metric_names.SLA_VERDICTS}{_window_sel(window, breached)})\n"
                f"/ ({metric_names.sla_requests(window)} > 0)",
            },
            {
                "record": metric_names.sla_burn_rate(window),
                "expr": f"{metric_names.sla_breach_ratio(window)}\n"
                f"/ on ({PROVIDER}) {metric_names.POLICY_SLA_ERROR_BUDGET}",
            },
        ]
    recording += [
        {
            "record": metric_names.SLA_ATTAINMENT_UPPER_BOUND,
            "expr": _wilson_upper_bound(metric_names.SLA_ATTAINMENT, metric_names.SLA_REQUESTS),
        },
        {
            "record": metric_names.SLA_ATTAINMENT_LOWER_BOUND,
            "expr": _wilson_bound(metric_names.SLA_ATTAINMENT, metric_names.SLA_REQUESTS, "-"),
        },
        {
            "record": metric_names.SLA_ATTAINMENT_EVIDENCE,
            "expr": _evidence(
                metric_names.SLA_ATTAINMENT_UPPER_BOUND,
                metric_names.SLA_ATTAINMENT_LOWER_BOUND,
                metric_names.POLICY_SLA_ATTAINMENT_TARGET,
                metric_names.SLA_REQUESTS,
                metric_names.POLICY_SLA_MIN_SAMPLE,
            ),
        },
        *(
            {"record": metric.upper_bound, "expr": _wilson_upper_bound(metric.attainment, metric.requests)}
            for metric in _SLA_METRICS
        ),
        {
            "record": metric_names.SERVICE_SLA_SHORTFALL,
            "expr": _shortfall(
                metric_names.SERVICE_SLA_REQUESTS,
                metric_names.SERVICE_SLA_ATTAINMENT,
                metric_names.POLICY_SLA_ATTAINMENT_TARGET,
            ),
        },
    ]
    alerts = [_alert(_burn_rate_alert(tier), options) for tier in options.burn_rate_tiers]
    alerts += [
        _alert(_sla_attainment_alert(options), options),
        _alert(_backlog_alert(options), options),
        _alert(_at_risk_alert(options), options),
    ]
    alerts += [_alert(_sla_metric_alert(metric, options), options) for metric in _SLA_METRICS]
    return {
        "groups": [
            {"name": "deptpulse-sla-recording", "rules": recording},
            {"name": "deptpulse-sla-alerts", "rules": alerts},
        ]
    }


def _report_window(window: str) -> str:
    """The shortest window of ``deptpulse report`` (and the gauges) that covers ``window``."""
    return next(w for w in names.WINDOWS if _window_seconds(w) >= _window_seconds(window))


def _burn_rate_alert(tier: BurnRateTier) -> _AlertSpec:
    long, short, factor = tier.long_window, tier.short_window, _num(tier.factor)
    days = _num(round(SLA_BUDGET_PERIOD_DAYS / tier.factor, 1))
    requests = _query(
        f"{metric_names.sla_requests(long)}{{{PROVIDER}=%q}}", "$labels.provider_department", "int"
    )
    return _AlertSpec(
        name=f"DeptpulseSlaBudgetBurn{tier.name}",
        expr=_expr(
            f"""
            {metric_names.sla_burn_rate(long)} > {factor}
            and on ({PROVIDER})
              {metric_names.sla_burn_rate(short)} > {factor}
            and on ({PROVIDER})
              ({metric_names.sla_requests(long)} >= on ({PROVIDER}) {metric_names.POLICY_SLA_MIN_SAMPLE})
            """
        ),
        for_=tier.for_,
        severity=tier.severity,
        category="business",
        summary=(
            f"{{provider}} is burning its SLA error budget {{value:1f}}x too fast (last {long} and {short})",
            f"{{provider}}：SLA 错误预算消耗速度为允许值的 {{value:1f}} 倍（最近 {long} 与 {short}）",
        ),
        description=(
            "Requests served by {provider} miss their SLA targets {value:1f} times as often as its "
            f"attainment target of {{target}} allows (alert above {factor}x over both the last {long} "
            f"and {short}; {{requests}} requests in the last {long}). At this pace the error budget of "
            f"{SLA_BUDGET_PERIOD_DAYS} days is spent in {days} days. Look at the SLA dashboard: the "
            f"customer departments below target, {names.SLA_BY_SERVICE_PANEL}, and the requests waiting "
            f"past their first-response target; or {{report}}.",
            "{provider} 所服务的请求未达到 SLA 时限的比例，是达成率目标 {target} 所允许比例的 "
            f"{{value:1f}} 倍（最近 {long} 与 {short} 均超过 {factor} 倍即告警；最近 {long} 共 "
            f"{{requests}} 个请求）。按此速度，{SLA_BUDGET_PERIOD_DAYS} 天的错误预算将在 {days} 天内耗尽。"
            "请查看 SLA 仪表盘：低于目标的客户部门、各服务的 SLA 达成率，以及超过首次响应时限仍在等待的请求；"
            "或运行 {report}。",
        ),
        dashboard_uid=names.SLA_UID,
        snippets={
            "target": policy_value(metric_names.POLICY_SLA_ATTAINMENT_TARGET, "pct"),
            "requests": requests,
            "report": by_service_report(_report_window(long), customer=False),
        },
    )


def _sla_attainment_alert(options: RuleOptions) -> _AlertSpec:
    window = options.sla_window
    return _AlertSpec(
        name="DeptpulseSlaAttainmentBelowTarget",
        expr=_expr(
            f"""
            deptpulse_sla_attainment_ratio{_window_sel(window)}
            and
              ({_guarded(metric_names.SLA_ATTAINMENT_UPPER_BOUND, window, "<", metric_names.POLICY_SLA_ATTAINMENT_TARGET)})
            and
              ({_guarded("deptpulse_sla_requests", window, ">=", metric_names.POLICY_SLA_MIN_SAMPLE)})
            """
        ),
        for_="30m",
        severity="ticket",
        category="business",
        summary=(
            "{provider} met its SLA for {value:pct} of the requests from {customer} over {window} "
            "(target {target})",
            "{provider} 对来自{customer}的请求的 SLA 达成率为 {value:pct}（{window}，目标 {target}）",
        ),
        description=(
            "Over the last {window}, {value:pct} of the {requests} requests that {customer} sent to "
            "{provider} met their SLA targets; the target is {target}. Even the upper end of the 95% "
            "confidence interval ({upper}) is below the target, so this is not noise.{by_service} Every "
            f"service's attainment: {{report}}, or the '{names.BY_SERVICE_PANEL}' table of the scorecard dashboard (with "
            "the first-response p90 of each service and of each customer).",
            "最近 {window} 内，{provider} 收到来自{customer}的 {requests} 个请求，其中 {value:pct} "
            "在 SLA 时限内完成；目标为 {target}。95% 置信区间的上限（{upper}）也低于目标，因此这不是随机波动。"
            f"{{by_service}}各服务的达成率：{{report}}，或记分卡仪表盘的 '{names.BY_SERVICE_PANEL}' 表（含各服务及各客户的首次响应 P90）。",
        ),
        dashboard_uid=names.SCORECARD_UID,
        dashboard_window=True,
        snippets={
            "target": policy_value(metric_names.POLICY_SLA_ATTAINMENT_TARGET, "pct"),
            "requests": row_value(metric_names.SLA_REQUESTS, "int"),
            "upper": row_value(metric_names.SLA_ATTAINMENT_UPPER_BOUND, "pct"),
            "by_service": sla_by_service(),
            "report": by_service_report(),
        },
    )


@dataclass(frozen=True)
class _SlaMetric:
    """One of the separate SLA metrics (issue 18): its gauges, goal and wording."""

    alert: str
    attainment: str
    requests: str
    upper_bound: str
    target: str
    what: Text  # e.g. ("first responses", "首次响应")


_SLA_METRICS: Final = (
    _SlaMetric(
        "DeptpulseFirstResponseSlaBelowTarget",
        metric_names.FIRST_RESPONSE_SLA_ATTAINMENT,
        metric_names.FIRST_RESPONSE_SLA_REQUESTS,
        metric_names.FIRST_RESPONSE_SLA_ATTAINMENT_UPPER_BOUND,
        metric_names.POLICY_FIRST_RESPONSE_SLA_TARGET,
        ("first responses", "首次响应"),
    ),
    _SlaMetric(
        "DeptpulseResolutionSlaBelowTarget",
        metric_names.RESOLUTION_SLA_ATTAINMENT,
        metric_names.RESOLUTION_SLA_REQUESTS,
        metric_names.RESOLUTION_SLA_ATTAINMENT_UPPER_BOUND,
        metric_names.POLICY_RESOLUTION_SLA_TARGET,
        ("resolutions", "解决"),
    ),
)


def _sla_metric_alert(metric: _SlaMetric, options: RuleOptions) -> _AlertSpec:
    """The first-response or resolution attainment of a pair below its goal, beyond noise: each
    verdict is judged when the metric completes or when its target passes (a request never answered
    counts as breached from then on)."""
    window = options.sla_window
    what_en, what_zh = metric.what
    return _AlertSpec(
        name=metric.alert,
        expr=_expr(
            f"""
            {metric.attainment}{_window_sel(window)}
            and
              ({_guarded(metric.upper_bound, window, "<", metric.target)})
            and
              ({_guarded(metric.requests, window, ">=", metric_names.POLICY_SLA_MIN_SAMPLE)})
            """
        ),
        for_="30m",
        severity="ticket",
        category="business",
        summary=(
            f"{{provider}} made {{value:pct}} of its {what_en} to {{customer}} within target over {{window}} "
            "(goal {target})",
            f"{{provider}} 对{{customer}}的{what_zh}达标率为 {{value:pct}}（{{window}}，目标 {{target}}）",
        ),
        description=(
            f"Over the last {{window}}, {{value:pct}} of the {{requests}} {what_en} that {{provider}} owed "
            f"{{customer}} were within their SLA target (a {what_en[:-1]} still outstanding when its target "
            "passed counts as missed from that moment); the goal is {target}. Even the upper end of the "
            "95% confidence interval ({upper}) is below the goal, so this is not noise. Every service: {report}.",
            f"最近 {{window}} 内，{{provider}} 对{{customer}}的 {{requests}} 个{what_zh}中，{{value:pct}} 在 SLA "
            f"时限内（时限已过仍未完成的{what_zh}自时限到达时即计为未达标）；目标为 {{target}}。95% 置信区间的上限"
            "（{upper}）也低于目标，因此这不是随机波动。各服务：{report}。",
        ),
        dashboard_uid=names.SCORECARD_UID,
        dashboard_window=True,
        snippets={
            "target": policy_value(metric.target, "pct"),
            "requests": row_value(metric.requests, "int"),
            "upper": row_value(metric.upper_bound, "pct"),
            "report": by_service_report(),
        },
    )


def _backlog_alert(options: RuleOptions) -> _AlertSpec:
    threshold = options.backlog_min_requests
    return _AlertSpec(
        name="DeptpulseFirstResponseBacklog",
        expr=f"{metric_names.FIRST_RESPONSE_BACKLOG} >= {threshold}",
        for_="15m",
        severity="ticket",
        category="business",
        summary=(
            "{value:int} requests from {customer} wait past their first-response target for {provider}",
            "来自{customer}的 {value:int} 个请求已超过首次响应时限，仍在等待 {provider} 回复",
        ),
        description=(
            "{provider} has {value:int} open requests from {customer} without a first response although "
            f"their first-response target has passed (alert at {threshold} or more for 15 minutes). "
            "Assign and answer them; the scorecard dashboard lists the backlog by customer department.",
            "{provider} 有 {value:int} 个来自{customer}的未结请求已超过首次响应时限但尚未回复"
            f"（达到 {threshold} 个并持续 15 分钟即告警）。请尽快分派并回复；记分卡仪表盘按客户部门列出了积压请求。",
        ),
        dashboard_uid=names.SCORECARD_UID,
    )


_AT_RISK_TARGET = {
    "en": f'{{{{ if eq $labels.{names.AT_RISK_SLA_LABEL} "first_response" }}}}first-response'
    "{{ else }}resolution{{ end }}",
    "zh": f'{{{{ if eq $labels.{names.AT_RISK_SLA_LABEL} "first_response" }}}}首次响应{{{{ else }}}}解决{{{{ end }}}}',
}


def _at_risk_alert(options: RuleOptions) -> _AlertSpec:
    threshold, for_ = options.at_risk_min_requests, options.at_risk_for
    return _AlertSpec(
        name="DeptpulseSlaAtRisk",
        expr=f"{metric_names.REQUESTS_AT_RISK} >= {threshold}",
        for_=for_,
        severity="ticket",
        category="business",
        summary=(
            "{value:int} requests from {customer} will soon breach their {target} target at {provider}",
            "来自{customer}的 {value:int} 个请求即将超过 {provider} 的{target}时限",
        ),
        description=(
            "{provider} has {value:int} open requests from {customer} with at most {share} of their "
            "{target} target left on the SLA's clock (business hours, pauses excluded), not yet past it "
            f"(alert at {threshold} or more for {for_}). Work on them first; the scorecard page lists each "
            "with the time it has left: {page}, or the read API's {api}.",
            "{provider} 有 {value:int} 个来自{customer}的未结请求，其{target}时限按 SLA 计时（工作时间，暂停不计）"
            f"仅剩 {{share}} 或更少，尚未超时（达到 {threshold} 个并持续 {for_} 即告警）。请优先处理；"
            "记分卡页面列出了各请求及其剩余时间：{page}，或读取 API 的 {api}。",
        ),
        dashboard_uid=names.SCORECARD_UID,
        snippets={
            "target": (_AT_RISK_TARGET["en"], _AT_RISK_TARGET["zh"]),
            "share": policy_value(metric_names.POLICY_SLA_AT_RISK_SHARE, "pct"),
            "page": command("report", "--format html", customer=False),
            "api": f"`{AT_RISK_PATH}?provider={{{{ $labels.provider_department }}}}`",
        },
    )


# --- satisfaction ------------------------------------------------------------------------------------

# Wilson score interval, 95 % (z = metric_names.Z_95, the worker's too). The upper bound says whether a share is *significantly*
# below target. Alerting on the point estimate fires on noise (9 of 10 on time is "below 95%"), and
# alerting on "lower bound < target" would fire on perfect scores (10 of 10 has a lower bound of 0.72).
_Z = metric_names.Z_95


def _wilson_upper_bound(share: str, n: str) -> str:
    """The upper end of the Wilson 95% interval of ``share`` over ``n`` answers, in PromQL."""
    return _wilson_bound(share, n, "+")


def _wilson_bound(share: str, n: str, sign: Literal["+", "-"]) -> str:
    """The upper (``+``) or lower (``-``) end of the Wilson 95% interval of ``share`` over ``n``."""
    z2 = _num(_Z * _Z)
    return _expr(
        f"""
        (
            {share} + {_num(_Z * _Z / 2)} / {n}
          {sign} {_num(_Z)} * sqrt({share} * (1 - {share}) / {n} + {_num(_Z * _Z / 4)} / {n} ^ 2)
        )
        / (1 + {z2} / {n})
        """
    )


def _signed(value: int) -> str:
    return f"- {-value}" if value < 0 else f"+ {value}"


def _evidence(upper: str, lower: str, target: str, count: str, min_sample: str) -> str:
    """-1, 0 or +1 per row: upper end below target, interval straddling it, lower end reaching it
    (names.EVIDENCE_*); only rows with at least the policy's sample minimum, as the alerts."""
    return _expr(
        f"""
        (
            ({upper} < on ({PROVIDER}) group_left {target}) * 0 {_signed(names.EVIDENCE_BELOW)}
          or
            ({lower} >= on ({PROVIDER}) group_left {target}) * 0 {_signed(names.EVIDENCE_ABOVE)}
          or
            {upper} * 0 {_signed(names.EVIDENCE_UNCLEAR)}
        )
        and
          ({count} >= on ({PROVIDER}) group_left {min_sample})
        """
    )


def satisfaction_rules(options: RuleOptions) -> dict[str, Any]:
    recording = [
        {
            "record": metric_names.SATISFIED_SHARE_UPPER_BOUND,
            "expr": _wilson_upper_bound(metric_names.SATISFIED_SHARE, metric_names.CSAT_RESPONSES),
        },
        {"record": metric_names.NPS_UPPER_BOUND, "expr": f"{metric_names.NPS} + {metric_names.NPS_MARGIN}"},
        {
            "record": metric_names.CSAT_AVERAGE_UPPER_BOUND,
            "expr": f"{metric_names.CSAT_AVERAGE} + {metric_names.CSAT_AVERAGE_MARGIN}",
        },
        {
            "record": metric_names.SATISFIED_SHARE_EVIDENCE,
            "expr": _evidence(
                metric_names.SATISFIED_SHARE_UPPER_BOUND,
                metric_names.SATISFIED_SHARE_LOWER_BOUND,
                metric_names.POLICY_SATISFIED_SHARE_TARGET,
                metric_names.CSAT_RESPONSES,
                metric_names.POLICY_CSAT_MIN_SAMPLE,
            ),
        },
        {
            "record": metric_names.CSAT_AVERAGE_EVIDENCE,
            "expr": _evidence(
                metric_names.CSAT_AVERAGE_UPPER_BOUND,
                f"({metric_names.CSAT_AVERAGE} - {metric_names.CSAT_AVERAGE_MARGIN})",
                metric_names.POLICY_CSAT_TARGET,
                metric_names.CSAT_RESPONSES,
                metric_names.POLICY_CSAT_MIN_SAMPLE,
            ),
        },
        {
            "record": metric_names.NPS_EVIDENCE,
            "expr": _evidence(
                metric_names.NPS_UPPER_BOUND,
                f"({metric_names.NPS} - {metric_names.NPS_MARGIN})",
                metric_names.POLICY_NPS_TARGET,
                metric_names.NPS_RESPONSES,
                metric_names.POLICY_NPS_MIN_SAMPLE,
            ),
        },
        {
            "record": metric_names.SERVICE_SATISFACTION_SHORTFALL,
            "expr": _shortfall(
                metric_names.SERVICE_CSAT_RESPONSES,
                metric_names.SERVICE_SATISFIED_SHARE,
                metric_names.POLICY_SATISFIED_SHARE_TARGET,
            ),
        },
    ]
    alerts = [
        _alert(spec, options)
        for spec in (
            _satisfaction_alert(options),
            _csat_alert(options),
            _falling_alert(options),
            _nps_alert(options),
        )
    ]
    return {
        "groups": [
            {"name": "deptpulse-satisfaction-recording", "rules": recording},
            {"name": "deptpulse-satisfaction-alerts", "rules": alerts},
        ]
    }


def _csat_sample_guard(window: str) -> str:
    return f"({_guarded(metric_names.CSAT_RESPONSES, window, '>=', metric_names.POLICY_CSAT_MIN_SAMPLE)})"


def _satisfaction_alert(options: RuleOptions) -> _AlertSpec:
    window = options.satisfaction_window
    return _AlertSpec(
        name="DeptpulseSatisfactionBelowTarget",
        expr=_expr(
            f"""
            deptpulse_satisfied_share{_window_sel(window)}
            and
              ({_guarded(metric_names.SATISFIED_SHARE_UPPER_BOUND, window, "<", metric_names.POLICY_SATISFIED_SHARE_TARGET)})
            and
              {_csat_sample_guard(window)}
            """
        ),
        for_="30m",
        severity="ticket",
        category="business",
        summary=(
            "Satisfaction with {provider} from {customer} is below target: {value:pct} satisfied over {window}",
            "来自{customer}的评价：{provider} 的满意比例在 {window} 内为 {value:pct}，低于目标",
        ),
        description=(
            "{value:pct} of the {responses} answers from {customer} about {provider} over the last {window} "
            "were satisfied (4 or 5 of 5); the target is {target}. Even the upper end of the 95% "
            "confidence interval ({upper}) is below the target, so this is not noise.{by_service}{action} "
            f"Every service: {{report}}, or the '{names.BY_SERVICE_PANEL}' table of the scorecard dashboard. What the "
            "dissatisfied customers say: {themes} and {comments}.",
            "最近 {window} 内，来自{customer}的 {responses} 份关于 {provider} 的评价中有 {value:pct} 为满意"
            "（5 分制中 4 或 5 分）；目标为 {target}。95% 置信区间的上限（{upper}）也低于目标，"
            f"因此这不是随机波动。{{by_service}}{{action}}各服务的情况：{{report}}，或记分卡仪表盘的 '{names.BY_SERVICE_PANEL}' 表。"
            "不满意的客户说了什么：{themes} 与 {comments}。",
        ),
        dashboard_uid=names.SCORECARD_UID,
        dashboard_window=True,
        snippets={
            "target": policy_value(metric_names.POLICY_SATISFIED_SHARE_TARGET, "pct"),
            "responses": row_value(metric_names.CSAT_RESPONSES, "int"),
            "upper": row_value(metric_names.SATISFIED_SHARE_UPPER_BOUND, "pct"),
            "by_service": satisfaction_by_service(),
            "action": improvement_action(options.action_recent_days),
            "report": by_service_report(),
            **_dissatisfied_say(),
        },
    )


def _csat_alert(options: RuleOptions) -> _AlertSpec:
    window = options.satisfaction_window
    return _AlertSpec(
        name="DeptpulseCsatBelowTarget",
        expr=_expr(
            f"""
            deptpulse_csat_average{_window_sel(window)}
            and
              ({_guarded(metric_names.CSAT_AVERAGE_UPPER_BOUND, window, "<", metric_names.POLICY_CSAT_TARGET)})
            and
              {_csat_sample_guard(window)}
            """
        ),
        for_="30m",
        severity="info",
        category="business",
        summary=(
            "Average CSAT of {provider} from {customer} is {value:2f} over {window} (target {target})",
            "来自{customer}的评价：{provider} 的平均 CSAT 在 {window} 内为 {value:2f}（目标 {target}）",
        ),
        description=(
            "The {responses} answers from {customer} about {provider} over the last {window} average "
            "{value:2f} of 5; the target is {target}, and even the upper end of the 95% interval "
            "({upper}) is below it.{by_service}{action} A heads-up: the satisfied-share alert says whether the "
            "share of satisfied answers dropped too. Every service: {report}.",
            "最近 {window} 内，来自{customer}的 {responses} 份关于 {provider} 的评价平均为 {value:2f} 分（满分 5 分）；"
            "目标为 {target}，95% 置信区间的上限（{upper}）也低于目标。{by_service}{action}"
            "此为提示：满意比例告警会判断满意比例是否也下降。各服务的情况：{report}。",
        ),
        dashboard_uid=names.SCORECARD_UID,
        dashboard_window=True,
        snippets={
            "target": policy_value(metric_names.POLICY_CSAT_TARGET, "1f"),
            "responses": row_value(metric_names.CSAT_RESPONSES, "int"),
            "upper": row_value(metric_names.CSAT_AVERAGE_UPPER_BOUND, "2f"),
            "by_service": satisfaction_by_service(),
            "action": improvement_action(options.action_recent_days),
            "report": by_service_report(),
        },
    )


def _falling_alert(options: RuleOptions) -> _AlertSpec:
    # The group_left comparison comes first: it keeps every label of the row (window included),
    # while a one-to-one ``ignoring (window)`` comparison drops the window label from its result.
    recent, baseline, sla_window = options.falling_window, options.baseline_window, options.sla_window
    return _AlertSpec(
        name="DeptpulseSatisfactionFallingWhileSlaMet",
        expr=_expr(
            f"""
            deptpulse_satisfied_share{_window_sel(recent)}
            and
              ({_guarded(metric_names.SATISFIED_SHARE_UPPER_BOUND, recent, "<", metric_names.POLICY_SATISFIED_SHARE_TARGET)})
            and
              {_csat_sample_guard(recent)}
            and ignoring (window)
              ({metric_names.SATISFIED_SHARE_UPPER_BOUND}{_window_sel(recent)}
                < ignoring (window) deptpulse_satisfied_share_lower_bound{_window_sel(baseline)})
            and on ({PROVIDER}, {CUSTOMER})
              ({_guarded("deptpulse_sla_attainment_ratio", sla_window, ">=", metric_names.POLICY_SLA_ATTAINMENT_TARGET)})
            and on ({PROVIDER}, {CUSTOMER})
              ({_guarded("deptpulse_sla_requests", sla_window, ">=", metric_names.POLICY_SLA_MIN_SAMPLE)})
            """
        ),
        for_="30m",
        severity="ticket",
        category="business",
        summary=(
            "{provider} meets its SLA for {customer}, yet satisfaction fell to {value:pct} over {window}",
            "{provider} 对{customer}的 SLA 达标，但满意度在 {window} 内降至 {value:pct}",
        ),
        description=(
            f"Responses are on time (SLA attainment {{sla}} over {sla_window}, target {{sla_target}}), "
            "but only {value:pct} of the {responses} answers from {customer} over the last {window} were "
            "satisfied: even the upper end of its 95% interval is below the target of {target} and "
            f"below the range of the last {baseline} (lower bound {{baseline}}).{{by_service}}{{action}} Speed is not "
            "the problem: read what the dissatisfied customers say about answer quality, resolution and "
            "communication: {themes} and {comments}. Every service: {report}.",
            f"响应及时（最近 {sla_window} SLA 达成率 {{sla}}，目标 {{sla_target}}），但最近 {{window}} 内"
            "来自{customer}的 {responses} 份评价中只有 {value:pct} 为满意，其 95% 置信区间上限也低于目标 {target}，"
            f"并低于最近 {baseline} 的区间下限 {{baseline}}。{{by_service}}{{action}}问题不在速度：请阅读不满意的客户"
            "关于答复质量、解决效果和沟通的意见：{themes} 与 {comments}。各服务的情况：{report}。",
        ),
        dashboard_uid=names.SCORECARD_UID,
        dashboard_window=True,
        snippets={
            "by_service": satisfaction_by_service(),
            "action": improvement_action(options.action_recent_days),
            "report": by_service_report(),
            **_dissatisfied_say(),
            "sla": row_value(metric_names.SLA_ATTAINMENT, "pct", sla_window),
            "sla_target": policy_value(metric_names.POLICY_SLA_ATTAINMENT_TARGET, "pct"),
            "target": policy_value(metric_names.POLICY_SATISFIED_SHARE_TARGET, "pct"),
            "responses": row_value(metric_names.CSAT_RESPONSES, "int"),
            "baseline": row_value(metric_names.SATISFIED_SHARE_LOWER_BOUND, "pct", baseline),
        },
    )


def _nps_alert(options: RuleOptions) -> _AlertSpec:
    window = options.nps_window
    return _AlertSpec(
        name="DeptpulseNpsBelowTarget",
        expr=_expr(
            f"""
            deptpulse_nps{_window_sel(window)}
            and
              ({_guarded(metric_names.NPS_UPPER_BOUND, window, "<", metric_names.POLICY_NPS_TARGET)})
            and
              ({_guarded("deptpulse_nps_responses", window, ">=", metric_names.POLICY_NPS_MIN_SAMPLE)})
            """
        ),
        for_="1h",
        severity="ticket",
        category="business",
        summary=(
            "Internal NPS of {provider} from {customer} is {value:int} over {window} (target {target})",
            "来自{customer}的评价：{provider} 的内部 NPS 在 {window} 内为 {value:int}（目标 {target}）",
        ),
        description=(
            "{responses} answers from {customer} over the last {window} give {provider} a net promoter "
            "score of {value:int}; the target is {target}. Even the upper end of the 95% confidence "
            "interval ({upper}) is below the target, so this is not noise. What the customers say: "
            "{themes} and {comments}.",
            "最近 {window} 内，来自{customer}的 {responses} 份评价给出 {provider} 的净推荐值为 {value:int}；"
            "目标为 {target}。95% 置信区间的上限（{upper}）也低于目标，因此这不是随机波动。"
            "客户说了什么：{themes} 与 {comments}。",
        ),
        dashboard_uid=names.SCORECARD_UID,
        dashboard_window=True,
        snippets={
            "target": policy_value(metric_names.POLICY_NPS_TARGET, "int"),
            "responses": row_value(metric_names.NPS_RESPONSES, "int"),
            "upper": row_value(metric_names.NPS_UPPER_BOUND, "int"),
            "themes": command("themes", "--window {{ $labels.window }}"),
            "comments": command("comments", "--window {{ $labels.window }}"),
        },
    )


# --- pipeline ----------------------------------------------------------------------------------------

_PIPELINE_DASHBOARD = names.PIPELINE_UID


def _process_down(job: str, what: str, consequence: str) -> _AlertSpec:
    return _AlertSpec(
        name=f"Deptpulse{what.title().replace(' ', '')}Down",
        expr=f'up{{job="{job}"}} == 0 or absent(up{{job="{job}"}})',
        for_="2m",
        severity="page",
        category="pipeline",
        summary=f"The deptpulse {what} is down",
        description=(
            f"Prometheus has not scraped job {job}{{{{ with $labels.instance }}}} ({{{{ . }}}}){{{{ end }}}} "
            f"for 2 minutes, or the job has no target. {consequence} Check `deptpulse stack status` and "
            f"the {what}'s log."
        ),
        dashboard_uid=_PIPELINE_DASHBOARD,
    )


def _seconds_text(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _regex_literal(text: str) -> str:
    """``text`` as a regex matching itself, inside a PromQL double-quoted string."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\\\1", text)


def _source_silent(options: RuleOptions) -> _AlertSpec:
    """One rule: the default silence threshold for every source, ``or`` each override's own."""
    overrides = dict(sorted(options.source_silence_overrides.items()))
    metric = f"time() - {metric_names.LAST_EVENT_TIMESTAMP}"
    default_selector = f'source!~"{"|".join(_regex_literal(s) for s in overrides)}"' if overrides else ""
    terms = [f"({metric}{{{default_selector}}} > {options.source_silence_seconds})"]
    terms += [f'({metric}{{source="{source}"}} > {seconds})' for source, seconds in overrides.items()]
    threshold = "".join(
        f'{{{{ {"if" if i == 0 else "else if"} eq $labels.source "{source}" }}}}{_seconds_text(seconds)}'
        for i, (source, seconds) in enumerate(overrides.items())
    )
    default = _seconds_text(options.source_silence_seconds)
    threshold = f"{threshold}{{{{ else }}}}{default}{{{{ end }}}}" if overrides else default
    return _AlertSpec(
        name="DeptpulseSourceSilent",
        expr="\nor\n".join(terms),
        for_="10m",
        severity="ticket",
        category="pipeline",
        summary="No events from source {{ $labels.source }} for {value:duration}",
        description=(
            "The last event from source {{ $labels.source }} arrived {value:duration} ago (alert after "
            f"{threshold}). Check the source's webhook or import job, and the gateway's requests for this "
            "integration on the pipeline dashboard."
        ),
        dashboard_uid=_PIPELINE_DASHBOARD,
    )


def pipeline_rules(options: RuleOptions) -> dict[str, Any]:
    specs = [
        _process_down(
            "deptpulse-worker",
            "worker",
            "No events are consumed, and Alertmanager holds back every business alert until it is back.",
        ),
        _process_down(
            "deptpulse-gateway",
            "gateway",
            "Webhooks from the ticketing systems are refused; vendors retry for a while, then drop them.",
        ),
        _AlertSpec(
            name="DeptpulseConsumerLagGrowing",
            expr=_expr(
                f"""
                deptpulse_consumer_lag > {options.consumer_lag_threshold}
                and
                  deriv(deptpulse_consumer_lag[10m]) > 0
                """
            ),
            for_="10m",
            severity="ticket",
            category="pipeline",
            summary="Consumer lag on partition {{ $labels.partition }} is {value:int} events and growing",
            description=(
                "The worker falls behind on partition {{ $labels.partition }}: {value:int} events wait "
                f"(alert above {options.consumer_lag_threshold}) and the lag has grown for 10 minutes, so "
                "every business number is late. Look at the pipeline dashboard: event rate, sink batch "
                "duration and sink errors."
            ),
            dashboard_uid=_PIPELINE_DASHBOARD,
        ),
        _AlertSpec(
            name="DeptpulseDeadLettersHigh",
            expr=_expr(
                f"""
                sum(rate(deptpulse_dead_letters_total[10m]))
                / sum(rate(deptpulse_events_total[10m]))
                > {_num(options.dead_letter_ratio)}
                """
            ),
            for_="10m",
            severity="ticket",
            category="pipeline",
            summary="{value:pct} of the consumed events go to the dead-letter topic",
            description=(
                "Over the last 10 minutes {value:pct} of the consumed events were dead-lettered (alert above "
                f"{_num(options.dead_letter_ratio * 100)}%). The pipeline dashboard shows the reasons; "
                "unmapped departments mean the directory's mappings miss a source value."
            ),
            dashboard_uid=_PIPELINE_DASHBOARD,
        ),
        _AlertSpec(
            name="DeptpulseSinkFailing",
            expr=_expr(
                """
                sum(increase(deptpulse_sink_errors_total[5m])) > 0
                unless
                  sum(increase(deptpulse_sink_rows_total[5m])) > 0
                """
            ),
            for_="5m",
            severity="page",
            category="pipeline",
            summary="The ClickHouse sink fails and has written no rows for 5 minutes",
            description=(
                "The sink reported {value:int} errors in the last 5 minutes and wrote no rows. Offsets do "
                "not move past unwritten batches, but every number is frozen and Alertmanager holds back "
                "the business alerts. Check ClickHouse (`deptpulse stack status`) and the worker's log."
            ),
            dashboard_uid=_PIPELINE_DASHBOARD,
        ),
        _AlertSpec(
            name="DeptpulseSinkErrors",
            expr=f"sum(increase({metric_names.SINK_ERRORS}[15m])) >= {options.sink_errors_per_15m}",
            for_="15m",
            severity="ticket",
            category="pipeline",
            summary="The ClickHouse sink keeps failing writes: {value:int} errors in 15 minutes",
            description=(
                f"The sink has reported at least {options.sink_errors_per_15m} errors in every 15 minutes "
                "for 15 minutes; rows are still written, so retries succeed, but slowly. Look at the sink "
                "batch duration on the pipeline dashboard and the worker's log."
            ),
            dashboard_uid=_PIPELINE_DASHBOARD,
        ),
        _source_silent(options),
        _AlertSpec(
            name="DeptpulseGatewayErrors",
            expr=_expr(
                f"""
                sum by (integration) (rate(deptpulse_gateway_requests_total{{status=~"5.."}}[10m]))
                / sum by (integration) (rate(deptpulse_gateway_requests_total[10m]))
                > {_num(options.gateway_error_ratio)}
                """
            ),
            for_="10m",
            severity="ticket",
            category="pipeline",
            summary="{value:pct} of the gateway requests of {{ $labels.integration }} fail with 5xx",
            description=(
                "Over the last 10 minutes {value:pct} of the ingestion requests of integration "
                f"{{{{ $labels.integration }}}} failed with a server error (alert above "
                f"{_num(options.gateway_error_ratio * 100)}%). 503 means Kafka did not acknowledge in time: "
                "check the broker, then the gateway's log."
            ),
            dashboard_uid=_PIPELINE_DASHBOARD,
        ),
        _AlertSpec(
            name="DeptpulseLateEventsHigh",
            expr=_expr(
                f"""
                sum(rate(deptpulse_late_events_total[30m]))
                / sum(rate(deptpulse_events_total[30m]))
                > {_num(options.late_event_ratio)}
                """
            ),
            for_="30m",
            severity="info",
            category="pipeline",
            summary="{value:pct} of the events arrive late",
            description=(
                "Over the last 30 minutes {value:pct} of the events arrived after their window closed "
                f"(alert above {_num(options.late_event_ratio * 100)}%). A source replaying a backlog, or "
                "clocks that disagree: compare event and arrival times of the sources on the pipeline dashboard."
            ),
            dashboard_uid=_PIPELINE_DASHBOARD,
        ),
    ]
    return {"groups": [{"name": "deptpulse-pipeline-alerts", "rules": [_alert(s, options) for s in specs]}]}


# --- the files ---------------------------------------------------------------------------------------


def rule_files(directory: Directory, options: RuleOptions | None = None) -> dict[str, dict[str, Any]]:
    """File name (under ``deploy/prometheus/rules/generated/``) -> rule file document."""
    options = options or RuleOptions()
    return {
        "policy.yml": policy_rules(directory),
        "sla.yml": sla_rules(options),
        "satisfaction.yml": satisfaction_rules(options),
        "pipeline.yml": pipeline_rules(options),
    }


def alerts(files: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every alerting rule of generated rule files, in file order."""
    return [
        rule
        for document in files.values()
        for group in document["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
