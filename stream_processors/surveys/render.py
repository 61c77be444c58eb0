"""Survey campaigns as a terminal table, CSV, a small HTML page, and the scorecard page's fragment
about a provider's latest campaign."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Final

from rich.table import Table
from rich.text import Text

from schemas.directory import Directory
from stream_processors.scorecard import formatting as fmt
from stream_processors.scorecard.export import csv_text, terminal_text
from stream_processors.scorecard.render_table import department_name
from stream_processors.scorecard.service import display_name, policy_of
from stream_processors.surveys.campaigns import CAMPAIGN_FIELDS, CampaignRow, latest_campaign

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


# --- HTML -------------------------------------------------------------------------------------------


def _rate_html(row: CampaignRow, directory: Directory) -> str:
    if row.invited is None:
        return f'<td class="short">{NOT_RECORDED}</td>'
    if row.data_problem:
        return f'<td class="down" title="{escape(row.data_problem)}">unknown: data problem</td>'
    if row.low_response:
        minimum = policy_of(directory, row.provider_department).survey_min_response_rate
        return (
            f'<td class="down">{escape(fmt.share(row.response_rate))} '
            f"<small>low response (below {escape(fmt.share(minimum))})</small></td>"
        )
    return f"<td>{escape(fmt.share(row.response_rate))}</td>"


def _campaign_cells(row: CampaignRow, directory: Directory) -> str:
    nps = (
        f'<td class="short">{escape(nps_text(row, directory))}</td>'
        if row.nps_insufficient
        else f"<td>{escape(nps_text(row, directory))}</td>"
    )
    verdict = row.change_verdict or ""
    change = f'<td class="{fmt.VERDICT_CLASS.get(verdict, "flat")}">{escape(change_text(row))}</td>'
    return (
        f"<td>{'' if row.invited is None else row.invited}</td>"
        f"<td>{row.answered} <small>({row.respondents} people)</small></td>"
        f"{_rate_html(row, directory)}{nps}{change}"
    )


_HEADS: Final = (
    "<th>invited</th><th>answered</th><th>response rate</th><th>NPS ± 95 %</th>"
    "<th>change vs previous campaign (95 % interval)</th>"
)


def render_campaign_html(rows: Sequence[CampaignRow], directory: Directory) -> str:
    """The scorecard page's fragment: the latest campaign of the provider of ``rows`` (one provider's
    rows, as ``campaigns(provider)`` returns them), overall and per customer; no script, escaped."""
    if not rows:
        return '<section class="campaign"><h2>Survey campaign</h2><p class="short">No survey campaign recorded.</p></section>'
    shown = latest_campaign(rows, rows[-1].provider_department)
    first = shown[0]
    lines = [
        '<section class="campaign">',
        f"<h2>Survey campaign {escape(first.campaign_id)}</h2>",
        f"<p>{_when(first.started)} – {_when(first.ended)}</p>",
        f"<table><thead><tr><th>customer</th>{_HEADS}</tr></thead><tbody>",
    ]
    for row in shown:
        name = (
            "overall" if row.customer_department is None else display_name(directory, row.customer_department)
        )
        lines.append(f"<tr><td>{escape(name)}</td>{_campaign_cells(row, directory)}</tr>")
    lines.append("</tbody></table>")
    problems = [row.data_problem for row in shown if row.data_problem]
    lines.extend(f'<p class="down">{escape(problem)}</p>' for problem in dict.fromkeys(problems))
    lines.append("</section>")
    return "\n".join(lines)


PAGE_CSS: Final = """
body { font: 14px/1.45 system-ui, "Noto Sans", "Noto Sans CJK SC", sans-serif; margin: 24px; color: #1d2330; }
table { border-collapse: collapse; } th, td { padding: 4px 10px; border-bottom: 1px solid #e3e6eb; text-align: left; }
tr.overall td { font-weight: 650; } small { color: #6b7385; }
.short { color: #8a91a1; } .up { color: #2f8a4c; } .down { color: #c2412f; } .flat { color: #6b7385; }
"""


def render_campaigns_page(rows: Sequence[CampaignRow], directory: Directory, generated_at: datetime) -> str:
    """``deptpulse surveys --format html``: one self-contained page with every campaign row."""
    body = [
        "<table><thead><tr><th>campaign</th><th>provider</th><th>customer</th><th>from</th><th>to</th>"
        f"{_HEADS}</tr></thead><tbody>"
    ]
    for row in rows:
        css = ' class="overall"' if row.customer_department is None else ""
        customer = (
            "overall" if row.customer_department is None else display_name(directory, row.customer_department)
        )
        body.append(
            f"<tr{css}><td>{escape(row.campaign_id)}</td>"
            f"<td>{escape(display_name(directory, row.provider_department))}</td><td>{escape(customer)}</td>"
            f"<td>{_when(row.started)}</td><td>{_when(row.ended)}</td>{_campaign_cells(row, directory)}</tr>"
        )
    body.append("</tbody></table>")
    problems = dict.fromkeys(f"{row.campaign_id}: {row.data_problem}" for row in rows if row.data_problem)
    body.extend(f'<p class="down">{escape(problem)}</p>' for problem in problems)
    if not rows:
        body = ['<p class="short">No survey campaign recorded.</p>']
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>deptpulse survey campaigns</title><style>{PAGE_CSS}</style></head><body>"
        f"<h1>Survey campaigns</h1><p><small>generated {generated_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC</small></p>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
