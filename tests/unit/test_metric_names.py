"""Every metric a generated rule or dashboard panel reads exists: the worker, the gateway or the
publisher exports it (read from their registries, not from schemas.metric_names) or a generated
recording rule records it. A misspelt name in a rule expression, an alert's annotation query or a
panel's PromQL fails here, not silently in Prometheus (an unknown metric is just an empty result)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from scipy.stats import norm

from deptpulse.settings import EXAMPLE_DIRECTORY
from producers.gateway import GatewayMetrics
from producers.publisher import PublisherMetrics
from schemas import metric_names
from schemas.directory import load_directory
from schemas.observability import DASHBOARDS_DIR, RULES_DIR, generate_files
from stream_processors.metrics import Metrics

pytestmark = pytest.mark.unit

# Series names prometheus_client adds to a family's name, by type.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}
# PromQL words that look like metric names: keywords, and aggregation and vector-matching modifiers.
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
_KEYWORDS |= {"offset", "inf", "nan"}
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def selected_metrics(promql: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions, keywords,
    label names (in matchers or by/on lists), strings, durations or Grafana variables."""
    text = _STRING.sub('""', promql)
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\[\]]*\]", " ", text)  # ranges and subqueries
    text = _LABEL_LIST.sub(" ", text)
    found = set()
    for match in _IDENTIFIER.finditer(text):
        before = text[match.start() - 1] if match.start() else " "
        if before.isalnum() or before in "$._":  # part of a number (1e3, 5m) or a $variable
            continue
        if text[match.end() :].lstrip().startswith("(") or match.group().lower() in _KEYWORDS:
            continue
        found.add(match.group())
    return found


def exported() -> set[str]:
    """Every series name the worker's, the gateway's and the publisher's registries can expose."""
    registry = CollectorRegistry()
    Metrics.create(registry)
    GatewayMetrics.create(registry)
    PublisherMetrics.create(registry)
    return {family.name + suffix for family in registry.collect() for suffix in _SUFFIXES[family.type]}


def generated() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(every rule of every generated rule group, every generated dashboard) of the example directory."""
    files = generate_files(load_directory(EXAMPLE_DIRECTORY))
    rules = [
        rule
        for path, text in files.items()
        if path.startswith(RULES_DIR)
        for group in yaml.safe_load(text)["groups"]
        for rule in group["rules"]
    ]
    dashboards = [yaml.safe_load(text) for path, text in files.items() if path.startswith(DASHBOARDS_DIR)]
    return rules, dashboards


def panel_promql(node: Any) -> list[str]:
    """Every PromQL of a dashboard: targets' ``expr`` and the metric of ``label_values(...)`` variables."""
    if isinstance(node, list):
        return [query for item in node for query in panel_promql(item)]
    if not isinstance(node, dict):
        return []
    queries = []
    for key, value in node.items():
        if key == "expr" and isinstance(value, str):
            queries.append(value)
        elif key in ("definition", "query") and isinstance(value, str) and value.startswith("label_values("):
            queries.append(value.removeprefix("label_values(").rsplit(",", 1)[0])
        else:
            queries.extend(panel_promql(value))
    return queries


def annotation_metrics(rule: dict[str, Any]) -> set[str]:
    """deptpulse metric names in an alert's annotations (their ``query`` templates)."""
    text = " ".join(str(value) for value in rule.get("annotations", {}).values())
    return set(re.findall(r"deptpulse[_:][A-Za-z0-9_:]*[A-Za-z0-9]", text))


# What Prometheus itself makes for every scrape target and alert.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS", "ALERTS_FOR_STATE"}


def known() -> set[str]:
    rules, _ = generated()
    return exported() | {rule["record"] for rule in rules if "record" in rule} | PROMETHEUS_SERIES


def test_every_metric_a_rule_reads_is_exported_or_recorded() -> None:
    rules, _ = generated()
    names = known()

    used = {
        (rule.get("alert") or rule["record"], name)
        for rule in rules
        for name in selected_metrics(rule["expr"])
    }
    used |= {(rule["alert"], name) for rule in rules if "alert" in rule for name in annotation_metrics(rule)}

    assert len({name for _, name in used}) > 20  # the parser finds the metrics, not nothing
    assert sorted((rule, name) for rule, name in used if name not in names) == []


def test_every_metric_a_dashboard_panel_reads_is_exported_or_recorded() -> None:
    _, dashboards = generated()
    names = known()

    used = {
        (dashboard["uid"], name)
        for dashboard in dashboards
        for query in panel_promql(dashboard)
        for name in selected_metrics(query)
    }

    assert len({name for _, name in used}) > 20
    assert sorted((uid, name) for uid, name in used if name not in names) == []


def test_every_exported_metric_is_named_in_schemas_metric_names() -> None:
    """The exporters take their names from the module, so nothing exported is missing from it."""
    constants = {
        value for name, value in vars(metric_names).items() if name.isupper() and isinstance(value, str)
    }
    registry = CollectorRegistry()
    Metrics.create(registry)
    GatewayMetrics.create(registry)
    families = {family.name + ("_total" if family.type == "counter" else "") for family in registry.collect()}

    assert families - constants == set()


@pytest.mark.parametrize(
    ("promql", "metrics"),
    [
        (
            'sum by (reason) (rate(deptpulse_dead_letters_total{reason!="x"}[5m]))',
            {"deptpulse_dead_letters_total"},
        ),
        (
            'deptpulse:nps_upper_bound:95{window="7d"} < on (provider_department) group_left '
            "deptpulse:policy_nps_target",
            {"deptpulse:nps_upper_bound:95", "deptpulse:policy_nps_target"},
        ),
        (
            "histogram_quantile(0.9, sum by (le) (rate(deptpulse_sink_batch_duration_seconds_bucket[$__rate_interval])))",
            {"deptpulse_sink_batch_duration_seconds_bucket"},
        ),
        (
            "time() - deptpulse_last_event_timestamp_seconds offset 1h > 1e3",
            {"deptpulse_last_event_timestamp_seconds"},
        ),
        ('label_replace(deptpulse_nps, "dst", "$1", "src", "(.*)") and bool up', {"deptpulse_nps", "up"}),
    ],
)
def test_selected_metrics_finds_the_metric_names(promql: str, metrics: set[str]) -> None:
    assert selected_metrics(promql) == metrics


def test_one_z_for_95_percent() -> None:
    assert pytest.approx(norm.ppf(0.975), abs=1e-15) == metric_names.Z_95
