"""What internal customers say: their redacted comments and the themes of those comments.

The worker redacts a comment before it is stored (``stream_processors.core.redaction``); this module
only reads. A selection (provider, window, optionally service, customer, campaign and a maximum
CSAT) is shown only when at least ``min_respondents`` distinct people wrote in it (5 by default,
the usual minimum reporting group of survey tools): below that, a comment or a quote could point to
its author, so the answer says how many there were and shows nothing. The same rule covers themes.

A comment is *low* when its score is CSAT 1-3 or NPS 0-6: themes rank what low scores say more
often than high ones (:func:`stream_processors.comments.themes.rank_themes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from clickhouse_connect.driver.client import Client
from pydantic import BaseModel, ConfigDict

from stream_processors.scorecard.windows import Window

FEEDBACK: Final = "feedback.submitted"
SURVEY: Final = "survey.answered"
CSAT_LOW_MAX: Final = 3  # CSAT 1-3: not satisfied
NPS_LOW_MAX: Final = 6  # NPS 0-6: detractors
SHOWN_CHARACTERS: Final = 600  # a comment longer than this is cut, with TRUNCATED after it
TRUNCATED: Final = "… [truncated]"
MAX_THEME_COMMENTS: Final = 20_000  # newest comments a theme ranking reads (bounded memory and time)


def is_low(event_type: str, score: int) -> bool:
    """CSAT 1-3 or NPS 0-6."""
    return score <= (CSAT_LOW_MAX if event_type == FEEDBACK else NPS_LOW_MAX)


def shorten(text: str, limit: int = SHOWN_CHARACTERS) -> str:
    """``text`` cut to ``limit`` characters with a visible mark; whitespace runs kept as they are."""
    return text if len(text) <= limit else text[:limit].rstrip() + TRUNCATED


@dataclass(frozen=True)
class CommentQuery:
    """Which comments: a provider's, in a window, optionally one service, customer, campaign, and
    only CSAT answers of at most ``max_csat``."""

    provider: str
    window: Window
    service: str | None = None
    customer: str | None = None
    max_csat: int | None = None
    campaign: str | None = None

    def parameters(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "provider": self.provider,
            "since": self.window.since,
            "until": self.window.until,
        }
        for name in ("service", "customer", "max_csat", "campaign"):
            value = getattr(self, name)
            if value is not None:
                values[name] = value
        return values


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CommentRow(_Model):
    occurred_at: datetime
    provider_department: str
    customer_department: str
    service_category: str  # "" when none
    event_type: str  # feedback.submitted (CSAT 1-5) or survey.answered (NPS 0-10)
    score: int
    low: bool
    request_id: str  # "" for survey answers
    question_id: str
    campaign_id: str
    comment: str  # redacted; cut to SHOWN_CHARACTERS with TRUNCATED


class ThemeRow(_Model):
    term: str
    comments: int  # distinct comments that mention it
    low_comments: int
    low_share: float  # of all low-score comments in the selection, the share that mention it
    log_odds_z: float
    examples: list[str]


class _Selection(_Model):
    provider_department: str
    service_category: str | None
    customer_department: str | None
    campaign_id: str | None
    max_csat: int | None
    since: datetime
    until: datetime
    respondents: int  # distinct people who commented in the selection
    min_respondents: int
    withheld: str | None  # why nothing is shown (too few respondents), else None


class CommentsAnswer(_Selection):
    total: int  # comments in the selection (also when withheld)
    rows: list[CommentRow]  # newest first, at most the limit asked for


class ThemesAnswer(_Selection):
    comments: int
    low_comments: int
    min_comments: int
    themes: list[ThemeRow]


# --- ClickHouse ------------------------------------------------------------------------------------

_FILTERS: Final = {
    "service": "AND service_category = {service:String}",
    "customer": "AND customer_department = {customer:String}",
    "max_csat": f"AND event_type = '{FEEDBACK}' AND score <= {{max_csat:UInt8}}",
    "campaign": "AND campaign_id = {campaign:String}",
}
_COLUMNS: Final = (
    "event_id, occurred_at, provider_department, customer_department, service_category, event_type, "
    "score, request_id, question_id, campaign_id, comment, respondent"
)


def _selection_sql(query: CommentQuery) -> str:
    """Fixed text and fixed filter fragments; every value is a server-side parameter."""
    filters = "\n  ".join(text for name, text in _FILTERS.items() if getattr(query, name) is not None)
    # ReplacingMergeTree: a re-processed batch may have written a comment twice until a merge.
    return f"""
SELECT {_COLUMNS}
FROM comments
WHERE provider_department = {{provider:String}}
  AND occurred_at >= {{since:DateTime64(3, 'UTC')}} AND occurred_at < {{until:DateTime64(3, 'UTC')}}
  {filters}
ORDER BY occurred_at DESC, event_id
LIMIT 1 BY event_id
"""


class ClickHouseComments:
    """The ``comments`` table; reading it needs the ``deptpulse_comments_reader`` role on a server."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def counts(self, query: CommentQuery) -> tuple[int, int]:
        """(comments, distinct respondents) in the selection."""
        row = self._client.query(
            f"SELECT count(), uniqExact(respondent) FROM ({_selection_sql(query)})",
            parameters=query.parameters(),
        ).result_rows[0]
        return int(row[0]), int(row[1])

    def rows(self, query: CommentQuery, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` comments of the selection."""
        result = self._client.query(
            f"SELECT * FROM ({_selection_sql(query)}) LIMIT {{limit:UInt32}}",
            parameters={**query.parameters(), "limit": limit},
        )
        return list(result.named_results())


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def comment_row(row: Mapping[str, Any]) -> CommentRow:
    event_type, score = str(row["event_type"]), int(row["score"])
    return CommentRow(
        occurred_at=_utc(row["occurred_at"]),
        provider_department=row["provider_department"],
        customer_department=row["customer_department"],
        service_category=row["service_category"],
        event_type=event_type,
        score=score,
        low=is_low(event_type, score),
        request_id=row["request_id"],
        question_id=row["question_id"],
        campaign_id=row["campaign_id"],
        comment=shorten(row["comment"]),
    )


# --- the service ------------------------------------------------------------------------------------


class CommentsService:
    """Comments and themes of a selection, withheld below the privacy minimum of respondents."""

    def __init__(self, reader: ClickHouseComments, min_respondents: int = 5, min_comments: int = 5) -> None:
        if min_respondents < 1 or min_comments < 1:
            raise ValueError("the minimums must be at least 1")
        self.reader = reader
        self.min_respondents = min_respondents
        self.min_comments = min_comments

    def _selection(self, query: CommentQuery, respondents: int) -> dict[str, Any]:
        withheld = (
            None
            if respondents >= self.min_respondents
            else f"{respondents} distinct respondents in this selection, fewer than the minimum of "
            f"{self.min_respondents}: nothing is shown, so that no comment points to its author"
        )
        return {
            "provider_department": query.provider,
            "service_category": query.service,
            "customer_department": query.customer,
            "campaign_id": query.campaign,
            "max_csat": query.max_csat,
            "since": query.window.since,
            "until": query.window.until,
            "respondents": respondents,
            "min_respondents": self.min_respondents,
            "withheld": withheld,
        }

    def comments(self, query: CommentQuery, limit: int = 100) -> CommentsAnswer:
        total, respondents = self.reader.counts(query)
        selection = self._selection(query, respondents)
        rows = [] if selection["withheld"] else [comment_row(r) for r in self.reader.rows(query, limit)]
        return CommentsAnswer(**selection, total=total, rows=rows)

    def themes(self, query: CommentQuery, top: int = 10) -> ThemesAnswer:
        from stream_processors.comments.themes import ScoredComment, rank_themes  # jieba loads on first use

        total, respondents = self.reader.counts(query)
        selection = self._selection(query, respondents)
        if selection["withheld"]:
            return ThemesAnswer(
                **selection, comments=total, low_comments=0, min_comments=self.min_comments, themes=[]
            )
        raw = self.reader.rows(query, MAX_THEME_COMMENTS)
        scored = [
            ScoredComment(
                comment_id=r["event_id"],
                text=r["comment"],
                low=is_low(r["event_type"], int(r["score"])),
            )
            for r in raw
        ]
        themes = rank_themes(scored, min_comments=self.min_comments, top=top)
        return ThemesAnswer(
            **selection,
            comments=len(raw),
            low_comments=sum(comment.low for comment in scored),
            min_comments=self.min_comments,
            themes=[
                ThemeRow(
                    term=theme.term,
                    comments=theme.comments,
                    low_comments=theme.low_comments,
                    low_share=theme.low_share,
                    log_odds_z=theme.log_odds_z,
                    examples=[shorten(example, 160) for example in theme.examples],
                )
                for theme in themes
            ],
        )
