"""A one-page scorecard for a department head: one self-contained HTML file.

Inline CSS and inline SVG drawn here in Python: no script, stylesheet, font or image is fetched,
so the file opens anywhere, offline, and prints. Times are shown in the provider department's own
timezone. Every text from the directory (names may be in any language, e.g. 人力资源部) is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Final
from zoneinfo import ZoneInfo

from schemas.directory import AlertPolicy, Department, Directory
from stream_processors.actions.measuring import ActionRow
from stream_processors.actions.render import action_markers, render_actions_html
from stream_processors.comments.reading import ThemesAnswer
from stream_processors.scorecard import formatting as fmt
from stream_processors.scorecard.questions import QuestionRow
from stream_processors.scorecard.rows import ScorecardRow, Timeseries, figure_evidence, weakest
from stream_processors.scorecard.service import display_name, policy_of, service_name
from stream_processors.scorecard.windows import Window, widened_note
from stream_processors.surveys.campaigns import CampaignRow
from stream_processors.surveys.render import render_campaign_html

EMPTY: Final = "#eef0f3"
INK: Final = "#1d2330"
MUTED: Final = "#6b7385"
LINE: Final = "#2f5fb3"

_CSS: Final = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f5f6f8; color: #1d2330;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Helvetica Neue", Arial,
        "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "WenQuanYi Micro Hei",
        sans-serif; }
main { max-width: 1220px; margin: 0 auto; padding: 28px 32px 40px; }
header h1 { font-size: 28px; margin: 0 0 2px; letter-spacing: -0.01em; }
header h1 small { font-size: 16px; color: #6b7385; font-weight: 500; margin-left: 10px; }
header p { margin: 2px 0; color: #6b7385; }
h2 { font-size: 17px; margin: 28px 0 10px; }
.cards { display: grid; grid-template-columns: repeat(6, 1fr); gap: 12px; margin-top: 20px; }
.card { background: #fff; border-radius: 10px; padding: 12px 14px; border-top: 4px solid #c5cad3;
  box-shadow: 0 1px 2px rgba(20, 30, 50, .08); }
.card.good { border-top-color: #3f9d5b; } .card.bad { border-top-color: #d2503f; }
.card.unclear { border-top-color: #e0b43c; }
.card .label { color: #6b7385; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 26px; font-weight: 650; margin: 2px 0; }
.card .sub { color: #6b7385; font-size: 12px; }
.card .chg { font-size: 12px; margin-top: 4px; }
.card .short { font-size: 15px; color: #6b7385; font-weight: 500; }
.up { color: #2f8a4c; } .down { color: #c2412f; } .flat { color: #6b7385; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.panel { background: #fff; border-radius: 10px; padding: 12px 14px 8px;
  box-shadow: 0 1px 2px rgba(20, 30, 50, .08); }
.panel h3 { margin: 0 0 4px; font-size: 14px; }
table { border-collapse: collapse; width: 100%; background: #fff; border-radius: 10px; overflow: hidden;
  box-shadow: 0 1px 2px rgba(20, 30, 50, .08); font-size: 12.5px; }
th, td { padding: 6px 9px; text-align: right; border-bottom: 1px solid #eceef2; vertical-align: top; }
td { white-space: nowrap; }
th { background: #f0f2f5; font-weight: 600; color: #3b4356; }
th:first-child, td:first-child { text-align: left; }
tr.overall td { font-weight: 650; background: #fafbfc; }
td .chg { display: block; color: #6b7385; font-size: 11.5px; font-weight: 400; }
td.short { color: #8a91a1; }
tr.weak td { background: #fdf0ee; }
.weakest { display: inline-block; margin-left: 6px; padding: 0 6px; border-radius: 8px; background: #d2503f;
  color: #fff; font-size: 11px; font-weight: 600; }
.id { color: #6b7385; font-size: 11px; }
.actions td, .campaign td { white-space: normal; }
.bars { display: inline-flex; align-items: flex-end; gap: 2px; height: 26px; }
.bar { display: inline-block; width: 7px; background: #2f5fb3; border-radius: 1px; }
td.term { font-weight: 650; text-align: left; }
td.quotes { white-space: normal; text-align: left; max-width: 640px; }
td.quotes q { display: block; color: #3b4356; margin: 1px 0; overflow-wrap: anywhere; }
.notes { color: #6b7385; font-size: 12px; margin-top: 26px; }
.notes li { margin: 2px 0; }
svg text { font-family: inherit; }
"""


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
    matrix_shared: bool = True  # False: the head's directory visibility is own; no matrix shown


# --- small helpers -----------------------------------------------------------------------------


def _name(directory: Directory, department: str) -> str:
    """The display name as escaped HTML, marked with its language (CJK glyph choice)."""
    if not directory.has_department(department):
        return escape(department)
    found = directory.department(department)
    lang = "zh-Hans" if found.locale == "zh" else "en"
    return f'<span lang="{lang}">{escape(found.name)}</span>'


def _nice_ceiling(value: float) -> float:
    """1, 2, 2.5 or 5 times a power of ten, at least ``value``."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= value:
            return factor * power
    return 10 * power


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone)


# --- charts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Series:
    title: str
    values: list[float | None]
    hollow: list[bool]  # below the minimum sample
    counts: list[int]
    y_min: float
    y_max: float
    target: float | None
    y_label: Callable[[float], str]


def line_chart(
    series: _Series,
    starts: Sequence[datetime],
    step: timedelta,
    zone: ZoneInfo,
    markers: Sequence[tuple[datetime, str]] = (),
) -> str:
    """An inline SVG line chart: gaps where there is no sample; points below the minimum sample are
    hollow and left unconnected, so a thin weekend does not draw a cliff. ``markers`` (moment,
    label) inside the window are drawn as dashed vertical lines: improvement actions."""
    width, height = 570, 200
    left, right, top, bottom = 52, 14, 12, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(series.values))
    span = series.y_max - series.y_min or 1.0

    def x(index: int) -> float:
        return left + (index + 0.5) * plot_w / n

    def y(value: float) -> float:
        clamped = min(series.y_max, max(series.y_min, value))
        return top + plot_h - (clamped - series.y_min) / span * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(series.title)}">'
    ]
    for tick in range(5):
        tick_value = series.y_min + span * tick / 4
        ty = y(tick_value)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#e6e8ec"/>')
        parts.append(
            f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end" font-size="11" fill="{MUTED}">'
            f"{escape(series.y_label(tick_value))}</text>"
        )
    if series.target is not None:
        ty = y(series.target)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#d2503f" '
            'stroke-dasharray="5 4" stroke-width="1.2"/>'
            f'<text x="{width - right - 2}" y="{ty - 4:.1f}" text-anchor="end" font-size="10.5" '
            f'fill="#d2503f">target {escape(series.y_label(series.target))}</text>'
        )
    # x labels: at most 7, evenly spread; dates for daily steps, times (and the date) below a day.
    labels = min(7, n)
    for k in range(labels):
        index = round(k * (n - 1) / max(1, labels - 1))
        local = _local(starts[index], zone)
        first = local.strftime("%b %d") if step >= timedelta(days=1) else local.strftime("%H:%M")
        second = "" if step >= timedelta(days=1) else local.strftime("%b %d")
        parts.append(
            f'<text x="{x(index):.1f}" y="{height - bottom + 15}" text-anchor="middle" font-size="11" '
            f'fill="{MUTED}">{first}</text>'
        )
        if second:
            parts.append(
                f'<text x="{x(index):.1f}" y="{height - bottom + 28}" text-anchor="middle" '
                f'font-size="10" fill="{MUTED}">{second}</text>'
            )
    segment: list[str] = []
    segments: list[list[str]] = []
    for index, maybe in enumerate(series.values):
        if maybe is None or series.hollow[index]:  # lines join only the points with enough samples
            if segment:
                segments.append(segment)
            segment = []
        else:
            segment.append(f"{x(index):.1f},{y(maybe):.1f}")
    if segment:
        segments.append(segment)
    for points in segments:
        if len(points) > 1:
            parts.append(
                f'<polyline points="{" ".join(points)}" fill="none" stroke="{LINE}" stroke-width="2" '
                'stroke-linejoin="round"/>'
            )
    for index, maybe in enumerate(series.values):
        if maybe is None:
            continue
        value = maybe
        fill = "#fff" if series.hollow[index] else LINE
        when = _local(starts[index], zone).strftime("%Y-%m-%d %H:%M")
        parts.append(
            f'<circle cx="{x(index):.1f}" cy="{y(value):.1f}" r="3.2" fill="{fill}" stroke="{LINE}" '
            f'stroke-width="1.5"><title>{when}: {escape(series.y_label(value))} '
            f"(n={series.counts[index]})</title></circle>"
        )
    if starts:
        chart_start, chart_end = starts[0], starts[-1] + step
        for moment, label in markers:
            if chart_start <= moment < chart_end:
                mx = left + (moment - chart_start) / (chart_end - chart_start) * plot_w
                parts.append(
                    f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{top}" y2="{top + plot_h}" stroke="#7a4fb5" '
                    f'stroke-dasharray="3 3" stroke-width="1.4"><title>{escape(label)}</title></line>'
                    f'<text x="{mx + 3:.1f}" y="{top + 10}" font-size="10" fill="#7a4fb5">action</text>'
                )
    if not any(value is not None for value in series.values):
        parts.append(
            f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
            f'font-size="13" fill="{MUTED}">no samples in this window</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _charts(report: HtmlReport, zone: ZoneInfo) -> str:
    policy = policy_of(report.directory, report.provider)
    points = report.timeseries.points
    starts = [point.start for point in points]
    step = timedelta(seconds=report.timeseries.step_seconds)
    first_response_h = [
        None if p.first_response_p90_s is None else p.first_response_p90_s / 3600 for p in points
    ]
    peak = max((v for v in first_response_h if v is not None), default=1.0)
    markers = [
        (marker.at, f"{marker.started_on.isoformat()}: {marker.title}") for marker in action_markers(report.actions)
    ]
    charts = [
        _Series(
            "CSAT average (1-5)",
            [p.csat_avg for p in points],
            [p.csat_insufficient for p in points],
            [p.csat_count for p in points],
            1.0,
            5.0,
            policy.csat_target,
            lambda v: f"{v:.1f}",
        ),
        _Series(
            "Satisfied share (CSAT 4-5)",
            [p.csat_satisfied_share for p in points],
            [p.csat_insufficient for p in points],
            [p.csat_count for p in points],
            0.0,
            1.0,
            policy.satisfied_share_target,
            lambda v: f"{100 * v:.0f} %",
        ),
        _Series(
            "SLA attainment",
            [p.sla_attainment for p in points],
            [p.sla_insufficient for p in points],
            [p.sla_met + p.sla_breached for p in points],
            0.0,
            1.0,
            policy.sla_attainment_target,
            lambda v: f"{100 * v:.0f} %",
        ),
        _Series(
            "First response p90 (business hours)",
            first_response_h,
            # Durations have no minimum of their own; the SLA's (same requests) marks thin points.
            [p.first_response_count < policy.sla_min_sample for p in points],
            [p.first_response_count for p in points],
            0.0,
            _nice_ceiling(peak * 1.1),
            None,
            lambda v: f"{v:.1f} h" if v < 10 else f"{v:.0f} h",
        ),
    ]
    panels = "".join(
        f'<div class="panel"><h3>{escape(series.title)}</h3>{line_chart(series, starts, step, zone, markers)}</div>'
        for series in charts
    )
    return f'<div class="grid2">{panels}</div>'


def heatmap(
    report: HtmlReport,
    title: str,
    figure: Callable[[ScorecardRow], tuple[float | None, int, bool]],
    colour: Callable[[ScorecardRow, AlertPolicy], str],
    label: Callable[[float], str],
) -> str:
    """Providers (rows) x customers (columns) as an SVG grid; the report's provider outlined."""
    directory = report.directory
    by_pair = {(row.provider_department, row.customer_department): row for row in report.matrix}
    ids = directory.department_ids()
    extra = sorted({d for pair in by_pair for d in pair if d is not None and d not in ids})
    departments = ids + extra
    cell_w, cell_h, label_w, header_h = 84, 36, 170, 96
    width = label_w + cell_w * len(departments) + 130  # room for the last slanted customer name
    height = header_h + cell_h * len(departments) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'role="img" aria-label="{escape(title)}">',
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f2f3f6"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#dadde3" stroke-width="3"/></pattern></defs>',
        f'<text x="{label_w - 8}" y="{header_h - 8}" text-anchor="end" font-size="10.5" fill="{MUTED}">'
        "provider ↓ · customer →</text>",
    ]
    for column, customer in enumerate(departments):
        cx = label_w + column * cell_w + cell_w / 2
        parts.append(
            f'<text transform="translate({cx:.1f},{header_h - 8}) rotate(-35)" font-size="11.5" '
            f'fill="{INK}">{escape(display_name(directory, customer))}</text>'
        )
    for row_index, provider in enumerate(departments):
        ry = header_h + row_index * cell_h
        mine = provider == report.provider
        parts.append(
            f'<text x="{label_w - 8}" y="{ry + cell_h / 2 + 4:.1f}" text-anchor="end" font-size="12" '
            f'font-weight="{700 if mine else 400}" fill="{INK}">{escape(display_name(directory, provider))}</text>'
        )
        policy = policy_of(directory, provider)
        for column, customer in enumerate(departments):
            cx = label_w + column * cell_w
            row = by_pair.get((provider, customer))
            fill, text, sub = EMPTY, "", ""
            if row is not None:
                value, count, short = figure(row)
                if short or value is None:
                    fill, text, sub = "url(#hatch)", "", f"n={count}"
                else:
                    fill, text, sub = colour(row, policy), label(value), f"n={count}"
            tip = f"{display_name(directory, provider)} → {display_name(directory, customer)}"
            parts.append(
                f"<g><title>{escape(tip)}: {escape(text or 'not enough samples')} {escape(sub)}</title>"
                f'<rect x="{cx + 1}" y="{ry + 1}" width="{cell_w - 2}" height="{cell_h - 2}" rx="3" '
                f'fill="{fill}"/>'
            )
            if text:
                parts.append(
                    f'<text x="{cx + cell_w / 2:.1f}" y="{ry + 15}" text-anchor="middle" font-size="12" '
                    f'font-weight="600" fill="{INK}">{escape(text)}</text>'
                )
            if sub:
                parts.append(
                    f'<text x="{cx + cell_w / 2:.1f}" y="{ry + (27 if text else 21)}" text-anchor="middle" '
                    f'font-size="10" fill="#3b4356">{escape(sub)}</text>'
                )
            parts.append("</g>")
        if mine:
            parts.append(
                f'<rect x="{label_w}" y="{ry}" width="{cell_w * len(departments)}" height="{cell_h}" '
                'fill="none" stroke="#1d2330" stroke-width="2" rx="4"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


EVIDENCE_FILL: Final = {"below": "#e06c5c", "above": "#62b57a", "unclear": "#f6dd85", "none": EMPTY}


def _evidence_fill(name: str) -> Callable[[ScorecardRow, AlertPolicy], str]:
    """A cell's colour from the evidence of its figure against the target (the alerts' rule)."""
    return lambda row, policy: EVIDENCE_FILL[figure_evidence(row, policy)[name]]


def _matrices(report: HtmlReport) -> str:
    if not report.matrix_shared:
        return (
            '<p class="notes">The organisation matrix is not shared with this department '
            "(its visibility in the directory is <code>own</code>).</p>"
        )
    csat = heatmap(
        report,
        "CSAT average by provider and customer",
        lambda row: (row.csat_avg, row.csat_count, row.csat_insufficient),
        _evidence_fill("csat_avg"),
        lambda value: f"{value:.2f}",
    )
    sla = heatmap(
        report,
        "SLA attainment by provider and customer",
        lambda row: (row.sla_attainment, row.sla_met + row.sla_breached, row.sla_insufficient),
        _evidence_fill("sla_attainment"),
        lambda value: f"{100 * value:.0f} %",
    )
    return (
        '<div class="panel"><h3>CSAT average, every provider × customer</h3>'
        f"{csat}</div>"
        '<div class="panel" style="margin-top:12px"><h3>SLA attainment, every provider × customer</h3>'
        f"{sla}</div>"
    )


# --- cards and table ---------------------------------------------------------------------------


def _trend(change: float | None, kind: str, better: str = "higher") -> str:
    """'▲ +0.12 vs previous', green when it is an improvement (``better``: higher, lower or neither)."""
    if change is None:
        return '<span class="flat">no comparison</span>'
    text = fmt.change(change, kind)
    if text[0] not in ("+", fmt.MINUS):  # rounds to zero
        css, arrow = "flat", "■"
    else:
        arrow = "▲" if change > 0 else "▼"
        css = "flat" if better == "neither" else "up" if (change > 0) == (better == "higher") else "down"
    return f'<span class="{css}">{arrow} {escape(text)}</span> vs previous'


def _card(label: str, value: str, sub: str, trend: str, status: str = "") -> str:
    return (
        f'<div class="card {status}"><div class="label">{escape(label)}</div>'
        f'<div class="value">{value}</div><div class="sub">{sub}</div><div class="chg">{trend}</div></div>'
    )


def _short_value(count: int, minimum: int) -> tuple[str, str]:
    return f'<span class="short">n={count}, too few</span>', f"figure shown from {minimum} answers"


_CARD_STATUS: Final = {"below": "bad", "above": "good", "unclear": "unclear", "none": ""}


def _cards(row: ScorecardRow, policy: AlertPolicy) -> str:
    # Red only when even the upper end of the 95 % interval is below target (as the alerts), green
    # when the lower end reaches it, neutral while the interval straddles it.
    seen = figure_evidence(row, policy)

    def status(name: str) -> str:
        return _CARD_STATUS[seen[name]]

    cards = [
        _card(
            "Requests opened",
            str(row.requests_opened),
            f"{row.requests_resolved} resolved, {row.requests_reopened} reopened",
            _trend(row.requests_opened_change, "count", better="neither"),
        )
    ]
    if row.csat_insufficient:
        value, sub = _short_value(row.csat_count, policy.csat_min_sample)
        cards.append(_card("CSAT average", value, sub, _trend(None, "score")))
        cards.append(_card("Satisfied (4-5)", value, sub, _trend(None, "share")))
    else:
        cards.append(
            _card(
                "CSAT average",
                fmt.score(row.csat_avg),
                f"{row.csat_count} answers · target {policy.csat_target:.1f}",
                _trend(row.csat_avg_change, "score"),
                status("csat_avg"),
            )
        )
        cards.append(
            _card(
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
        value, sub = _short_value(sla_count, policy.sla_min_sample)
        cards.append(_card("SLA attainment", value, sub, _trend(None, "share")))
    else:
        cards.append(
            _card(
                "SLA attainment",
                fmt.share(row.sla_attainment),
                f"{row.sla_met} of {sla_count} met · target {fmt.share(policy.sla_attainment_target)}",
                _trend(row.sla_attainment_change, "share"),
                status("sla_attainment"),
            )
        )
    cards.append(
        _card(
            "First response p90",
            fmt.duration(row.first_response_p90_s),
            f"p50 {fmt.duration(row.first_response_p50_s)} · business time",
            _trend(row.first_response_p90_s_change, "duration", better="lower"),
        )
    )
    if row.nps_insufficient:
        value, sub = _short_value(row.nps_count, policy.nps_min_sample)
        cards.append(_card("NPS", value, sub, _trend(None, "nps")))
    else:
        cards.append(
            _card(
                "NPS",
                escape(fmt.nps(row.nps, None)),
                f"± {row.nps_margin95 or 0:.0f} (95 %) · {row.nps_count} answers",
                _trend(row.nps_change, "nps"),
                status("nps"),
            )
        )
    return f'<div class="cards">{"".join(cards)}</div>'


def _cell(cell: fmt.Cell) -> str:
    """A cell on the page: the change in its own span after the figure, a short sample greyed."""
    if cell.short:
        return f'<td class="short">{escape(cell.text)}</td>'
    suffix = f'<span class="chg">{escape(cell.change)}</span>' if cell.change != fmt.DASH else ""
    return f"<td>{escape(cell.text)}{suffix}</td>"


_FIGURE_HEADS: Final = (
    "<th>Opened</th><th>Resolved</th><th>Reopened</th>"
    "<th>1st response p50 / p90</th><th>Resolution p50 / p90</th><th>SLA met</th>"
    "<th>CSAT avg</th><th>Satisfied (≥ lower 95 %)</th><th>NPS ± 95 %</th>"
)


def _service_table(report: HtmlReport) -> str:
    """The provider's services, the one carrying most of the shortfall against its targets marked."""
    directory = report.directory
    policy = policy_of(directory, report.provider)
    services = [row for row in report.services if row.service_category is not None]
    if not services:
        return '<p class="notes">No events in this window or the one before.</p>'
    weak = weakest(services, policy)
    body = []
    for row in report.services:
        overall = row.service_category is None
        if overall:
            name = "All services"
        else:
            service = row.service_category or ""
            name = f"{escape(service_name(directory, service))}"
            if service and service_name(directory, service) != service:
                name += f'<br><span class="id">{escape(service)}</span>'
            if row is weak:
                name += ' <span class="weakest">weakest</span>'
        cells = [f"<td>{name}</td>", *(_cell(cell) for cell in fmt.row_cells(row, policy))]
        css = "overall" if overall else "weak" if row is weak else ""
        body.append(f'<tr class="{css}">{"".join(cells)}</tr>')
    note = (
        f'<p class="notes">Weakest: the service furthest below the targets, counted in answers and '
        f"requests short of them (satisfied share {fmt.share(policy.satisfied_share_target)}, SLA "
        f"{fmt.share(policy.sla_attainment_target)}); only figures with enough samples count.</p>"
        if weak is not None
        else '<p class="notes">No service falls short of the targets with enough samples to tell.</p>'
    )
    return (
        f"<table><thead><tr><th>Service</th>{_FIGURE_HEADS}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>{note}"
    )


def _questions_table(report: HtmlReport) -> str:
    rows = [row for row in report.questions if row.provider_department == report.provider]
    if not rows:
        return '<p class="notes">No survey answers in this window.</p>'
    policy = policy_of(report.directory, report.provider)
    body = []
    for row in rows:
        service = escape(service_name(report.directory, row.service_category)) if row.service_category else ""
        bars = "".join(
            f'<span class="bar" style="height:{3 + 22 * count / max(1, max(row.distribution)):.0f}px" '
            f'title="{score}: {count}"></span>'
            for score, count in enumerate(row.distribution)
        )
        if row.insufficient:
            figures = f'<td class="short" colspan="2">{escape(fmt.insufficient(row.answers, policy.nps_min_sample))}</td>'
        else:
            figures = (
                f"<td>{fmt.score(row.mean, 1)} [{fmt.score(row.mean_low95, 1)}–{fmt.score(row.mean_high95, 1)}]"
                f'<span class="chg">{escape(fmt.change(row.mean_change, "score"))}</span></td>'
                f"<td>{escape(fmt.nps(row.nps, row.nps_margin95))}</td>"
            )
        body.append(
            f"<tr><td>{escape(row.question_id or 'other')}</td><td>{service}</td><td>{row.answers}</td>"
            f'<td><span class="bars">{bars}</span></td>{figures}</tr>'
        )
    return (
        "<table><thead><tr><th>Question</th><th>Service</th><th>Answers</th><th>Scores 0 … 10</th>"
        "<th>Mean [95 %]</th><th>NPS ± 95 %</th></tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _themes(report: HtmlReport) -> str:
    """What customers say: themes with two quotes each (only with --with-comments)."""
    answer = report.themes
    if answer is None:
        return ""
    head = '<h2 id="what-customers-say">What customers say</h2>'
    if answer.withheld:
        return f'{head}<p class="notes">Withheld: {escape(answer.withheld)}.</p>'
    if not answer.themes:
        return (
            f'{head}<p class="notes">{answer.comments} comments, no theme: no term appears in at least '
            f"{answer.min_comments} comments and more often in low scores than in high ones.</p>"
        )
    items = []
    for theme in answer.themes:
        quotes = "".join(f"<q>{escape(example)}</q>" for example in theme.examples)
        items.append(
            f'<tr><td class="term">{escape(theme.term)}</td><td>{theme.comments}</td>'
            f'<td>{100 * theme.low_share:.0f} %</td><td class="quotes">{quotes}</td></tr>'
        )
    return (
        f"{head}<table><thead><tr><th>Theme</th><th>Comments</th><th>Of low scores</th>"
        f"<th>Examples</th></tr></thead><tbody>{''.join(items)}</tbody></table>"
        f'<p class="notes">{answer.comments} comments by {answer.respondents} respondents, {answer.low_comments} '
        "with a low score (CSAT 1-3, NPS 0-6); themes ranked by how much more often low scores mention them "
        "(log-odds with an informative Dirichlet prior). Comments are redacted before they are stored.</p>"
    )


def _table(report: HtmlReport) -> str:
    directory = report.directory
    head = f"<tr><th>Customer</th>{_FIGURE_HEADS}</tr>"
    body = []
    for row in report.rows:
        policy = policy_of(directory, row.provider_department)
        overall = row.customer_department is None
        name = "All customers" if overall else _name(directory, row.customer_department or "")
        cells = [f"<td>{name}</td>", *(_cell(cell) for cell in fmt.row_cells(row, policy))]
        body.append(f'<tr class="{"overall" if overall else ""}">{"".join(cells)}</tr>')
    return f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"


# --- the page ----------------------------------------------------------------------------------


def render_html(report: HtmlReport) -> str:
    """The page, as one string of HTML."""
    directory = report.directory
    department: Department = directory.department(report.provider)
    policy = directory.policy_for(report.provider)
    zone = ZoneInfo(department.calendar.timezone)
    window, previous = report.window, report.window.previous()
    overall = next((row for row in report.rows if row.customer_department == report.customer), report.rows[0])
    when = (
        f"{_local(window.since, zone):%Y-%m-%d %H:%M} – {_local(window.until, zone):%Y-%m-%d %H:%M} "
        f"({escape(department.calendar.timezone)})"
    )
    scope = (
        "every customer department"
        if report.customer is None
        else f"customer {_name(directory, report.customer)}"
    )
    title = f"{department.name} · service scorecard"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<header>
<h1>{_name(directory, report.provider)}<small>service scorecard · {escape(directory.organisation)}</small></h1>
<p>{when}, compared with the {escape(_length(window.length))} before
({_local(previous.since, zone):%Y-%m-%d %H:%M} – {_local(previous.until, zone):%Y-%m-%d %H:%M})</p>
<p>For {escape(department.head.name)} · {scope} · generated {_local(report.generated_at, zone):%Y-%m-%d %H:%M}</p>{_widened(window)}
</header>
{_cards(overall, policy)}
<h2>Trends over the window ({_STEP_NAMES.get(report.timeseries.step_seconds, "")} points)</h2>
{_charts(report, zone)}
<h2>By customer department</h2>
{_table(report)}
<h2 id="by-service">By service</h2>
{_service_table(report)}
<h2 id="survey-questions">Survey questions</h2>
{_questions_table(report)}
{_themes(report)}
{render_campaign_html(report.campaigns, directory)}
{render_actions_html(report.actions, directory)}
<h2>How every department serves every other</h2>
{_matrices(report)}
<ul class="notes">
<li>Figures count events inside the window; a figure whose sample is below the minimum
(CSAT {policy.csat_min_sample}, SLA {policy.sla_min_sample}, NPS {policy.nps_min_sample} answers)
is not shown, only its count; in the charts such points are hollow and unconnected (response times:
below {policy.sla_min_sample} samples), in the matrices hatched.</li>
<li>Response and resolution times are business time on the provider's calendar, read from histograms
(within 6 % of the exact value). Satisfied share: CSAT 4 or 5, with its Wilson 95 % lower bound.
NPS: promoters minus detractors, ± its 95 % margin of error.</li>
<li>Changes (▲▼) compare with the previous window of the same length.</li>
</ul>
</main>
</body>
</html>
"""


def _widened(window: Window) -> str:
    note = widened_note(window)
    return f'<p class="widened">Note: {escape(note)}.</p>' if note else ""


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
