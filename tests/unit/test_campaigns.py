"""Survey campaigns without a database: rates, low response, data problems, the previous campaign,
an unknown campaign through the read API, and the formats."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deptpulse.settings import EXAMPLE_DIRECTORY
from schemas.directory import AlertPolicy, load_directory
from stream_processors.scorecard.read_api import ReadApi
from stream_processors.scorecard.service import ScorecardService
from stream_processors.surveys.api import SURVEYS_PATH, endpoints
from stream_processors.surveys.campaigns import (
    CAMPAIGN_FIELDS,
    CampaignCounts,
    CampaignsService,
    UnknownCampaign,
    campaign_row,
    campaign_rows,
    latest_campaign,
)
from stream_processors.surveys.render import campaigns_csv, campaigns_text, render_campaign_html

pytestmark = pytest.mark.unit

DIRECTORY = load_directory(EXAMPLE_DIRECTORY)
POLICY = AlertPolicy(nps_min_sample=20, survey_min_response_rate=0.30)
T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def counts(
    campaign: str = "q1",
    customer: str | None = None,
    *,
    provider: str = "hr",
    started: datetime = T0,
    invited: int | None = 100,
    respondents: int = 40,
    nps: tuple[int, int, int] = (20, 10, 10),
) -> CampaignCounts:
    answered = sum(nps)
    return CampaignCounts(
        campaign_id=campaign,
        provider_department=provider,
        customer_department=customer,
        started=started,
        ended=started + timedelta(days=10) if answered else None,
        invitation_events=0 if invited is None else 3,
        invited=invited or 0,
        answered=answered,
        respondents=respondents,
        promoters=nps[0],
        passives=nps[1],
        detractors=nps[2],
    )


@pytest.mark.parametrize(
    ("invited", "respondents", "rate", "low", "problem"),
    [
        (100, 40, 0.40, False, None),
        (100, 30, 0.30, False, None),  # at the minimum is not below it
        (100, 29, 0.29, True, None),
        (100, 0, 0.0, True, None),  # invited, nobody answered yet
        (10, 12, None, False, "12 respondents but 10 invitations: the invitations are incomplete"),
        (None, 12, None, False, None),  # no invitation recorded: the rate is unknown, not a problem
    ],
)
def test_the_response_rate_is_respondents_per_invitation_never_above_one(
    invited: int | None, respondents: int, rate: float | None, low: bool, problem: str | None
) -> None:
    row = campaign_row(counts(invited=invited, respondents=respondents), POLICY)
    assert row.invited == invited
    assert row.response_rate == (None if rate is None else pytest.approx(rate))
    assert row.low_response is low
    assert row.data_problem == problem


def test_the_nps_is_withheld_below_the_sample_minimum_but_the_counts_are_kept() -> None:
    short = campaign_row(counts(nps=(10, 5, 4)), POLICY)
    assert (short.nps, short.nps_margin95, short.nps_insufficient) == (None, None, True)
    assert (short.promoters, short.passives, short.detractors, short.answered) == (10, 5, 4, 19)
    enough = campaign_row(counts(nps=(10, 5, 5)), POLICY)
    assert enough.nps == pytest.approx(25.0)
    assert enough.nps_margin95 is not None and not enough.nps_insufficient


def test_rows_in_campaign_order_with_the_change_against_the_previous_campaign_of_the_same_customer() -> None:
    later = T0 + timedelta(days=90)
    middle = T0 + timedelta(days=45)
    rows = campaign_rows(
        [
            # listed out of order: the rows follow the start
            counts("q2", None, started=later, nps=(45, 5, 0)),
            counts("q2", "it", started=later, nps=(45, 5, 0)),
            counts("q1", None, nps=(10, 10, 30)),
            counts("q1", "it", nps=(10, 10, 30)),
            counts("q1", "sales", nps=(10, 10, 30)),
            # a campaign in between that 'it' did not answer: its previous stays q1
            counts("mid", None, started=middle, nps=(10, 10, 30)),
            counts("mid", "sales", started=middle, nps=(10, 10, 30)),
        ],
        DIRECTORY,
    )
    assert [(r.campaign_id, r.customer_department) for r in rows] == [
        ("q1", None),
        ("q1", "it"),
        ("q1", "sales"),
        ("mid", None),
        ("mid", "sales"),
        ("q2", None),
        ("q2", "it"),
    ]
    first, *_, overall, it = rows
    assert (first.previous_campaign_id, first.change_verdict, first.nps_change) == (None, None, None)
    assert overall.previous_campaign_id == "mid"
    assert it.previous_campaign_id == "q1"
    assert it.change_verdict == "improved"
    assert it.nps_change == pytest.approx(90 - (-40))
    assert it.nps_change_low is not None and it.nps_change_low > 0
    assert rows[4].change_verdict == "no detectable change"  # mid vs q1 for sales: the same answers


def test_a_change_below_the_sample_minimum_has_no_figure_and_says_so() -> None:
    rows = campaign_rows(
        [
            counts("q1", None, nps=(1, 0, 5)),
            counts("q2", None, started=T0 + timedelta(days=60), nps=(5, 0, 1)),
        ],
        DIRECTORY,
    )
    assert rows[1].change_verdict == "insufficient"
    assert (rows[1].nps_change, rows[1].nps_change_low, rows[1].nps_change_high) == (None, None, None)


def test_incomplete_invitations_of_a_customer_make_the_overall_rate_a_data_problem() -> None:
    rows = campaign_rows(
        [
            counts("q1", None, invited=60, respondents=42),
            counts("q1", "it", invited=50, respondents=20),
            counts("q1", "finance", invited=None, respondents=10),
            counts("q1", "sales", invited=10, respondents=12),
        ],
        DIRECTORY,
    )
    overall, it, finance, sales = rows
    assert overall.response_rate is None
    assert overall.data_problem == (
        "answers from finance without recorded invitations; more respondents than invitations from "
        "sales: the invitations are incomplete"
    )
    assert it.response_rate == pytest.approx(0.4)
    assert (finance.invited, finance.response_rate, finance.data_problem) == (None, None, None)
    assert sales.data_problem == "12 respondents but 10 invitations: the invitations are incomplete"


class FakeCampaigns:
    def __init__(self, entries: list[CampaignCounts]) -> None:
        self.entries = entries

    def campaign_counts(self, provider: str | None = None) -> list[CampaignCounts]:
        return [e for e in self.entries if provider is None or e.provider_department == provider]


ENTRIES = [
    counts("q1", None),
    counts("q1", "it"),
    counts("it-pulse", None, provider="it", started=T0 + timedelta(days=1)),
    counts("it-pulse", "hr", provider="it", started=T0 + timedelta(days=1)),
]


def test_an_unknown_campaign_is_refused_with_the_known_ones() -> None:
    service = CampaignsService(FakeCampaigns(ENTRIES), DIRECTORY)
    assert {r.campaign_id for r in service.campaigns(campaign="q1")} == {"q1"}
    with pytest.raises(UnknownCampaign, match=r"unknown campaign 'q9': the campaigns of hr are q1$"):
        service.campaigns("hr", "q9")
    with pytest.raises(UnknownCampaign, match="the campaigns of finance are none recorded yet"):
        service.campaigns("finance", "q1")


def test_the_read_api_answers_rows_and_refuses_an_unknown_campaign_with_a_400() -> None:
    service = CampaignsService(FakeCampaigns(ENTRIES), DIRECTORY)
    api = ReadApi(ScorecardService(None, DIRECTORY), DIRECTORY, endpoints=endpoints(service, DIRECTORY))  # type: ignore[arg-type]
    status, body = api.handle(SURVEYS_PATH, {"provider": "it"})
    assert status == 200
    assert [(r["campaign_id"], r["customer_department"]) for r in body["rows"]] == [
        ("it-pulse", None),
        ("it-pulse", "hr"),
    ]
    status, body = api.handle(SURVEYS_PATH, {"provider": "it", "campaign": "q1"})
    assert (status, body["reason"]) == (400, "unknown campaign 'q1': the campaigns of it are it-pulse")
    status, body = api.handle(SURVEYS_PATH, {"provider": "nope"})
    assert status == 400 and "unknown provider department 'nope'" in body["reason"]


def test_the_html_fragment_shows_the_latest_campaign_escaped_with_its_flags() -> None:
    rows = campaign_rows(
        [
            counts("q1", None),
            counts("<q2>", None, started=T0 + timedelta(days=50), respondents=10),
            counts("<q2>", "it", started=T0 + timedelta(days=50), respondents=10),
            counts("<q2>", "sales", started=T0 + timedelta(days=50), invited=None, respondents=3),
        ],
        DIRECTORY,
    )
    assert [r.campaign_id for r in latest_campaign(rows, "hr")] == ["<q2>"] * 3
    html = render_campaign_html(rows, DIRECTORY)
    assert "<q2>" not in html and "&lt;q2&gt;" in html
    assert "<script" not in html
    assert "low response (below 30.0 %)" in html  # 10 of 100
    assert "not recorded" in html  # sales had no invitation
    assert "answers from sales without recorded invitations" in html
    assert "vs q1: no detectable change" in html  # the same answers as q1
    assert "No survey campaign recorded" in render_campaign_html([], DIRECTORY)


def test_csv_and_table() -> None:
    row = campaign_row(counts(invited=None), POLICY).model_copy(update={"themes": ["speed", "offers"]})
    records = list(csv.DictReader(io.StringIO(campaigns_csv([row]))))
    assert tuple(records[0]) == CAMPAIGN_FIELDS
    assert records[0]["invited"] == "" and records[0]["low_response"] == "false"
    assert records[0]["themes"] == "speed; offers"
    odd = row.model_copy(update={"campaign_id": "[/]q1"})
    text = campaigns_text([odd], DIRECTORY)
    assert "not recorded" in text and "[/]q1" in text  # an id is text, not rich markup
    assert "no survey campaign recorded" in campaigns_text([], DIRECTORY)


def test_each_campaigns_overall_row_carries_the_top_themes_of_its_own_comments() -> None:
    from stream_processors.comments.reading import CommentQuery, CommentsService
    from tests.unit.test_comments_reading import FakeComments, row

    asked: list[CommentQuery] = []

    class Recording(CommentsService):
        def themes(self, query: CommentQuery, top: int = 10) -> Any:
            asked.append(query)
            return super().themes(query, top)

    texts = ["招聘太慢了", "hiring takes too long", "招聘流程太慢", "slow hiring again", "recruiting is slow"]
    comments = Recording(FakeComments([row(i, texts[i % 5]) for i in range(12)]), 5, 3)  # type: ignore[arg-type]
    service = CampaignsService(FakeCampaigns(ENTRIES), DIRECTORY, comments)

    rows = service.campaigns("hr")

    overall = next(r for r in rows if r.customer_department is None)
    assert overall.themes and len(overall.themes) <= 3
    assert all(not r.themes for r in rows if r.customer_department is not None)
    assert [(q.provider, q.campaign) for q in asked] == [("hr", "q1")]
    assert asked[0].window.since == overall.started
