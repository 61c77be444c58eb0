"""stream_processors.comments without a database: the privacy minimum, low scores, truncation, and
renderings that survive hostile text (HTML, rich markup, emoji, 100 kB, mixed scripts)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deptpulse.settings import EXAMPLE_DIRECTORY
from schemas.directory import load_directory
from stream_processors.comments import render
from stream_processors.comments.api import comment_query
from stream_processors.comments.reading import (
    SHOWN_CHARACTERS,
    TRUNCATED,
    CommentQuery,
    CommentsService,
    is_low,
    shorten,
)
from stream_processors.scorecard.read_api import BadRequest
from stream_processors.scorecard.service import UnknownDepartment, UnknownService
from stream_processors.scorecard.windows import Window

pytestmark = pytest.mark.unit

DIRECTORY = load_directory(EXAMPLE_DIRECTORY)
SINCE = datetime(2026, 3, 1, tzinfo=UTC)
WINDOW = Window(SINCE, SINCE + timedelta(days=28))
HOSTILE = [
    "",
    "   \n\t ",
    "<script>alert('x')</script> 招聘太慢",
    "[bold red]not markup[/] hiring is slow",
    "👍🔥 recruiting 招聘 ok",
    "x" * 100_000,
    "Ünïcødé and 中文 and العربية mixed",
]


class FakeComments:
    """The reader's two queries over rows in memory."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows_in_memory = rows

    def counts(self, query: CommentQuery) -> tuple[int, int]:
        return len(self.rows_in_memory), len({row["respondent"] for row in self.rows_in_memory})

    def rows(self, query: CommentQuery, limit: int) -> list[dict[str, Any]]:
        return self.rows_in_memory[:limit]


def row(index: int, text: str, score: int = 2, respondent: str | None = None) -> dict[str, Any]:
    return {
        "event_id": f"e{index}",
        "occurred_at": SINCE + timedelta(hours=index),
        "provider_department": "hr",
        "customer_department": "sales",
        "service_category": "hr.recruiting",
        "event_type": "feedback.submitted",
        "score": score,
        "request_id": f"R{index}",
        "question_id": "",
        "campaign_id": "",
        "comment": text,
        "respondent": respondent or f"p{index}",
    }


def service(rows: list[dict[str, Any]]) -> CommentsService:
    return CommentsService(FakeComments(rows), min_respondents=5, min_comments=2)  # type: ignore[arg-type]


def test_nothing_is_shown_below_the_minimum_of_distinct_respondents() -> None:
    rows = [row(i, "hiring is slow", respondent=f"p{i % 4}") for i in range(12)]  # 12 comments, 4 people
    query = CommentQuery("hr", WINDOW)

    comments = service(rows).comments(query)
    themes = service(rows).themes(query)

    assert comments.rows == [] and comments.total == 12 and comments.respondents == 4
    assert comments.withheld is not None and "fewer than the minimum of 5" in comments.withheld
    assert themes.themes == [] and themes.withheld == comments.withheld
    shown = service([*rows, row(99, "hiring is slow", respondent="p9")]).comments(query)
    assert shown.withheld is None and len(shown.rows) == 13


@pytest.mark.parametrize(
    ("event_type", "score", "low"),
    [
        ("feedback.submitted", 3, True),
        ("feedback.submitted", 4, False),
        ("survey.answered", 6, True),
        ("survey.answered", 7, False),
    ],
)
def test_low_scores_are_csat_1_to_3_and_nps_0_to_6(event_type: str, score: int, low: bool) -> None:
    assert is_low(event_type, score) is low


def test_long_comments_are_cut_with_a_visible_mark() -> None:
    assert shorten("short") == "short"
    cut = shorten("x" * 100_000)
    assert cut.endswith(TRUNCATED) and len(cut) == SHOWN_CHARACTERS + len(TRUNCATED)


def test_hostile_comments_never_break_comments_themes_or_their_renderings() -> None:
    rows = [row(i, text, score=2 if i % 2 else 5) for i, text in enumerate(HOSTILE * 3)]
    query = CommentQuery("hr", WINDOW)

    comments = service(rows).comments(query)
    themes = service(rows).themes(query)

    assert len(comments.rows) == len(rows)
    assert all(len(r.comment) <= SHOWN_CHARACTERS + len(TRUNCATED) for r in comments.rows)
    table = render.as_text(render.comments_table(comments, DIRECTORY), width=120)
    assert "[bold red]not markup[/]" in table  # printed as text, not interpreted as rich markup
    assert all(len(example) <= 200 for theme in themes.themes for example in theme.examples)
    render.as_text(render.themes_table(themes, DIRECTORY), width=120)
    parsed = list(csv.DictReader(io.StringIO(render.comments_csv(comments))))
    assert [p["comment"] for p in parsed] == [r.comment for r in comments.rows]


@pytest.mark.parametrize(
    ("selection", "error", "message"),
    [
        ({"provider": None}, BadRequest, "provider is required"),
        ({"provider": "marketing"}, UnknownDepartment, "unknown provider department 'marketing': known are it, hr"),
        ({"provider": "hr", "service": "it.access"}, UnknownService, "hr's services are hr.payroll, hr.onboarding, hr.recruiting"),
        ({"provider": "hr", "customer": "nobody"}, UnknownDepartment, "unknown customer department 'nobody'"),
        ({"provider": "hr", "max_csat": 0}, BadRequest, "give 1 to 5"),
    ],
)  # fmt: skip
def test_a_selection_is_checked_before_anything_is_read(
    selection: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        comment_query(DIRECTORY, WINDOW, **selection)
    assert message in str(caught.value)


def test_the_page_escapes_themes_and_quotes_and_marks_the_weakest_service() -> None:
    from stream_processors.scorecard.render_html import HtmlReport, render_html
    from stream_processors.scorecard.service import ScorecardService
    from tests.unit.test_scorecard_service import FakeReader, csat, delta

    reader = FakeReader(
        [
            delta("hr", "sales", SINCE, *[csat(2)] * 30, service="hr.recruiting"),
            delta("hr", "sales", SINCE, *[csat(5)] * 30, service="hr.payroll"),
        ]
    )
    scorecards = ScorecardService(reader, DIRECTORY)
    rows = [row(i, "<script>alert(1)</script> hiring is slow 招聘太慢", score=2) for i in range(8)]
    themes = service(rows).themes(CommentQuery("hr", WINDOW))
    html = render_html(
        HtmlReport(
            directory=DIRECTORY,
            provider="hr",
            customer=None,
            window=WINDOW,
            rows=scorecards.scorecard(WINDOW, "hr"),
            matrix=scorecards.matrix(WINDOW),
            timeseries=scorecards.timeseries(WINDOW, "hr"),
            generated_at=SINCE,
            services=scorecards.services(WINDOW, "hr"),
            themes=themes,
        )
    )

    assert themes.themes and "<script>" not in html and "&lt;script&gt;" in html
    weak_row = next(line for line in html.split("<tr") if 'class="weak"' in line)
    assert "招聘 (Recruiting)" in weak_row and "weakest" in weak_row
