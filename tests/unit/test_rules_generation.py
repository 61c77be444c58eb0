"""The generated Prometheus rules: every alert is labelled, explained and linked, and thresholds come
from the directory's alert policies. Whether the rules fire is promtool's part
(tests/integration/test_promtool.py)."""

from __future__ import annotations

import re
import shlex
from typing import Any

import click
import pytest
import yaml

from deptpulse.cli import main
from deptpulse.settings import EXAMPLE_DIRECTORY
from schemas import metric_names
from schemas.directory import AlertPolicy, Directory, load_directory
from schemas.observability import names
from schemas.observability.render import to_yaml
from schemas.observability.rules import BurnRateTier, RuleOptions, alerts, policy_rules, rule_files

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory(EXAMPLE_DIRECTORY)


@pytest.fixture(scope="module")
def generated_alerts(directory: Directory) -> list[dict[str, Any]]:
    return alerts(rule_files(directory))


def with_policy(directory: Directory, department_id: str, policy: AlertPolicy) -> Directory:
    # Rebuilt, not model_copy'd: Directory caches its lookups, and a copy would keep the old ones.
    data = directory.model_dump()
    for department in data["departments"]:
        if department["id"] == department_id:
            department["alert_policy"] = policy.model_dump()
    return Directory.model_validate(data)


def policy_value(rules: dict[str, Any], metric: str, department_id: str) -> str:
    (rule,) = [
        rule
        for rule in rules["groups"][0]["rules"]
        if rule["record"] == metric and rule["labels"] == {"provider_department": department_id}
    ]
    expr: str = rule["expr"]
    return expr


EXPECTED_ALERTS = {
    "DeptpulseSlaBudgetBurnFast": ("page", "business"),
    "DeptpulseSlaBudgetBurnSlow": ("ticket", "business"),
    "DeptpulseSlaAttainmentBelowTarget": ("ticket", "business"),
    "DeptpulseFirstResponseSlaBelowTarget": ("ticket", "business"),
    "DeptpulseResolutionSlaBelowTarget": ("ticket", "business"),
    "DeptpulseFirstResponseBacklog": ("ticket", "business"),
    "DeptpulseSlaAtRisk": ("ticket", "business"),
    "DeptpulseSatisfactionBelowTarget": ("ticket", "business"),
    "DeptpulseCsatBelowTarget": ("info", "business"),
    "DeptpulseSatisfactionFallingWhileSlaMet": ("ticket", "business"),
    "DeptpulseNpsBelowTarget": ("ticket", "business"),
    "DeptpulseWorkerDown": ("page", "pipeline"),
    "DeptpulseGatewayDown": ("page", "pipeline"),
    "DeptpulseConsumerLagGrowing": ("ticket", "pipeline"),
    "DeptpulseDeadLettersHigh": ("ticket", "pipeline"),
    "DeptpulseSinkFailing": ("page", "pipeline"),
    "DeptpulseSinkErrors": ("ticket", "pipeline"),
    "DeptpulseSourceSilent": ("ticket", "pipeline"),
    "DeptpulseGatewayErrors": ("ticket", "pipeline"),
    "DeptpulseLateEventsHigh": ("info", "pipeline"),
}


def test_the_alert_catalogue(generated_alerts: list[dict[str, Any]]) -> None:
    catalogue = {
        alert["alert"]: (alert["labels"]["severity"], alert["labels"]["category"])
        for alert in generated_alerts
    }
    assert catalogue == EXPECTED_ALERTS
    assert len(generated_alerts) == len(catalogue), "one rule per alert name"


def test_every_alert_is_explained_and_linked(generated_alerts: list[dict[str, Any]]) -> None:
    for alert in generated_alerts:
        annotations = alert["annotations"]
        assert {"summary", "description", "dashboard_url"} <= annotations.keys(), alert["alert"]
        assert annotations["dashboard_url"].startswith(names.DEFAULT_GRAFANA_URL + "/d/deptpulse-")
        assert alert["for"], alert["alert"]
        if alert["labels"]["category"] == "business":
            # Department heads read Chinese or English; the provider's dashboard opens on them.
            assert {"summary_zh", "description_zh"} <= annotations.keys(), alert["alert"]
            # ... and on the alert's window when its rows have one (the by-service table shows it).
            expected = "var-provider_department={{$labels.provider_department}}"
            if 'window="' in alert["expr"]:
                expected += "&var-window={{$labels.window}}"
            assert annotations["dashboard_url"].endswith(expected), alert["alert"]


def test_business_alerts_wait_for_the_policy_sample_minimum(generated_alerts: list[dict[str, Any]]) -> None:
    minimums = {
        "DeptpulseSlaBudgetBurnFast": metric_names.POLICY_SLA_MIN_SAMPLE,
        "DeptpulseSlaBudgetBurnSlow": metric_names.POLICY_SLA_MIN_SAMPLE,
        "DeptpulseSlaAttainmentBelowTarget": metric_names.POLICY_SLA_MIN_SAMPLE,
        "DeptpulseFirstResponseSlaBelowTarget": metric_names.POLICY_SLA_MIN_SAMPLE,
        "DeptpulseResolutionSlaBelowTarget": metric_names.POLICY_SLA_MIN_SAMPLE,
        "DeptpulseSatisfactionBelowTarget": metric_names.POLICY_CSAT_MIN_SAMPLE,
        "DeptpulseCsatBelowTarget": metric_names.POLICY_CSAT_MIN_SAMPLE,
        "DeptpulseSatisfactionFallingWhileSlaMet": metric_names.POLICY_CSAT_MIN_SAMPLE,
        "DeptpulseNpsBelowTarget": metric_names.POLICY_NPS_MIN_SAMPLE,
    }
    by_name = {alert["alert"]: alert for alert in generated_alerts}
    for name, minimum in minimums.items():
        assert f">= on (provider_department) group_left {minimum}" in by_name[name]["expr"] or (
            f">= on (provider_department) {minimum}" in by_name[name]["expr"]
        ), name
    # "Green SLA" needs enough requests too, not only enough answers.
    assert metric_names.POLICY_SLA_MIN_SAMPLE in by_name["DeptpulseSatisfactionFallingWhileSlaMet"]["expr"]


def test_significance_uses_the_upper_bound_not_the_lower_bound(
    generated_alerts: list[dict[str, Any]],
) -> None:
    # Ten satisfied answers of ten have a Wilson lower bound of 0.72: alerting on "lower bound <
    # target" would page a department with a perfect score.
    (alert,) = [a for a in generated_alerts if a["alert"] == "DeptpulseSatisfactionBelowTarget"]
    assert f'{metric_names.SATISFIED_SHARE_UPPER_BOUND}{{window="7d"}} <' in alert["expr"]
    assert "lower_bound" not in alert["expr"]


@pytest.mark.parametrize(
    ("alertname", "upper_bound", "window", "target"),
    [
        (
            "DeptpulseSlaAttainmentBelowTarget",
            metric_names.SLA_ATTAINMENT_UPPER_BOUND,
            "7d",
            metric_names.POLICY_SLA_ATTAINMENT_TARGET,
        ),
        ("DeptpulseNpsBelowTarget", metric_names.NPS_UPPER_BOUND, "28d", metric_names.POLICY_NPS_TARGET),
        ("DeptpulseCsatBelowTarget", metric_names.CSAT_AVERAGE_UPPER_BOUND, "7d", metric_names.POLICY_CSAT_TARGET),
    ],
)
def test_attainment_nps_and_csat_compare_the_upper_end_of_their_interval(
    generated_alerts: list[dict[str, Any]], alertname: str, upper_bound: str, window: str, target: str
) -> None:
    # 36 of 40 requests on time is 90%, "below 95%", yet the interval reaches 96%: a point
    # estimate alerts on noise. Only the upper end of the interval is compared with the target.
    (alert,) = [a for a in generated_alerts if a["alert"] == alertname]
    comparisons = [line.strip() for line in alert["expr"].splitlines() if " < " in line]
    assert comparisons == [
        f'({upper_bound}{{window="{window}"}} < on (provider_department) group_left {target})'
    ]


def test_policy_series_for_every_department(directory: Directory) -> None:
    rules = policy_rules(directory)
    recorded = {
        (rule["record"], rule["labels"]["provider_department"]) for rule in rules["groups"][0]["rules"]
    }
    assert len(recorded) == len(rules["groups"][0]["rules"]) == 11 * len(directory.departments)
    assert (
        policy_value(rules, metric_names.POLICY_SLA_ERROR_BUDGET, "hr") == "vector(0.05)"
    )  # 1 - 0.95, no float noise
    # The first-response and resolution goals default to the combined one.
    assert policy_value(rules, metric_names.POLICY_FIRST_RESPONSE_SLA_TARGET, "hr") == "vector(0.95)"
    assert policy_value(rules, metric_names.POLICY_RESOLUTION_SLA_TARGET, "hr") == "vector(0.95)"
    assert policy_value(rules, metric_names.POLICY_CSAT_MIN_SAMPLE, "it") == "vector(10)"
    assert policy_value(rules, metric_names.POLICY_SLA_AT_RISK_SHARE, "it") == "vector(0.2)"


def test_a_department_policy_overrides_the_default(directory: Directory) -> None:
    strict = AlertPolicy(
        csat_min_sample=30, sla_attainment_target=0.99, satisfied_share_target=0.9, nps_target=20
    )
    rules = policy_rules(with_policy(directory, "legal", strict))
    assert policy_value(rules, metric_names.POLICY_CSAT_MIN_SAMPLE, "legal") == "vector(30)"
    assert policy_value(rules, metric_names.POLICY_SLA_ERROR_BUDGET, "legal") == "vector(0.01)"
    assert policy_value(rules, metric_names.POLICY_SATISFIED_SHARE_TARGET, "legal") == "vector(0.9)"
    assert policy_value(rules, metric_names.POLICY_NPS_TARGET, "legal") == "vector(20)"
    assert (
        policy_value(rules, metric_names.POLICY_CSAT_MIN_SAMPLE, "it") == "vector(10)"
    )  # the others keep the default


def test_burn_rates_read_the_event_time_verdict_gauges(directory: Directory) -> None:
    recording = rule_files(directory)["sla.yml"]["groups"][0]["rules"]
    burn = [rule for rule in recording if ":window" in rule["record"]]
    windows = {rule["record"].rsplit(":window", 1)[1] for rule in burn}
    assert windows == set(names.SLA_BURN_WINDOWS) == {"5m", "30m", "1h", "6h"}
    # Not rate() over the processing-time counters: a correction would count twice, a replay crowd.
    assert all("_total" not in rule["expr"] and "rate(" not in rule["expr"] for rule in burn)
    requests = [rule["expr"] for rule in burn if rule["record"].startswith("deptpulse:sla_requests:")]
    assert requests and all(metric_names.SLA_VERDICTS in expr for expr in requests)


def test_burn_rate_windows_must_be_exported_by_the_worker() -> None:
    with pytest.raises(ValueError, match="burn-rate windows"):
        RuleOptions(burn_rate_tiers=(BurnRateTier("Fast", "page", "2h", "5m", 14.4, "2m"),))


def test_options_change_windows_thresholds_and_links(directory: Directory) -> None:
    options = RuleOptions(
        grafana_url="https://grafana.internal/",
        runbook_base_url="https://wiki.internal/deptpulse/runbook",
        satisfaction_window="28d",
        backlog_min_requests=5,
        at_risk_min_requests=2,
        at_risk_for="5m",
        source_silence_overrides={},
    )
    by_name = {alert["alert"]: alert for alert in alerts(rule_files(directory, options))}
    assert 'deptpulse_satisfied_share{window="28d"}' in by_name["DeptpulseSatisfactionBelowTarget"]["expr"]
    assert by_name["DeptpulseFirstResponseBacklog"]["expr"].endswith(">= 5")
    assert by_name["DeptpulseSlaAtRisk"]["expr"] == "deptpulse_requests_at_risk_of_sla_breach >= 2"
    assert by_name["DeptpulseSlaAtRisk"]["for"] == "5m"
    assert by_name["DeptpulseSourceSilent"]["expr"] == (
        "(time() - deptpulse_last_event_timestamp_seconds{} > 86400)"
    )
    annotations = by_name["DeptpulseWorkerDown"]["annotations"]
    assert annotations["dashboard_url"] == "https://grafana.internal/d/deptpulse-pipeline"
    assert annotations["runbook_url"] == "https://wiki.internal/deptpulse/runbook#deptpulseworkerdown"


def test_source_overrides_are_regex_escaped(directory: Directory) -> None:
    options = RuleOptions(source_silence_overrides={"hr-survey": 691200, "legacy.csv": 3600})
    (silent,) = [a for a in alerts(rule_files(directory, options)) if a["alert"] == "DeptpulseSourceSilent"]
    assert 'source!~"hr-survey|legacy\\\\.csv"' in silent["expr"]
    assert (
        '{{ if eq $labels.source "hr-survey" }}8d{{ else if eq $labels.source "legacy.csv" }}1h'
        in (silent["annotations"]["description"])
    )


def test_rule_files_render_as_readable_yaml(directory: Directory) -> None:
    for name, document in rule_files(directory).items():
        text = to_yaml(document, directory.organisation)
        assert text.startswith("# Generated by `deptpulse rules generate` from the department directory"), (
            name
        )
        assert "&id" not in text and "*id" not in text, f"{name}: no YAML anchors"
        assert yaml.safe_load(text) == document, name
    sla = to_yaml(rule_files(directory)["sla.yml"], directory.organisation)
    assert "expr: |-\n" in sla  # multi-line PromQL as literal blocks


def test_generation_is_deterministic(directory: Directory) -> None:
    assert rule_files(directory) == rule_files(load_directory(EXAMPLE_DIRECTORY))


# Go template actions in annotations, and what a command line reads like once rendered for a pair.
_TEMPLATE_VALUES = {
    "$labels.provider_department": "it",
    "$labels.customer_department": "finance",
    "$labels.window": "7d",
}
_COMMAND = re.compile(r"`(deptpulse [^`]+)`")


def _rendered_for_a_pair(text: str) -> str:
    def action(match: re.Match[str]) -> str:
        inner = match.group(1).strip()
        return _TEMPLATE_VALUES.get(inner, "")  # conditions and ends vanish, their bodies stay

    return re.sub(r"\{\{(.*?)\}\}", action, text)


def test_every_command_an_alert_names_exists_with_its_options(
    generated_alerts: list[dict[str, Any]],
) -> None:
    named = 0
    for alert in generated_alerts:
        for key, text in alert["annotations"].items():
            for command_line in _COMMAND.findall(text):
                tokens = shlex.split(_rendered_for_a_pair(command_line))[1:]
                command: click.Command = main
                while isinstance(command, click.Group):
                    assert tokens and tokens[0] in command.commands, (alert["alert"], key, command_line)
                    command, tokens = command.commands[tokens[0]], tokens[1:]
                # Parses and checks every option and value (choices, ranges) without running it.
                command.make_context(command.name or "", tokens)
                named += 1
    assert named >= 20


def test_the_service_shortfall_recording_rules_join_the_policy_targets(directory: Directory) -> None:
    files = rule_files(directory)
    recorded = {
        rule["record"]: rule["expr"]
        for document in files.values()
        for group in document["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    satisfaction = recorded[metric_names.SERVICE_SATISFACTION_SHORTFALL]
    assert metric_names.SERVICE_CSAT_RESPONSES in satisfaction
    assert (
        f"{metric_names.POLICY_SATISFIED_SHARE_TARGET} - on (provider_department) group_right "
        f"{metric_names.SERVICE_SATISFIED_SHARE}" in satisfaction
    )
    sla = recorded[metric_names.SERVICE_SLA_SHORTFALL]
    assert f"{metric_names.POLICY_SLA_ATTAINMENT_TARGET} - on (provider_department) group_right" in sla
    assert all(expr.rstrip().endswith("> 0") for expr in (satisfaction, sla))
    by_name = {alert["alert"]: alert for alert in alerts(files)}
    for name, shortfall in (
        ("DeptpulseSatisfactionBelowTarget", metric_names.SERVICE_SATISFACTION_SHORTFALL),
        ("DeptpulseCsatBelowTarget", metric_names.SERVICE_SATISFACTION_SHORTFALL),
        ("DeptpulseSatisfactionFallingWhileSlaMet", metric_names.SERVICE_SATISFACTION_SHORTFALL),
        ("DeptpulseSlaAttainmentBelowTarget", metric_names.SERVICE_SLA_SHORTFALL),
    ):
        for key in ("description", "description_zh"):
            assert (
                f"topk(1, {shortfall}{{provider_department=%q,customer_department=%q,window=%q}})"
                in (by_name[name]["annotations"][key])
            ), (name, key)


def test_satisfaction_alerts_name_a_recent_improvement_action(directory: Directory) -> None:
    by_name = {
        alert["alert"]: alert for alert in alerts(rule_files(directory, RuleOptions(action_recent_days=14)))
    }
    for name in (
        "DeptpulseSatisfactionBelowTarget",
        "DeptpulseCsatBelowTarget",
        "DeptpulseSatisfactionFallingWhileSlaMet",
    ):
        for key in ("description", "description_zh"):
            text = by_name[name]["annotations"][key]
            assert (
                f"{metric_names.IMPROVEMENT_ACTION_START}{{provider_department=%q,service_category=%q}} > time() - 1209600"
                in text
            )
            assert "`deptpulse actions list --provider {{ $labels.provider_department }}`" in text
    assert (
        metric_names.IMPROVEMENT_ACTION_START
        not in by_name["DeptpulseSlaAttainmentBelowTarget"]["annotations"]["description"]
    )
    # The worker exports the actions of the last ACTION_EXPORT_DAYS days: the alerts cannot look further.
    with pytest.raises(ValueError, match="exports the actions of the last 90 days"):
        RuleOptions(action_recent_days=names.ACTION_EXPORT_DAYS + 1)
