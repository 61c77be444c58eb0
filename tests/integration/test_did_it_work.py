"""Did it work? Survey campaigns and action effects on real embedded ClickHouse (chdb), from events
built here and stored as the worker stores them (raw_events rows from the sink's row function,
minute_buckets deltas from the core); the CLI directly and through a read API; `actions add` to a
real Kafka broker.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from clickhouse_connect.driver.client import Client

from deptpulse.cli import main
from deptpulse.settings import EXAMPLE_DIRECTORY, Settings
from schemas.directory import load_directory
from schemas.events import ActionRecorded, Event, parse_event, validate_event
from stream_processors import storage
from stream_processors.actions.api import endpoints as action_endpoints
from stream_processors.actions.measuring import ActionRow, ActionsService, ClickHouseActions
from stream_processors.core import PartitionProcessor
from stream_processors.scorecard.read_api import ReadApi
from stream_processors.scorecard.service import ScorecardService
from stream_processors.sinks.clickhouse import RAW_EVENT_COLUMNS, raw_event_row
from stream_processors.surveys.api import endpoints as survey_endpoints
from stream_processors.surveys.campaigns import CampaignsService, ClickHouseCampaigns, UnknownCampaign
from tests.integration.test_publisher import consume_all, fresh_topic
from tests.integration.test_report import env_for, insert_deltas
from tests.read_api_server import serving

pytestmark = pytest.mark.integration

DIRECTORY = load_directory(EXAMPLE_DIRECTORY)
NOW = datetime.now(UTC).replace(microsecond=0)
# Campaigns are recent (raw_events keep 400 days); the actions' data is on fixed weekdays without
# holidays in HR's calendar, so that business durations repeat exactly from week to week.
CAMPAIGN_START = (NOW - timedelta(days=120)).replace(hour=2, minute=0, second=0)
ACTION_START = date(2026, 6, 8)  # a Monday; windows 2026-05-11..06-07 and 2026-06-15..07-12


def event(event_type: str, at: datetime, event_id: str, **fields: Any) -> Event:
    base = {"schema_version": 1, "event_type": event_type, "event_id": event_id, "occurred_at": at}
    return validate_event({"source": "test", "provider_department": "hr"} | base | fields, DIRECTORY)


def store_raw(client: Client, events: list[Event], first_offset: int = 0) -> None:
    """raw_events rows exactly as the worker's sink writes them."""
    rows = [raw_event_row("deptpulse.events", 0, first_offset + i, e, NOW) for i, e in enumerate(events)]
    client.insert("raw_events", rows, column_names=RAW_EVENT_COLUMNS)


def store_processed(client: Client, events: list[Event]) -> None:
    """minute_buckets deltas from the core, as the worker writes them (raw_events too)."""
    ordered = sorted(events, key=lambda e: e.occurred_at)
    result = PartitionProcessor(DIRECTORY).process_batch(enumerate(ordered), NOW)
    assert not result.dead_letters, result.dead_letters[:3]
    insert_deltas(client, result.deltas)
    store_raw(client, ordered, first_offset=1_000_000)


def cli(env: dict[str, str | None], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


# --- survey campaigns ---------------------------------------------------------------------------------


def campaign_events() -> list[Event]:
    t = CAMPAIGN_START
    events: list[Event] = []

    def invite(customer: str, count: int, at: datetime, campaign: str = "q1") -> None:
        events.append(
            event(
                "survey.invited",
                at,
                f"inv-{campaign}-{customer}-{len(events)}",
                customer_department=customer,
                campaign_id=campaign,
                invited=count,
            )
        )

    def answer(customer: str, score: int, at: datetime, campaign: str | None, respondent: str | None) -> None:
        fields: dict[str, Any] = {"customer_department": customer, "score": score}
        if campaign:
            fields["campaign_id"] = campaign
        if respondent:
            fields["respondent_id"] = respondent
        events.append(event("survey.answered", at, f"ans-{len(events)}", **fields))

    # q1: IT invited 30 in one event; 12 people answer two questions each (20 promoters, 4 detractors)
    invite("it", 30, t)
    for person in range(12):
        for question in range(2):
            score = 10 if person < 10 else 4
            answer("it", score, t + timedelta(days=1, minutes=person * 2 + question), "q1", f"it-{person}")
    # finance: ten invitations of one, twelve respondents: the invitations are incomplete
    for i in range(10):
        invite("finance", 1, t + timedelta(minutes=i))
    for person in range(12):
        answer("finance", 7, t + timedelta(days=2, minutes=person), "q1", f"fin-{person}")
    # sales: 40 invited, 5 answer (no respondent ids: each answer is a respondent): low response
    invite("sales", 40, t + timedelta(hours=1))
    for i in range(5):
        answer("sales", 8, t + timedelta(days=3, minutes=i), "q1", None)
    # an answer without a campaign: not part of any
    answer("it", 0, t + timedelta(days=1), None, "it-0")
    # "ghost": answers, no invitation recorded
    for i in range(3):
        answer("legal", 9, t + timedelta(days=5, minutes=i), "ghost", f"legal-{i}")
    # q2, two months later: IT again, now mostly detractors
    later = t + timedelta(days=60)
    invite("it", 30, later, "q2")
    for person in range(25):
        answer("it", 9 if person < 5 else 3, later + timedelta(days=1, minutes=person), "q2", f"it-{person}")
    # another provider's campaign
    events.append(
        validate_event(
            {
                "schema_version": 1,
                "event_type": "survey.answered",
                "event_id": "it-pulse-1",
                "occurred_at": t + timedelta(days=4),
                "source": "test",
                "provider_department": "it",
                "customer_department": "hr",
                "score": 9,
                "campaign_id": "it-pulse",
            },
            DIRECTORY,
        )
    )
    return events


@pytest.fixture
def campaigns_db(clickhouse_client: Client) -> Client:
    storage.migrate(clickhouse_client)
    events = campaign_events()
    store_raw(clickhouse_client, events)
    store_raw(clickhouse_client, events)  # a re-processed batch: the same rows again, not merged yet
    return clickhouse_client


def test_campaigns_from_invitations_and_answers(campaigns_db: Client) -> None:
    service = CampaignsService(ClickHouseCampaigns(campaigns_db), DIRECTORY)
    rows = {(r.campaign_id, r.customer_department): r for r in service.campaigns("hr")}
    assert list(rows) == [
        ("q1", None),
        ("q1", "it"),
        ("q1", "finance"),
        ("q1", "sales"),
        ("ghost", None),
        ("ghost", "legal"),
        ("q2", None),
        ("q2", "it"),
    ]
    it = rows[("q1", "it")]
    assert (it.invited, it.answered, it.respondents) == (30, 24, 12)
    assert it.response_rate == pytest.approx(0.4)
    assert (it.promoters, it.passives, it.detractors, it.low_response) == (20, 0, 4, False)
    assert it.nps == pytest.approx(100 * 16 / 24) and it.nps_margin95 is not None
    assert it.started == CAMPAIGN_START
    assert it.ended == CAMPAIGN_START + timedelta(days=1, minutes=23)

    finance = rows[("q1", "finance")]
    assert (finance.invited, finance.respondents, finance.response_rate) == (10, 12, None)
    assert finance.data_problem == "12 respondents but 10 invitations: the invitations are incomplete"
    assert finance.nps_insufficient and finance.nps is None  # 12 answers < 20

    sales = rows[("q1", "sales")]
    assert (sales.invited, sales.answered, sales.respondents) == (40, 5, 5)
    assert sales.response_rate == pytest.approx(0.125) and sales.low_response

    overall = rows[("q1", None)]
    assert (overall.invited, overall.answered, overall.respondents) == (80, 41, 29)
    assert overall.response_rate is None
    assert overall.data_problem == (
        "more respondents than invitations from finance: the invitations are incomplete"
    )

    ghost = rows[("ghost", "legal")]
    assert (ghost.invited, ghost.response_rate, ghost.data_problem, ghost.answered) == (None, None, None, 3)

    q2 = rows[("q2", "it")]
    assert (q2.previous_campaign_id, q2.change_verdict) == ("q1", "worse")
    assert q2.nps is not None and it.nps is not None
    assert q2.nps == pytest.approx(100 * (5 - 20) / 25)
    assert q2.nps_change == pytest.approx(q2.nps - it.nps)
    assert q2.nps_change_high is not None and q2.nps_change_high < 0
    assert rows[("q2", None)].previous_campaign_id == "ghost"  # the provider's campaign before, overall

    with pytest.raises(UnknownCampaign, match="unknown campaign 'q3': the campaigns of hr are q1, ghost, q2"):
        service.campaigns("hr", "q3")
    assert {r.provider_department for r in service.campaigns()} == {"hr", "it"}


def test_surveys_cli_directly_and_through_the_read_api(
    campaigns_db: Client, clickhouse_settings: Settings
) -> None:
    env = env_for(clickhouse_settings)
    direct = cli(env, "surveys", "--provider", "hr", "--campaign", "q1", "--format", "json")
    assert direct.exit_code == 0, direct.output
    assert [row["customer_department"] for row in json.loads(direct.stdout)] == [
        None,
        "it",
        "finance",
        "sales",
    ]
    table = cli(env, "surveys", "--provider", "hr")
    assert "12.5 % (low)" in table.stdout and "not recorded" in table.stdout

    refused = cli(env, "surveys", "--provider", "hr", "--campaign", "nope")
    assert refused.exit_code == 2
    assert "unknown campaign 'nope': the campaigns of hr are q1, ghost, q2" in refused.output

    service = CampaignsService(ClickHouseCampaigns(campaigns_db), DIRECTORY)
    api = ReadApi(
        ScorecardService(None, DIRECTORY),  # type: ignore[arg-type]  # not asked here
        DIRECTORY,
        endpoints=survey_endpoints(service, DIRECTORY),
    )
    with serving(api) as port:
        remote_env = env | {"DEPTPULSE_WORKER_PORT": str(port)}
        via_api = cli(remote_env, "surveys", "--provider", "hr", "--campaign", "q1", "--format", "json")
        refused_remotely = cli(remote_env, "surveys", "--campaign", "nope")
    assert via_api.exit_code == 0, via_api.output
    assert json.loads(via_api.stdout) == json.loads(direct.stdout)
    assert refused_remotely.exit_code == 2
    assert (
        "answered 400: unknown campaign 'nope': the campaigns are q1, it-pulse, ghost, q2"
        in refused_remotely.output
    )


# --- actions and their effect -------------------------------------------------------------------------


def requests(
    service: str, day: datetime, prefix: str, csat: list[int], respond: timedelta, resolve: timedelta
) -> list[Event]:
    """One request per CSAT score that day, opened 15 minutes apart from 09:30 in Shanghai."""
    events: list[Event] = []
    for i, score in enumerate(csat):
        opened = day + timedelta(hours=1, minutes=30 + 15 * i)
        request = f"{prefix}-{day:%m%d}-{i}"
        common = {
            "request_id": request,
            "customer_department": "it",
            "service_category": service,
            "priority": "P2",
        }
        events += [
            event("request.opened", opened, f"{request}-o", **common),
            event("request.responded", opened + respond, f"{request}-r", **common),
            event("request.resolved", opened + resolve, f"{request}-s", **common),
            event(
                "feedback.submitted",
                opened + resolve + timedelta(minutes=5),
                f"{request}-f",
                **common,
                csat=score,
            ),
        ]
    return events


def survey(service: str, day: datetime, prefix: str, score: int) -> Event:
    return event(
        "survey.answered",
        day + timedelta(hours=6),
        f"{prefix}-nps-{day:%m%d}",
        customer_department="it",
        service_category=service,
        score=score,
    )


def action_data() -> list[Event]:
    """Recruiting: slow and unhappy before, fast and happy after. Payroll: the same before and after."""
    start = datetime(ACTION_START.year, ACTION_START.month, ACTION_START.day, tzinfo=UTC)
    events: list[Event] = []
    for offset in range(-28, 35 + 28):
        day = start + timedelta(days=offset)
        before = offset < 0
        events += requests(
            "hr.recruiting",
            day,
            "rec",
            [2, 3] * 5 if before else [5] * 10,
            timedelta(hours=6) if before else timedelta(minutes=10),
            timedelta(days=2) if before else timedelta(hours=3),
        )
        events.append(survey("hr.recruiting", day, "rec", 3 if before else 10))
        events += requests("hr.payroll", day, "pay", [5, 4, 2, 5, 3], timedelta(hours=1), timedelta(hours=5))
        events.append(survey("hr.payroll", day, "pay", [9, 3, 7, 10][offset % 4]))
    return events


def action(event_id: str, service: str, title: str, customer: str | None = None) -> ActionRecorded:
    recorded = event(
        "action.recorded",
        NOW,
        event_id,
        service_category=service,
        customer_department=customer,
        title=title,
        started_on=ACTION_START,
        owner="wang.fang@example.com",
    )
    assert isinstance(recorded, ActionRecorded)
    return recorded


@pytest.fixture
def actions_db(clickhouse_client: Client) -> Client:
    storage.migrate(clickhouse_client)
    store_processed(clickhouse_client, action_data())
    recorded: list[Event] = [
        action("action:recruiting", "hr.recruiting", "recruiting reorganised"),
        action("action:payroll", "hr.payroll", "payroll FAQ rewritten"),
        action("action:payroll-finance", "hr.payroll", "payroll office hours for finance", "finance"),
    ]
    store_raw(clickhouse_client, recorded)
    store_raw(clickhouse_client, recorded)  # stored twice: listed once
    return clickhouse_client


def verdicts(row: ActionRow) -> dict[str, str]:
    return {effect.figure: effect.verdict for effect in row.effects}


def test_a_large_change_is_improved_an_unchanged_one_is_no_detectable_change(actions_db: Client) -> None:
    service = ActionsService(ClickHouseActions(actions_db), DIRECTORY, 28, 7)
    rows = {row.event_id: row for row in service.actions(NOW, "hr")}
    assert sorted(rows) == ["action:payroll", "action:payroll-finance", "action:recruiting"]

    recruiting = rows["action:recruiting"]
    assert recruiting.status == "measured"
    assert (recruiting.before_since, recruiting.after_until) == (
        datetime(2026, 5, 11, tzinfo=UTC),
        datetime(2026, 7, 13, tzinfo=UTC),
    )
    assert verdicts(recruiting) == {
        "satisfied_share": "improved",
        "csat_avg": "improved",
        "nps": "improved",
        "sla_attainment": "improved",
        "first_response_p50_s": "improved",
        "resolution_p50_s": "improved",
    }
    nps = next(e for e in recruiting.effects if e.figure == "nps")
    assert (nps.before, nps.after, nps.before_count, nps.after_count) == (-100, 100, 28, 28)
    assert recruiting.overlapping == [] and recruiting.notes == []

    payroll = rows["action:payroll"]
    assert set(verdicts(payroll).values()) == {"no detectable change"}
    satisfied = next(e for e in payroll.effects if e.figure == "satisfied_share")
    assert (
        satisfied.difference == 0 and satisfied.low is not None and satisfied.low < 0 < (satisfied.high or 0)
    )

    # For finance only: no finance data in the buckets (everything was for IT), so no verdict at all
    finance = rows["action:payroll-finance"]
    assert set(verdicts(finance).values()) == {"insufficient"}
    assert finance.overlapping == ["action:payroll"] and payroll.overlapping == ["action:payroll-finance"]
    assert "their effects cannot be separated" in finance.notes[0]


def test_actions_cli_directly_and_through_the_read_api(
    actions_db: Client, clickhouse_settings: Settings
) -> None:
    env = env_for(clickhouse_settings) | {
        "DEPTPULSE_ACTION_WINDOW_DAYS": "28",
        "DEPTPULSE_ACTION_SETTLING_DAYS": "7",
    }
    direct = cli(env, "actions", "list", "--provider", "hr", "--format", "json")
    assert direct.exit_code == 0, direct.output
    listed = json.loads(direct.stdout)
    assert len(listed) == 3 and {row["status"] for row in listed} == {"measured"}
    table = cli(env, "actions", "list")
    assert "recruiting reorganised" in table.stdout and "improved" in table.stdout

    service = ActionsService(ClickHouseActions(actions_db), DIRECTORY, 28, 7)
    api = ReadApi(
        ScorecardService(None, DIRECTORY),  # type: ignore[arg-type]  # not asked here
        DIRECTORY,
        endpoints=action_endpoints(service, DIRECTORY),
    )
    with serving(api) as port:
        via_api = cli(
            env | {"DEPTPULSE_WORKER_PORT": str(port)},
            "actions",
            "list",
            "--provider",
            "hr",
            "--format",
            "json",
        )
    assert via_api.exit_code == 0, via_api.output
    assert json.loads(via_api.stdout) == listed


# --- actions add: to Kafka ------------------------------------------------------------------------------


def test_actions_add_publishes_an_event_the_contract_accepts(kafka_stack: Settings) -> None:
    topic = fresh_topic(kafka_stack)
    env: dict[str, str | None] = {
        "DEPTPULSE_KAFKA_BOOTSTRAP_SERVERS": kafka_stack.kafka_bootstrap_servers,
        "DEPTPULSE_EVENTS_TOPIC": topic,
        "DEPTPULSE_DIRECTORY_PATH": str(EXAMPLE_DIRECTORY),
    }
    result = CliRunner().invoke(
        main,
        [
            "actions",
            "add",
            "--provider",
            "hr",
            "--service",
            "hr.recruiting",
            "--title",
            "recruiting reorganised",
            "--started",
            (NOW - timedelta(days=3)).date().isoformat(),
            "--owner",
            "wang.fang@example.com",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    event_id = result.stdout.strip()
    assert event_id.startswith("action:")
    [record] = consume_all(kafka_stack, topic, 1)
    published = parse_event(record.value, DIRECTORY)
    assert isinstance(published, ActionRecorded)
    assert (published.event_id, published.title, published.service_category, published.source) == (
        event_id,
        "recruiting reorganised",
        "hr.recruiting",
        "deptpulse-cli",
    )
    assert record.key == b"hr"
