"""Survey campaigns as a terminal table, CSV, a small HTML page, and the scorecard page's fragment
about a provider's latest campaign."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from rich.table import Table
from rich.text import Text

from schemas.directory import Directory
from stream_processors.scorecard import formatting as fmt
from stream_processors.scorecard.export import csv_text, terminal_text
from stream_processors.scorecard.render_table import department_name
from stream_processors.scorecard.service import display_name, policy_of
from stream_processors.surveys.campaigns import CAMPAIGN_FIELDS, CampaignRow, latest_campaign
from stream_processors.templating import template

NOT_RECORDED: Final = "not recorded"


def _customer(directory: Directory, row: CampaignRow) -> str:
    return (
        "overall" if row.customer_department is None else department_name(directory, row.customer_department)
    )


def _when(moment: datetime | None) -> str:
    return fmt.DASH if moment is None else f"{moment:%Y-%m-%d}"


def rate_text(row: CampaignRow) -> str:
    """'42.0 %', '25.0 % (low)', 'not recorded', or the data problem in short."""
    if row.invited is None:
        return NOT_RECORDED
    if row.data_problem:
        return "unknown: data problem"
    return fmt.share(row.response_rate) + (" (low)" if row.low_response else "")


def nps_text(row: CampaignRow, directory: Directory) -> str:
    if row.nps_insufficient:
        return fmt.insufficient(row.answered, policy_of(directory, row.provider_department).nps_min_sample)
    return fmt.nps(row.nps, row.nps_margin95)


def change_text(row: CampaignRow) -> str:
    """'+12 (+3 to +21) vs 2025-q4: improved', or what stands instead."""
    if row.previous_campaign_id is None:
        return "first campaign"
    if row.nps_change is None:
        return f"vs {row.previous_campaign_id}: {row.change_verdict}"
    return (
        f"{fmt.change(row.nps_change, 'nps')} ({fmt.interval(row.nps_change_low, row.nps_change_high, 'nps')}) "
        f"vs {row.previous_campaign_id}: {row.change_verdict}"
    )


# --- terminal and CSV -----------------------------------------------------------------------------


def campaigns_table(rows: Sequence[CampaignRow], directory: Directory) -> Table:
    """A line per campaign and customer; each campaign's overall line in bold."""
    table = Table(
        title="deptpulse survey campaigns (NPS ± 95 % margin; change against the provider's previous "
        "campaign with its 95 % interval)",
        title_justify="left",
    )
    for head in ("campaign", "provider", "customer", "from", "to", "invited", "answered"):
        table.add_column(head, justify="right" if head in ("invited", "answered") else "left")
    for head in ("response rate", "NPS", "change vs previous", "themes", "note"):
        table.add_column(head)
    for row in rows:
        overall = row.customer_department is None
        verdict = row.change_verdict or ""
        table.add_row(  # user text as Text: never read as rich markup
            Text(row.campaign_id),
            Text(department_name(directory, row.provider_department)),
            Text(_customer(directory, row)),
            _when(row.started),
            _when(row.ended),
            NOT_RECORDED if row.invited is None else str(row.invited),
            f"{row.answered} ({row.respondents} people)",
            Text(rate_text(row), style="red" if row.low_response else ""),
            Text(nps_text(row, directory), style="dim" if row.nps_insufficient else ""),
            Text(change_text(row), style=fmt.VERDICT_STYLE.get(verdict, "")),
            Text(", ".join(row.themes)),
            Text(row.data_problem or ""),
            style="bold" if overall else None,
        )
    return table


def campaigns_text(
    rows: Sequence[CampaignRow], directory: Directory, width: int = 200, styled: bool = False
) -> str:
    if not rows:
        return "no survey campaign recorded (answers name their campaign in campaign_id)\n"
    return terminal_text(campaigns_table(rows, directory), width, styled)


def campaigns_csv(rows: Sequence[CampaignRow]) -> str:
    return csv_text((row.model_dump(mode="json") for row in rows), CAMPAIGN_FIELDS)


# --- HTML: templates/surveys/ ----------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignLine:
    """A campaign row as the HTML shows it (templates/surveys/_cells.html)."""

    row: CampaignRow
    provider: str
    customer: str  # "overall" or the customer's display name
    started: str
    ended: str
    rate: str  # the response rate, or "not recorded"
    minimum: str  # the policy's minimum response rate
    nps: str
    change_css: str
    change: str


def _line(row: CampaignRow, directory: Directory) -> CampaignLine:
    customer = (
        "overall" if row.customer_department is None else display_name(directory, row.customer_department)
    )
    policy = policy_of(directory, row.provider_department)
    return CampaignLine(
        row,
        display_name(directory, row.provider_department),
        customer,
        _when(row.started),
        _when(row.ended),
        NOT_RECORDED if row.invited is None else fmt.share(row.response_rate),
        fmt.share(policy.survey_min_response_rate),
        nps_text(row, directory),
        fmt.VERDICT_CLASS.get(row.change_verdict or "", "flat"),
        change_text(row),
    )


@dataclass(frozen=True)
class CampaignSection:
    """The scorecard page's latest campaign of a provider (templates/surveys/campaign.html)."""

    campaign_id: str
    started: str
    ended: str
    lines: list[CampaignLine]
    problems: list[str]


def campaign_context(rows: Sequence[CampaignRow], directory: Directory) -> CampaignSection | None:
    """The latest campaign of the provider of ``rows`` (one provider's rows, as ``campaigns(provider)``
    returns them), overall and per customer; None without a campaign."""
    if not rows:
        return None
    shown = latest_campaign(rows, rows[-1].provider_department)
    first = shown[0]
    problems = list(dict.fromkeys(row.data_problem for row in shown if row.data_problem))
    return CampaignSection(
        first.campaign_id,
        _when(first.started),
        _when(first.ended),
        [_line(row, directory) for row in shown],
        problems,
    )


def render_campaign_html(rows: Sequence[CampaignRow], directory: Directory) -> str:
    """The scorecard page's fragment about the latest campaign (see :func:`campaign_context`)."""
    return template("surveys/campaign.html").render(campaign=campaign_context(rows, directory))


def render_campaigns_page(rows: Sequence[CampaignRow], directory: Directory, generated_at: datetime) -> str:
    """``deptpulse surveys --format html``: one self-contained page with every campaign row."""
    problems = dict.fromkeys(f"{row.campaign_id}: {row.data_problem}" for row in rows if row.data_problem)
    return template("surveys/page.html").render(
        lines=[_line(row, directory) for row in rows],
        problems=list(problems),
        generated=f"{generated_at.astimezone(UTC):%Y-%m-%d %H:%M}",
    )
