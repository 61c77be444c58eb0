"""The generated Grafana dashboards and provisioning, checked against a minimal model of Grafana's JSON
(no Grafana server here). tests/integration/test_promtool.py parses every PromQL query."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from deptpulse.settings import EXAMPLE_DIRECTORY
from schemas import metric_names
from schemas.directory import Directory, load_directory
from schemas.observability import names
from schemas.observability.dashboards import (
    annotation_queries,
    dashboard_provider,
    dashboards,
    datasources,
    panel_queries,
)
from schemas.observability.rules import alerts, rule_files

pytestmark = pytest.mark.unit

# $name, ${name}, ${name:format}, [[name]]; Grafana's own variables start with "__".
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
DATASOURCE_TYPES = {"prometheus": "prometheus", "clickhouse": "grafana-clickhouse-datasource"}
QUERY_FIELD = {"prometheus": "expr", "clickhouse": "rawSql"}


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory(EXAMPLE_DIRECTORY)


@pytest.fixture(scope="module")
def generated(directory: Directory) -> dict[str, dict[str, Any]]:
    return dashboards(directory)


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def model_problems(dashboard: dict[str, Any]) -> list[str]:
    """What a Grafana 11 dashboard needs of our generator; an empty list means valid."""
    problems: list[str] = []
    for key in ("uid", "title", "schemaVersion", "panels", "templating", "time"):
        if key not in dashboard:
            problems.append(f"missing {key}")
    ids = [panel.get("id") for panel in dashboard["panels"]]
    if len(set(ids)) != len(ids) or not all(isinstance(i, int) for i in ids):
        problems.append(f"panel ids must be unique integers: {ids}")
    cells: dict[tuple[int, int], int] = {}
    for panel in dashboard["panels"]:
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        if not isinstance(panel.get("type"), str):
            problems.append(f"{where}: no type")
        grid = panel.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in "xywh") or grid["x"] + grid["w"] > 24:
            problems.append(f"{where}: bad gridPos {grid}")
            continue
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                if (x, y) in cells:
                    problems.append(f"{where}: overlaps panel {cells[x, y]}")
                cells[x, y] = panel["id"]
        if panel["type"] == "row":
            continue
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no targets")
        ref_ids = [target.get("refId") for target in targets]
        if len(set(ref_ids)) != len(ref_ids) or None in ref_ids:
            problems.append(f"{where}: refIds {ref_ids}")
        for target in targets:
            datasource = target.get("datasource") or {}
            uid = datasource.get("uid")
            if uid not in DATASOURCE_TYPES or datasource.get("type") != DATASOURCE_TYPES[uid]:
                problems.append(f"{where}: unknown datasource {datasource}")
            elif not str(target.get(QUERY_FIELD[uid], "")).strip():
                problems.append(f"{where}: target {target.get('refId')} has no {QUERY_FIELD[uid]}")
    defined = {variable["name"] for variable in dashboard["templating"]["list"]}
    used = {
        next(name for name in match.groups() if name)
        for text in strings(dashboard["panels"])
        for match in VARIABLE.finditer(text)
    }
    undefined = {name for name in used if not name.startswith("__")} - defined
    if undefined:
        problems.append(f"variables used but not defined: {sorted(undefined)}")
    return problems


def test_every_dashboard_fits_the_model(generated: dict[str, dict[str, Any]]) -> None:
    for name, dashboard in generated.items():
        assert model_problems(dashboard) == [], name


def test_the_model_check_catches_mistakes(generated: dict[str, dict[str, Any]]) -> None:
    broken = {**generated["sla.json"], "panels": [dict(panel) for panel in generated["sla.json"]["panels"]]}
    broken["panels"][1]["id"] = broken["panels"][0]["id"]
    broken["panels"][2]["targets"] = [
        {"refId": "A", "datasource": {"type": "prometheus", "uid": "prom"}, "expr": "up"}
    ]
    broken["panels"][3]["gridPos"] = dict(broken["panels"][0]["gridPos"])
    broken["panels"][4]["targets"] = [
        {"refId": "A", "datasource": names_prometheus(), "expr": 'up{x="$nope"}'}
    ]
    problems = "\n".join(model_problems(broken))
    assert "unique integers" in problems
    assert "unknown datasource" in problems
    assert "overlaps" in problems
    assert "['nope']" in problems


def names_prometheus() -> dict[str, str]:
    return {"type": "prometheus", "uid": names.PROMETHEUS_DATASOURCE_UID}


def test_dashboards_say_they_are_generated(generated: dict[str, dict[str, Any]]) -> None:
    uids = [dashboard["uid"] for dashboard in generated.values()]
    assert sorted(uids) == sorted([names.SCORECARD_UID, names.MATRIX_UID, names.SLA_UID, names.PIPELINE_UID])
    for dashboard in generated.values():
        assert dashboard["__generated"].startswith("Generated by `deptpulse rules generate`")
        assert "Do not edit by hand" in dashboard["description"]
        assert dashboard["editable"] is False


def test_the_scorecard_is_templated_by_department(
    generated: dict[str, dict[str, Any]], directory: Directory
) -> None:
    scorecard = generated["scorecard.json"]
    variables = {variable["name"]: variable for variable in scorecard["templating"]["list"]}
    department = variables["provider_department"]
    assert [option["value"] for option in department["options"]] == directory.department_ids()
    assert "人力资源部 : hr" in department["query"]
    assert [option["value"] for option in variables["window"]["options"]] == list(names.WINDOWS)
    selection = {
        names.PROMETHEUS_DATASOURCE_UID: 'provider_department="$provider_department"',
        names.CLICKHOUSE_DATASOURCE_UID: "provider_department = ${provider_department:sqlstring}",
    }
    queries = [(uid, query) for _, uid, query in panel_queries(scorecard) + annotation_queries(scorecard)]
    assert {uid for uid, _ in queries} == set(selection)
    assert all(selection[uid] in query for uid, query in queries)


def test_the_matrix_pivots_provider_by_customer(generated: dict[str, dict[str, Any]]) -> None:
    matrix = generated["matrix.json"]
    for panel in matrix["panels"]:
        (transformation,) = panel["transformations"]
        assert transformation["id"] == "groupingToMatrix"
        assert transformation["options"]["rowField"] == "provider_department"
        assert transformation["options"]["columnField"] == "customer_department"
        assert all(target["instant"] for target in panel["targets"])
        assert all('customer_department!="*"' in target["expr"] for target in panel["targets"])


def test_the_pipeline_dashboard_covers_every_pipeline_metric(generated: dict[str, dict[str, Any]]) -> None:
    queries = " ".join(query for _, _, query in panel_queries(generated["pipeline.json"]))
    for metric in (
        'up{job="deptpulse-worker"}',
        "deptpulse_events_total",
        "deptpulse_dead_letters_total",
        "deptpulse_duplicate_events_total",
        "deptpulse_late_events_total",
        "deptpulse_sink_rows_total",
        "deptpulse_sink_batches_total",
        "deptpulse_sink_errors_total",
        "deptpulse_sink_batch_duration_seconds_bucket",
        "deptpulse_consumer_lag",
        "deptpulse_last_event_timestamp_seconds",
        "deptpulse_gateway_requests_total",
        "deptpulse_gateway_request_duration_seconds_bucket",
    ):
        assert metric in queries, metric


def test_alert_links_point_at_generated_dashboards(
    directory: Directory, generated: dict[str, dict[str, Any]]
) -> None:
    uids = {dashboard["uid"] for dashboard in generated.values()}
    for alert in alerts(rule_files(directory)):
        url = alert["annotations"]["dashboard_url"]
        uid = url.split("/d/", 1)[1].split("?", 1)[0]
        assert uid in uids, alert["alert"]


def test_provisioning() -> None:
    sources = {source["uid"]: source for source in datasources()["datasources"]}
    assert sources["prometheus"]["type"] == "prometheus"
    assert sources["prometheus"]["url"] == "http://127.0.0.1:19090"
    clickhouse = sources["clickhouse"]
    assert clickhouse["type"] == "grafana-clickhouse-datasource"
    assert clickhouse["jsonData"]["port"] == 8123
    assert (
        clickhouse["secureJsonData"]["password"] == "${DEPTPULSE_GRAFANA_CLICKHOUSE_PASSWORD}"
    )  # never a literal
    assert clickhouse["jsonData"]["username"] == "grafana"  # read-only: deptpulse_grafana_ro
    (provider,) = dashboard_provider()["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_scorecard_and_sla_dashboards_break_figures_down_by_service(
    generated: dict[str, dict[str, Any]],
) -> None:
    for name, providers, table_title in (
        ("scorecard.json", 'provider_department="$provider_department"', names.BY_SERVICE_PANEL),
        ("sla.json", 'provider_department=~"$provider_department"', names.SLA_BY_SERVICE_PANEL),
    ):
        dashboard = generated[name]
        variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
        service = variables["service"]
        assert service["type"] == "query" and service["datasource"] == names_prometheus()
        assert service["query"] == (
            f'label_values({metric_names.SERVICE_CSAT_RESPONSES}{{{providers},customer_department="*"}}, service_category)'
        )
        assert service["includeAll"] and service["allValue"] == ".+"
        (table,) = [
            p for p in dashboard["panels"] if p["type"] == "table" and p["title"].startswith(table_title)
        ]
        queries = [target["expr"] for target in table["targets"]]
        assert all(
            providers in q and 'service_category=~"$service"' in q and 'customer_department="*"' in q
            for q in queries
        )
        assert all(target["instant"] for target in table["targets"])
        assert {metric_names.SERVICE_SLA_ATTAINMENT, metric_names.SERVICE_SLA_SHORTFALL} <= {
            q.split("{")[0] for q in queries
        }
        renamed = table["transformations"][1]["options"]["renameByName"]
        assert renamed["service_category"] == "service"


# Places in the alert texts -> (dashboard uid, a panel title the dashboard must have, its type).
ALERT_POINTERS = {
    f"'{names.BY_SERVICE_PANEL}' table of the scorecard dashboard": (
        names.SCORECARD_UID,
        names.BY_SERVICE_PANEL,
        "table",
    ),
    "SLA attainment by service": (names.SLA_UID, names.SLA_BY_SERVICE_PANEL, "table"),
    "the scorecard dashboard lists the backlog by customer department": (
        names.SCORECARD_UID,
        "Waiting past first-response target",
        "bargauge",
    ),
    "the customer departments below target": (names.SLA_UID, "Pairs below their SLA target", "table"),
    "the requests waiting past their first-response target": (
        names.SLA_UID,
        "Waiting past first-response target",
        "timeseries",
    ),
}


def test_the_panels_alerts_point_to_exist(directory: Directory, generated: dict[str, dict[str, Any]]) -> None:
    by_uid = {dashboard["uid"]: dashboard for dashboard in generated.values()}
    pointed = set()
    for alert in alerts(rule_files(directory)):
        text = alert["annotations"]["description"]
        for phrase, (uid, title, kind) in ALERT_POINTERS.items():
            if phrase in text:
                pointed.add(phrase)
                panels = [
                    p for p in by_uid[uid]["panels"] if p["title"].startswith(title) and p["type"] == kind
                ]
                assert panels, (alert["alert"], phrase)
    assert pointed == set(ALERT_POINTERS), "a pointer no alert uses any more: drop it here"
