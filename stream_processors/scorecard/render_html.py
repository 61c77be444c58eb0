"""A one-page scorecard for a department head: one self-contained HTML file.

Inline CSS and inline SVG: no script, stylesheet, font or image is fetched, so the file opens
anywhere, offline, and prints. Times are shown in the provider department's own timezone. Python
decides what the page says (figures, chart geometry); the templates in
``stream_processors/templates/scorecard/`` say how, with autoescaping (see
:mod:`stream_processors.templating`), so text from the directory (e.g. 人力资源部) is escaped once.

To add a section: write ``templates/scorecard/_<section>.html`` (it sees ``report``, the
:class:`HtmlReport`, and the values :func:`_context` computes) and include it in
``templates/scorecard/page.html`` where it belongs; a value the template cannot simply read from
``report`` is computed in a function here and added to :func:`_context` under the section's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple
from zoneinfo import ZoneInfo

from schemas.directory import AlertPolicy, Directory
from stream_processors.actions.measuring import ActionRow
from stream_processors.actions.render import action_markers, actions_context
from stream_processors.comments.reading import ThemesAnswer
from stream_processors.core.at_risk import AtRiskRequest
from stream_processors.scorecard import formatting as fmt
from stream_processors.scorecard.charts import (
    Heatmap,
    LineChart,
    Series,
    evidence_fill,
    heatmap,
    line_chart,
    nice_ceiling,
)
from stream_processors.scorecard.questions import QuestionRow
from stream_processors.scorecard.rows import ScorecardRow, Timeseries, figure_evidence, weakest
from stream_processors.scorecard.service import policy_of, service_name
from stream_processors.scorecard.windows import Window, widened_note
from stream_processors.surveys.campaigns import CampaignRow
from stream_processors.surveys.render import campaign_context
from stream_processors.templating import template

_STEP_NAMES: Final = {300: "5-minute", 3600: "hourly", 86400: "daily"}


@dataclass(frozen=True)
class HtmlReport:
    """Everything the page shows; ``rows`` is the provider's overall row then its customers'."""

    directory: Directory
    provider: str
    customer: str | None
    window: Window
    rows: Sequence[ScorecardRow]
    matrix: Sequence[ScorecardRow]
    timeseries: Timeseries
    generated_at: datetime
    services: Sequence[ScorecardRow] = ()  # the provider's overall row then one per service
    questions: Sequence[QuestionRow] = ()  # survey questions, lowest mean first
    themes: ThemesAnswer | None = None  # only with --with-comments
    campaigns: Sequence[CampaignRow] = ()  # the provider's survey campaigns (the latest is shown)
    actions: Sequence[ActionRow] = ()  # the provider's improvement actions with their effect
    at_risk: Sequence[AtRiskRequest] = ()  # the provider's open requests about to breach a target
    matrix_shared: bool = True  # False: the head's directory visibility is own; no matrix shown


def _charts(report: HtmlReport, zone: ZoneInfo) -> list[LineChart]:
    policy = policy_of(report.directory, report.provider)
    points = report.timeseries.points
    starts = [point.start for point in points]
    step = timedelta(seconds=report.timeseries.step_seconds)
    first_response_h = [
        None if p.first_response_p90_s is None else p.first_response_p90_s / 3600 for p in points
    ]
    peak = max((v for v in first_response_h if v is not None), default=1.0)
    markers = [
        (marker.at, f"{marker.started_on.isoformat()}: {marker.title}")
        for marker in action_markers(report.actions)
    ]
    charts = [
        Series(
            "CSAT average (1-5)",
            [p.csat_avg for p in points],
            [p.csat_insufficient for p in points],
            [p.csat_count for p in points],
            1.0,
            5.0,
            policy.csat_target,
            lambda v: f"{v:.1f}",
        ),
        Series(
            "Satisfied share (CSAT 4-5)",
            [p.csat_satisfied_share for p in points],
            [p.csat_insufficient for p in points],
            [p.csat_count for p in points],
            0.0,
            1.0,
            policy.satisfied_share_target,
            lambda v: f"{100 * v:.0f} %",
        ),
        Series(
            "SLA attainment",
            [p.sla_attainment for p in points],
            [p.sla_insufficient for p in points],
            [p.sla_met + p.sla_breached for p in points],
            0.0,
            1.0,
            policy.sla_attainment_target,
            lambda v: f"{100 * v:.0f} %",
        ),
        Series(
            "First response p90 (business hours)",
            first_response_h,
            # Durations have no minimum of their own; the SLA's (same requests) marks thin points.
            [p.first_response_count < policy.sla_min_sample for p in points],
            [p.first_response_count for p in points],
            0.0,
            nice_ceiling(peak * 1.1),
            None,
            lambda v: f"{v:.1f} h" if v < 10 else f"{v:.0f} h",
        ),
    ]
    return [line_chart(series, starts, step, zone, markers) for series in charts]


def _matrices(report: HtmlReport) -> list[Heatmap]:
    if not report.matrix_shared:
        return []
    csat = heatmap(
        report.directory,
        report.matrix,
        report.provider,
        "CSAT average by provider and customer",
        lambda row: (row.csat_avg, row.csat_count, row.csat_insufficient),
        evidence_fill("csat_avg"),
        lambda value: f"{value:.2f}",
    )
    sla = heatmap(
        report.directory,
        report.matrix,
        report.provider,
        "SLA attainment by provider and customer",
        lambda row: (row.sla_attainment, row.sla_met + row.sla_breached, row.sla_insufficient),
        evidence_fill("sla_attainment"),
        lambda value: f"{100 * value:.0f} %",
    )
    return [csat, sla]


# --- cards ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trend:
    """'▲ +0.12 vs previous': ``css`` up when it is an improvement, down when it is not."""

    css: str
    arrow: str
    text: str


def _trend(change: float | None, kind: str, better: str = "higher") -> Trend | None:
    """The change against the previous window; None: no comparison. ``better``: higher, lower or neither."""
    if change is None:
        return None
    text = fmt.change(change, kind)
    if text[0] not in ("+", fmt.MINUS):  # rounds to zero
        return Trend("flat", "■", text)
    arrow = "▲" if change > 0 else "▼"
    css = "flat" if better == "neither" else "up" if (change > 0) == (better == "higher") else "down"
    return Trend(css, arrow, text)


@dataclass(frozen=True)
class Card:
    label: str
    value: str
    sub: str
    trend: Trend | None
    status: str = ""  # good, bad, unclear or ""
    short: int | None = None  # the count, when the sample is below the minimum: no figure


_CARD_STATUS: Final = {"below": "bad", "above": "good", "unclear": "unclear", "none": ""}


def _cards(row: ScorecardRow, policy: AlertPolicy) -> list[Card]:
    # Red only when even the upper end of the 95 % interval is below target (as the alerts), green
    # when the lower end reaches it, neutral while the interval straddles it.
    seen = figure_evidence(row, policy)

    def status(name: str) -> str:
        return _CARD_STATUS[seen[name]]

    def short(label: str, count: int, minimum: int) -> Card:
        return Card(label, "", f"figure shown from {minimum} answers", None, short=count)

    cards = [
        Card(
            "Requests opened",
            str(row.requests_opened),
            f"{row.requests_resolved} resolved, {row.requests_reopened} reopened",
            _trend(row.requests_opened_change, "count", better="neither"),
        )
    ]
    if row.csat_insufficient:
        cards.append(short("CSAT average", row.csat_count, policy.csat_min_sample))
        cards.append(short("Satisfied (4-5)", row.csat_count, policy.csat_min_sample))
    else:
        cards.append(
            Card(
                "CSAT average",
                fmt.score(row.csat_avg),
                f"{row.csat_count} answers · target {policy.csat_target:.1f}",
                _trend(row.csat_avg_change, "score"),
                status("csat_avg"),
            )
        )
        cards.append(
            Card(
                "Satisfied (4-5)",
                fmt.share(row.csat_satisfied_share),
                f"95 %: {fmt.share(row.csat_satisfied_share_lower95)} – "
                f"{fmt.share(row.csat_satisfied_share_upper95)} · target {fmt.share(policy.satisfied_share_target)}",
                _trend(row.csat_satisfied_share_change, "share"),
                status("satisfied_share"),
            )
        )
    sla_count = row.sla_met + row.sla_breached
    if row.sla_insufficient:
        cards.append(short("SLA attainment", sla_count, policy.sla_min_sample))
    else:
        cards.append(
            Card(
                "SLA attainment",
                fmt.share(row.sla_attainment),
                f"{row.sla_met} of {sla_count} met · target {fmt.share(policy.sla_attainment_target)}",
                _trend(row.sla_attainment_change, "share"),
                status("sla_attainment"),
            )
        )
    cards.append(
        Card(
            "First response p90",
            fmt.duration(row.first_response_p90_s),
            f"p50 {fmt.duration(row.first_response_p50_s)} · business time",
            _trend(row.first_response_p90_s_change, "duration", better="lower"),
        )
    )
    if row.nps_insufficient:
        cards.append(short("NPS", row.nps_count, policy.nps_min_sample))
    else:
        cards.append(
            Card(
                "NPS",
                fmt.nps(row.nps, None),
                f"± {row.nps_margin95 or 0:.0f} (95 %) · {row.nps_count} answers",
                _trend(row.nps_change, "nps"),
                status("nps"),
            )
        )
    return cards


# --- tables --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceLine:
    row: ScorecardRow
    name: str  # the service's display name; "" for the overall row
    service_id: str  # shown under the name when it differs from it
    weakest: bool
    cells: list[fmt.Cell]


def _service_lines(report: HtmlReport) -> tuple[list[ServiceLine], bool]:
    """The provider's services, the one carrying most of the shortfall against its targets marked;
    and whether one is."""
    directory = report.directory
    policy = policy_of(directory, report.provider)
    services = [row for row in report.services if row.service_category is not None]
    if not services:
        return [], False
    weak = weakest(services, policy)
    lines = []
    for row in report.services:
        service = row.service_category or ""
        name = service_name(directory, service) if row.service_category is not None else ""
        lines.append(
            ServiceLine(
                row,
                name,
                service if service and name != service else "",
                row is weak,
                fmt.row_cells(row, policy),
            )
        )
    return lines, weak is not None


@dataclass(frozen=True)
class QuestionLine:
    row: QuestionRow
    service: str
    bars: list[tuple[int, int, float]]  # (score, count, height in px)
    short: str  # the count below the minimum; "" when the figures are shown


def _question_lines(report: HtmlReport) -> list[QuestionLine]:
    policy = policy_of(report.directory, report.provider)
    return [
        QuestionLine(
            row,
            service_name(report.directory, row.service_category) if row.service_category else "",
            [
                (score, count, 3 + 22 * count / max(1, max(row.distribution)))
                for score, count in enumerate(row.distribution)
            ],
            fmt.insufficient(row.answers, policy.nps_min_sample) if row.insufficient else "",
        )
        for row in report.questions
        if row.provider_department == report.provider
    ]


def _customer_lines(report: HtmlReport) -> list[tuple[ScorecardRow, list[fmt.Cell]]]:
    directory = report.directory
    return [(row, fmt.row_cells(row, policy_of(directory, row.provider_department))) for row in report.rows]


# --- the page ------------------------------------------------------------------------------------


def _length(length: timedelta) -> str:
    seconds = int(length.total_seconds())
    if seconds % 86400 == 0:
        days = seconds // 86400
        return "day" if days == 1 else f"{days} days"
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "hour" if hours == 1 else f"{hours} hours"
    minutes = seconds // 60
    return f"{minutes} minutes"


class AtRiskLine(NamedTuple):
    """One request at risk as the page shows it."""

    request_id: str
    customer: str  # department id
    service: str  # display name ("other" for none)
    target: str  # "first response" or "resolution"
    left: str
    target_time: str
    clock: str  # "business hours" or "calendar time"


def _at_risk_lines(report: HtmlReport) -> list[AtRiskLine]:
    return [
        AtRiskLine(
            risk.request_id,
            risk.customer_department,
            service_name(report.directory, risk.service_category or None),
            risk.sla.replace("_", " "),
            fmt.duration(risk.left_s),
            fmt.duration(risk.target_s),
            "business hours" if risk.business_clock else "calendar time",
        )
        for risk in report.at_risk
    ]


def _context(report: HtmlReport) -> dict[str, Any]:
    """What the templates show besides ``report`` itself, computed once."""
    directory = report.directory
    department = directory.department(report.provider)
    policy = directory.policy_for(report.provider)
    zone = ZoneInfo(department.calendar.timezone)
    window, previous = report.window, report.window.previous()
    overall = next((row for row in report.rows if row.customer_department == report.customer), report.rows[0])
    service_lines, service_weak = _service_lines(report)

    def local(moment: datetime) -> str:
        return f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"

    return {
        "report": report,
        "fmt": fmt,
        "directory": directory,
        "department": department,
        "policy": policy,
        "title": f"{department.name} · service scorecard",
        "window_text": f"{local(window.since)} – {local(window.until)}",
        "previous_text": f"{local(previous.since)} – {local(previous.until)}",
        "length": _length(window.length),
        "generated": local(report.generated_at),
        "widened": widened_note(window),
        "cards": _cards(overall, policy),
        "step_name": _STEP_NAMES.get(report.timeseries.step_seconds, ""),
        "charts": _charts(report, zone),
        "customer_lines": _customer_lines(report),
        "service_lines": service_lines,
        "service_weak": service_weak,
        "question_lines": _question_lines(report),
        "campaign": campaign_context(report.campaigns, directory),
        "actions": actions_context(report.actions, directory),
        "at_risk_lines": _at_risk_lines(report),
        "at_risk_share": directory.policy_for(report.provider).sla_at_risk_share,
        "matrices": _matrices(report),
    }


def render_html(report: HtmlReport) -> str:
    """The page, as one string of HTML."""
    return template("scorecard/page.html").render(_context(report))
