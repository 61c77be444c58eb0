"""Comments and themes as a terminal table, JSON or CSV (the HTML page has its own section)."""

from __future__ import annotations

from typing import Final

from rich.console import Group
from rich.table import Table
from rich.text import Text

from schemas.directory import Directory
from stream_processors.comments.reading import CommentsAnswer, ThemesAnswer
from stream_processors.scorecard.export import csv_text, terminal_text
from stream_processors.scorecard.render_table import department_name, service_label
from stream_processors.scorecard.windows import Window

FORMATS: Final = ("table", "json", "csv")
COMMENT_FIELDS: Final = (
    "occurred_at",
    "provider_department",
    "customer_department",
    "service_category",
    "event_type",
    "score",
    "low",
    "request_id",
    "question_id",
    "campaign_id",
    "comment",
)
THEME_FIELDS: Final = (
    "rank",
    "term",
    "comments",
    "low_comments",
    "low_share",
    "log_odds_z",
    "example_1",
    "example_2",
)


def _scope(answer: CommentsAnswer | ThemesAnswer, directory: Directory) -> str:
    parts = [department_name(directory, answer.provider_department)]
    if answer.service_category is not None:
        parts.append(f"service {service_label(directory, answer.service_category)}")
    if answer.customer_department is not None:
        parts.append(f"customer {department_name(directory, answer.customer_department)}")
    if answer.campaign_id is not None:
        parts.append(f"campaign {answer.campaign_id}")
    if answer.max_csat is not None:
        parts.append(f"CSAT ≤ {answer.max_csat}")
    window = Window(answer.since, answer.until)
    parts.append(f"{window.since:%Y-%m-%d %H:%M} – {window.until:%Y-%m-%d %H:%M} UTC")
    return " · ".join(parts)


def _score(event_type: str, score: int) -> str:
    return f"CSAT {score}" if event_type == "feedback.submitted" else f"NPS {score}"


def comments_table(answer: CommentsAnswer, directory: Directory) -> Group:
    title = (
        f"Comments: {_scope(answer, directory)} — {answer.total} comments by {answer.respondents} respondents"
    )
    if answer.withheld:
        return Group(Text(title, style="bold"), Text(f"Withheld: {answer.withheld}.", style="yellow"))
    table = Table(title=title, title_justify="left", header_style="bold", show_lines=True)
    for column in ("When (UTC)", "Customer", "Service", "Score", "Comment"):
        table.add_column(column, overflow="fold", no_wrap=column != "Comment")
    for row in answer.rows:
        table.add_row(
            f"{row.occurred_at:%Y-%m-%d %H:%M}",
            department_name(directory, row.customer_department),
            service_label(directory, row.service_category),
            Text(_score(row.event_type, row.score), style="red" if row.low else ""),
            Text(row.comment),  # Text: never parsed as rich markup
        )
    shown = f"{len(answer.rows)} newest of {answer.total} shown" if answer.total > len(answer.rows) else ""
    return Group(table, Text(shown, style="dim")) if shown else Group(table)


def themes_table(answer: ThemesAnswer, directory: Directory) -> Group:
    title = (
        f"Themes: {_scope(answer, directory)} — {answer.comments} comments "
        f"({answer.low_comments} with a low score: CSAT 1-3 or NPS 0-6)"
    )
    if answer.withheld:
        return Group(Text(title, style="bold"), Text(f"Withheld: {answer.withheld}.", style="yellow"))
    if not answer.themes:
        return Group(
            Text(title, style="bold"),
            Text(
                f"No theme: no term appears in at least {answer.min_comments} comments and more often in "
                "low scores than in high ones.",
                style="dim",
            ),
        )
    table = Table(title=title, title_justify="left", header_style="bold", show_lines=True)
    for column in ("#", "Theme", "Comments", "Of low scores", "Examples"):
        table.add_column(column, overflow="fold", no_wrap=column != "Examples")
    for rank, theme in enumerate(answer.themes, start=1):
        table.add_row(
            str(rank),
            Text(theme.term, style="bold"),
            str(theme.comments),
            f"{100 * theme.low_share:.0f} %",
            Text("\n".join(f"“{example}”" for example in theme.examples)),
        )
    return Group(table)


def as_text(renderable: Group, width: int = 160, styled: bool = False) -> str:
    return terminal_text(renderable, width, styled)


def comments_csv(answer: CommentsAnswer) -> str:
    return csv_text((row.model_dump(mode="json") for row in answer.rows), COMMENT_FIELDS)


def themes_csv(answer: ThemesAnswer) -> str:
    records = [
        {
            "rank": rank,
            "term": theme.term,
            "comments": theme.comments,
            "low_comments": theme.low_comments,
            "low_share": theme.low_share,
            "log_odds_z": theme.log_odds_z,
            "example_1": ([*theme.examples, ""])[0],
            "example_2": ([*theme.examples, "", ""])[1],
        }
        for rank, theme in enumerate(answer.themes, start=1)
    ]
    return csv_text(records, THEME_FIELDS)
