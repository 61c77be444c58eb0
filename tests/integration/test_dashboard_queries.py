"""The generated dashboards' queries executed by a real Prometheus (the session's ``prometheus_stack``,
which loads the generated rules), against the worker's gauges as the worker exports them.

test_promtool.py parses every query; this runs them on data: a query can parse and still fail on
it (many-to-many matching), or name a metric or label the worker never exports. An exporter on the
worker's port serves :class:`BusinessGauges` and :class:`ServiceGauges` filled from sample rows.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, start_http_server

from deptpulse.settings import EXAMPLE_DIRECTORY, Settings
from schemas import metric_names
from schemas.directory import load_directory
from schemas.observability import names
from schemas.observability.dashboards import dashboards, panel_queries
from stream_processors.core import MinuteAggregate
from stream_processors.core.aggregates import merge_into
from stream_processors.metrics import BusinessGauges, Metrics, ServiceGauges, ServiceRow
from stream_processors.scorecard.rows import figure_evidence, scorecard_row

pytestmark = pytest.mark.integration

# What Grafana substitutes: HR's scorecard over 7 days, every service (the variables' "All").
VARIABLES = {
    "provider_department": "hr",
    "window": "7d",
    "service": ".+",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
}
# HR's answers and requests of the week by customer and service: finance is unhappy with recruiting.
ROWS: list[ServiceRow] = [
    ("hr", "finance", "hr.recruiting", MinuteAggregate(csat_5=24, csat_2=40, sla_met=30, sla_breached=10)),
    ("hr", "finance", "", MinuteAggregate(csat_4=9, csat_1=1, sla_met=19, sla_breached=1)),
    ("hr", "it", "hr.payroll", MinuteAggregate(csat_5=30, sla_met=40, first_response_hist={40: 5})),
]


def pair_sums(rows: list[ServiceRow]) -> dict[str, MinuteAggregate]:
    """HR's sums per customer, one row per pair as the worker's window query gives them."""
    sums: dict[str, MinuteAggregate] = {}
    for _, customer, _, aggregate in rows:
        merge_into(sums.setdefault(customer, MinuteAggregate()), aggregate)
    return sums


def get(prometheus: str, path: str, **params: str) -> Any:
    """The ``data`` of a Prometheus API answer; fails with Prometheus' error (e.g. a query's)."""
    url = f"{prometheus}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 400 bad_data, 422 execution: the body says why
        body = json.loads(exc.read())
    assert body["status"] == "success", (params, body)
    return body["data"]


def instant(prometheus: str, query: str) -> dict[str, float]:
    """``service_category`` (or the series' labels) -> value."""
    result = get(prometheus, "/api/v1/query", query=query)["result"]
    return {
        sample["metric"].get(names.SERVICE_LABEL) or json.dumps(sample["metric"], sort_keys=True): float(
            sample["value"][1]
        )
        for sample in result
    }


def substitute(query: str) -> str:
    def value(match: re.Match[str]) -> str:
        return VARIABLES[next(group for group in match.groups() if group)]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]", value, query)


@pytest.fixture(scope="module")
def prometheus(prometheus_stack: Settings) -> Iterator[str]:
    """The Prometheus URL once it has scraped the sample gauges and evaluated the rules on them.
    One exporter for the module: one stopped between tests leaves the rule groups going stale at
    different moments, so a test could read one group's fresh result beside another's gone one."""
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    business, services = BusinessGauges(metrics), ServiceGauges(metrics)
    for window in names.WINDOWS:
        business.update(window, [("hr", customer, a) for customer, a in pair_sums(ROWS).items()])
        services.update(window, ROWS, business.pairs(window))
    server, thread = start_http_server(prometheus_stack.worker_port, addr="127.0.0.1", registry=registry)
    url = f"http://127.0.0.1:{prometheus_stack.prometheus_port}"
    try:
        deadline = time.monotonic() + 90
        # Each rule group evaluates on its own schedule: wait for a result of every group read here.
        recorded = (metric_names.SERVICE_SLA_SHORTFALL, metric_names.SERVICE_SATISFACTION_SHORTFALL)
        while not all(
            instant(url, f'{metric}{{provider_department="hr",window="7d"}}') for metric in recorded
        ):
            assert time.monotonic() < deadline, "Prometheus did not scrape the gauges and evaluate the rules"
            time.sleep(1)
        yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_every_dashboard_query_runs_on_the_gauges(prometheus: str) -> None:
    queries = [
        (name, panel_id, substitute(query))
        for name, dashboard in dashboards(load_directory(EXAMPLE_DIRECTORY)).items()
        for panel_id, datasource, query in panel_queries(dashboard)
        if datasource == names.PROMETHEUS_DATASOURCE_UID
    ]
    assert len(queries) > 40
    for name, panel_id, query in queries:
        try:
            get(prometheus, "/api/v1/query", query=query)
        except AssertionError as exc:
            raise AssertionError(f"{name} panel {panel_id}: {exc}") from None
    business = [query for name, _, query in queries if name == "scorecard.json" and "deptpulse_csat" in query]
    assert any(instant(prometheus, query) for query in business), "the scorecard shows nothing of HR"


def test_the_by_service_panels_show_what_the_alerts_name(prometheus: str) -> None:
    generated = dashboards(load_directory(EXAMPLE_DIRECTORY))
    (table,) = [
        panel
        for panel in generated["scorecard.json"]["panels"]
        if panel["type"] == "table" and panel["title"].startswith(names.BY_SERVICE_PANEL)
    ]
    columns = {
        target["expr"].split("{")[0]: instant(prometheus, substitute(target["expr"]))
        for target in table["targets"]
    }

    # Every customer together, "other" for the answers without a service.
    assert columns[metric_names.SERVICE_CSAT_RESPONSES] == {"hr.recruiting": 64, "other": 10, "hr.payroll": 30}
    assert columns[metric_names.SERVICE_SATISFIED_SHARE] == {"hr.recruiting": 0.375, "other": 0.9, "hr.payroll": 1}
    # Missing satisfied answers against HR's target of 80%: 64 x (0.8 - 0.375) = 27.2; the others meet it.
    assert columns[metric_names.SERVICE_SATISFACTION_SHORTFALL] == {"hr.recruiting": pytest.approx(27.2)}
    # Missing on-time requests against 95%: recruiting 40 x (0.95 - 0.75) = 8, other 20 x (0.95 - 0.95) = 0.
    assert columns[metric_names.SERVICE_SLA_SHORTFALL] == {"hr.recruiting": pytest.approx(8)}
    assert columns[metric_names.SERVICE_FIRST_RESPONSE_P90] == {"hr.payroll": pytest.approx(94.406, abs=0.001)}

    (sla_table,) = [
        panel
        for panel in generated["sla.json"]["panels"]
        if panel["type"] == "table" and panel["title"].startswith(names.SLA_BY_SERVICE_PANEL)
    ]
    attainment = next(
        t["expr"] for t in sla_table["targets"] if t["expr"].startswith(metric_names.SERVICE_SLA_ATTAINMENT)
    )
    assert instant(prometheus, substitute(attainment)) == {
        "hr.recruiting": 0.75,
        "other": 0.95,
        "hr.payroll": 1,
    }


def test_the_service_variable_lists_the_providers_services(prometheus: str) -> None:
    generated = dashboards(load_directory(EXAMPLE_DIRECTORY))
    for name in ("scorecard.json", "sla.json"):
        (variable,) = [v for v in generated[name]["templating"]["list"] if v["name"] == "service"]
        # label_values(<selector>, <label>): what Grafana asks Prometheus' label values API.
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"])
        assert match, variable["query"]
        selector, label = substitute(match.group(1)), match.group(2)
        values = get(prometheus, f"/api/v1/label/{label}/values", **{"match[]": selector})
        assert values == ["hr.payroll", "hr.recruiting", "other"], name


EVIDENCE_VALUES = {
    "below": names.EVIDENCE_BELOW,
    "unclear": names.EVIDENCE_UNCLEAR,
    "above": names.EVIDENCE_ABOVE,
}


def test_the_dashboards_colour_figures_by_the_evidence_the_html_page_uses(prometheus: str) -> None:
    """Every colour-by-evidence query of the scorecard and the matrix gives, per row, what
    ``figure_evidence`` (the HTML scorecard's colours) says of the same sums and policy."""
    directory = load_directory(EXAMPLE_DIRECTORY)
    policy = directory.policy_for("hr")
    by_pair = pair_sums(ROWS) | pair_sums([(p, names.OVERALL_CUSTOMER, s, a) for p, _, s, a in ROWS])
    since = datetime(2026, 1, 1, tzinfo=UTC)
    expected = {
        customer: figure_evidence(
            scorecard_row("hr", customer, since, since, aggregate, MinuteAggregate(), policy), policy
        )
        for customer, aggregate in by_pair.items()
    }
    assert expected["finance"]["satisfied_share"] == "below" and expected["it"]["sla_attainment"] == "unclear"
    generated = dashboards(directory)
    figures = {
        metric_names.CSAT_AVERAGE_EVIDENCE: "csat_avg",
        metric_names.SATISFIED_SHARE_EVIDENCE: "satisfied_share",
        metric_names.SLA_ATTAINMENT_EVIDENCE: "sla_attainment",
        metric_names.NPS_EVIDENCE: "nps",
    }
    checked = 0
    for name in ("scorecard.json", "matrix.json"):
        for panel_id, _, query in panel_queries(generated[name]):
            metric = query.split("{")[0]
            if metric not in figures:
                continue
            result = get(prometheus, "/api/v1/query", query=substitute(query))["result"]
            shown = {
                sample["metric"]["customer_department"]: float(sample["value"][1])
                for sample in result
                if sample["metric"].get("provider_department") == "hr"
            }
            wanted = {
                customer: float(EVIDENCE_VALUES.get(verdicts[figures[metric]], names.EVIDENCE_TOO_FEW))
                for customer, verdicts in expected.items()
                if (name == "matrix.json") == (customer != names.OVERALL_CUSTOMER)
            }
            assert shown == wanted, (name, panel_id, query)
            checked += 1
    assert checked == 7  # four stat panels of the scorecard, three grids of the matrix
