"""Every ClickHouse query of the generated dashboards (panels and annotations) executed on chdb, with
Grafana's variables and macros substituted as its ClickHouse datasource does, on campaigns and
actions stored as the worker stores them; the scorecard's campaign table and action annotations
must say what the CLI (`deptpulse surveys`, `deptpulse actions list`) says of the same data."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from schemas.events import Event
from schemas.observability import names
from schemas.observability.dashboards import annotation_queries, dashboards, panel_queries
from stream_processors import storage
from stream_processors.actions.measuring import ClickHouseActions
from stream_processors.surveys.campaigns import CampaignsService, ClickHouseCampaigns, latest_campaign
from tests.integration.test_did_it_work import DIRECTORY, NOW, campaign_events, event, store_raw

pytestmark = pytest.mark.integration

# The dashboard's time range, as Grafana sends it: the last 30 days.
RANGE_FROM, RANGE_TO = NOW - timedelta(days=30), NOW


def grafana_sql(query: str, provider: str) -> str:
    """``query`` as the ClickHouse datasource sends it: ``$__timeFilter(column)``, ``$__fromTime`` and
    ``$__toTime`` expanded for the range, ``${provider_department:sqlstring}`` quoted and escaped."""

    def seconds(moment: datetime) -> str:
        return f"toDateTime({int(moment.timestamp())})"

    query = re.sub(
        r"\$__timeFilter\(([^)]+)\)",
        lambda m: f"{m.group(1)} >= {seconds(RANGE_FROM)} AND {m.group(1)} <= {seconds(RANGE_TO)}",
        query,
    )
    query = query.replace("$__fromTime", seconds(RANGE_FROM)).replace("$__toTime", seconds(RANGE_TO))
    quoted = "'" + provider.replace("'", "''") + "'"
    query = query.replace("${provider_department:sqlstring}", quoted)
    query = re.sub(r"\$\{provider_department\}|\$provider_department", provider, query)
    assert "$" not in query, f"a variable or macro left unsubstituted: {query}"
    return query


def clickhouse_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title or annotation name, query) of every ClickHouse query."""
    found: list[tuple[str, str, str]] = []
    for name, dashboard in dashboards(DIRECTORY).items():
        titles = {panel["id"]: panel["title"] for panel in dashboard["panels"]}
        found += [
            (name, titles[panel_id], query)
            for panel_id, uid, query in panel_queries(dashboard)
            if uid == names.CLICKHOUSE_DATASOURCE_UID
        ]
        found += [
            (name, annotation, query)
            for annotation, uid, query in annotation_queries(dashboard)
            if uid == names.CLICKHOUSE_DATASOURCE_UID
        ]
    return found


def the_query(title: str) -> str:
    (query,) = [query for _, found, query in clickhouse_queries() if found == title]
    return query


def action(event_id: str, started_on: date, title: str, provider: str = "hr", **fields: Any) -> Event:
    return event(
        "action.recorded",
        NOW - timedelta(days=1),
        event_id,
        provider_department=provider,
        title=title,
        started_on=started_on,
        **fields,
    )


def action_events() -> list[Event]:
    today = NOW.date()
    return [
        action(
            "act-recruiting",
            today - timedelta(days=10),
            "recruiting reorganised",
            service_category="hr.recruiting",
        ),
        action("act-faq", today - timedelta(days=3), "payroll FAQ rewritten", customer_department="finance"),
        action("act-old", today - timedelta(days=60), "before the range"),  # outside the last 30 days
        action("act-it", today - timedelta(days=5), "another department's action", provider="it"),
    ]


@pytest.fixture
def grafana_db(clickhouse_client: Client) -> Client:
    storage.migrate(clickhouse_client)
    events = campaign_events() + action_events()
    store_raw(clickhouse_client, events)
    store_raw(clickhouse_client, events)  # a batch written twice: each event counts once
    return clickhouse_client


def rows(client: Client, query: str) -> list[dict[str, Any]]:
    return list(client.query(query).named_results())


def test_every_clickhouse_query_of_every_dashboard_runs(grafana_db: Client) -> None:
    queries = clickhouse_queries()
    assert {title for _, title, _ in queries} >= {names.LATEST_CAMPAIGN_PANEL, names.ACTIONS_ANNOTATION}
    for dashboard, title, query in queries:
        for provider in ("hr", "legal"):  # a department with data and one without
            try:
                grafana_db.query(grafana_sql(query, provider))
            except Exception as exc:
                raise AssertionError(f"{dashboard} {title!r} for {provider}: {exc}") from None


def expected_campaign(client: Client, provider: str) -> dict[str, Any]:
    """The overall row of the provider's latest campaign as `deptpulse surveys` gives it."""
    service = CampaignsService(ClickHouseCampaigns(client), DIRECTORY)
    overall = latest_campaign(service.campaigns(provider), provider)[0]
    assert overall.customer_department is None
    return {
        "campaign": overall.campaign_id,
        "started": overall.started,
        "last answer": overall.ended,
        "invited": overall.invited,
        "answered": overall.answered,
        "respondents": overall.respondents,
        "response rate": overall.response_rate,
        "NPS": None if overall.nps is None else round(overall.nps, 1),
    }


def shown(row: dict[str, Any]) -> dict[str, Any]:
    utc = {key: value.replace(tzinfo=UTC) for key, value in row.items() if isinstance(value, datetime)}
    return {key: value for key, value in (row | utc).items() if key != "note"}


def test_the_latest_campaign_panel_says_what_the_cli_says(grafana_db: Client) -> None:
    (row,) = rows(grafana_db, grafana_sql(the_query(names.LATEST_CAMPAIGN_PANEL), "hr"))
    # q2: IT invited 30, 25 answered (5 promoters, 20 detractors).
    assert shown(row) == expected_campaign(grafana_db, "hr")
    assert (row["campaign"], row["invited"], row["answered"]) == ("q2", 30, 25)
    assert row["response rate"] == pytest.approx(25 / 30) and row["NPS"] == -60
    assert row["note"] == ""
    assert rows(grafana_db, grafana_sql(the_query(names.LATEST_CAMPAIGN_PANEL), "legal")) == []


def test_an_incomplete_latest_campaign_shows_no_response_rate(clickhouse_client: Client) -> None:
    storage.migrate(clickhouse_client)
    q1 = [e for e in campaign_events() if getattr(e, "campaign_id", None) == "q1"]
    store_raw(clickhouse_client, q1)
    (row,) = rows(clickhouse_client, grafana_sql(the_query(names.LATEST_CAMPAIGN_PANEL), "hr"))
    # Finance: 12 respondents for 10 invitations: the overall rate would mislead.
    assert shown(row) == expected_campaign(clickhouse_client, "hr")
    assert (row["invited"], row["answered"], row["respondents"], row["response rate"]) == (80, 41, 29, None)
    assert row["note"] == "the invitations are incomplete"


def test_actions_are_annotations_of_the_selected_department_in_the_range(grafana_db: Client) -> None:
    annotations = rows(grafana_db, grafana_sql(the_query(names.ACTIONS_ANNOTATION), "hr"))
    listed = {
        (datetime.combine(a.started_on, datetime.min.time(), UTC), a.title)
        for a in ClickHouseActions(grafana_db).actions("hr")
    }
    in_range = {(at, title) for at, title in listed if RANGE_FROM <= at <= RANGE_TO}
    assert len(listed) == 3 and len(in_range) == 2
    assert [(a["time"].replace(tzinfo=UTC), a["text"].split(" (")[0]) for a in annotations] == sorted(
        in_range
    )
    assert [a["text"] for a in annotations] == [
        "recruiting reorganised (hr.recruiting)",
        "payroll FAQ rewritten (every service, for finance)",
    ]
