"""The weekly mail of one department head, composed from what was read: pure, no I/O.

The head reads it in their language (the directory's ``locale``): the headline figures of the week
with their change against the week before (below a policy's minimum sample only the count, never
a figure), the weakest service, the top theme of the comments (withheld below the privacy
minimum), the department's active alerts, and a link to the live page. Figures are written by
:mod:`stream_processors.scorecard.formatting`, as on the page and in the terminal table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from schemas.directory import AlertPolicy, Directory
from stream_processors.comments.reading import ThemesAnswer
from stream_processors.digest.alerts import ActiveAlert
from stream_processors.digest.weeks import ReportWeek
from stream_processors.scorecard import formatting as fmt
from stream_processors.scorecard.rows import ScorecardRow, weakest
from stream_processors.scorecard.service import display_name, service_name
from stream_processors.templating import template

Locale = Literal["en", "zh"]


@dataclass(frozen=True)
class Unavailable:
    """A part of the mail that could not be read this time, and why (said in the mail)."""

    reason: str


@dataclass(frozen=True)
class DigestContent:
    """Everything one head's mail says; ``overall`` is the provider's overall row of the week."""

    directory: Directory
    department: str
    week: ReportWeek
    overall: ScorecardRow | None  # None: nothing was recorded this week or the one before
    services: Sequence[ScorecardRow]  # the provider's overall row then one per service
    themes: ThemesAnswer | Unavailable
    alerts: Sequence[ActiveAlert] | Unavailable
    link: str


@dataclass(frozen=True)
class DigestMail:
    subject: str
    text: str
    html: str
    lang: str  # the HTML lang attribute: en or zh-Hans


# Every sentence in both languages; {placeholders} are filled with already formatted figures.
_TEXTS: Final[dict[str, dict[Locale, str]]] = {
    "subject": {"en": "{name} · weekly service scorecard {week}", "zh": "{name} · 每周服务记分卡 {week}"},
    "greeting": {"en": "Dear {head},", "zh": "{head}，您好："},
    "period": {
        "en": "How {name} served the other departments in week {week}, {start} to {end} ({zone}), "
        "compared with the week before.",
        "zh": "{name}在 {week}（{start} 至 {end}，{zone}）为其他部门提供服务的情况，与前一周相比。",
    },
    "figures": {"en": "The week's figures", "zh": "本周数据"},
    "figure": {"en": "Figure", "zh": "指标"},
    "this_week": {"en": "This week", "zh": "本周"},
    "vs": {"en": "Against the week before", "zh": "较前一周"},
    "requests": {"en": "Requests opened", "zh": "新建请求"},
    "requests_sub": {
        "en": "{resolved} resolved, {reopened} reopened",
        "zh": "已解决 {resolved}，重开 {reopened}",
    },
    "csat": {"en": "CSAT average", "zh": "CSAT 平均分"},
    "csat_sub": {"en": "{n} answers, target {target}", "zh": "{n} 个回答，目标 {target}"},
    "satisfied": {"en": "Satisfied (4-5)", "zh": "满意率（4-5 分）"},
    "satisfied_sub": {
        "en": "95 % interval {low} – {high}, target {target}",
        "zh": "95 % 区间 {low} – {high}，目标 {target}",
    },
    "sla": {"en": "SLA attainment", "zh": "SLA 达成率"},
    "sla_sub": {"en": "{met} of {n} met, target {target}", "zh": "{n} 个中达成 {met} 个，目标 {target}"},
    "first_response": {"en": "First response p90", "zh": "首次响应 p90"},
    "first_response_sub": {"en": "business time, {n} first responses", "zh": "工作时间，{n} 次首次响应"},
    "nps": {"en": "NPS", "zh": "NPS"},
    "nps_sub": {"en": "95 % margin, {n} answers", "zh": "95 % 误差范围，{n} 个回答"},
    "line": {
        "en": "{label}: {value} ({detail}), {change} against the week before",
        "zh": "{label}：{value}（{detail}），较前一周 {change}",
    },
    "line_unchanged": {
        "en": "{label}: {value} ({detail}); no figure the week before to compare with",
        "zh": "{label}：{value}（{detail}），前一周无可比数值",
    },
    "line_short": {"en": "{label}: {value}", "zh": "{label}：{value}"},
    "link_line": {"en": "The live page: {url}", "zh": "实时页面：{url}"},
    "short": {
        "en": "too few to show a figure: {n} (a figure is shown from {minimum})",
        "zh": "样本不足，不显示数值：{n} 个（至少 {minimum} 个才显示）",
    },
    "no_data": {
        "en": "Nothing was recorded for {name} this week or the week before.",
        "zh": "本周和前一周都没有{name}的记录。",
    },
    "weakest": {"en": "Weakest service", "zh": "最薄弱的服务"},
    "weakest_line": {
        "en": "{service}: satisfied {satisfied}, SLA attainment {sla}, {requests} requests opened.",
        "zh": "{service}：满意率 {satisfied}，SLA 达成率 {sla}，新建请求 {requests} 个。",
    },
    "no_weakest": {
        "en": "No service fell short of its targets this week (or had enough answers to tell).",
        "zh": "本周没有服务低于目标（或样本不足以判断）。",
    },
    "theme": {"en": "What customers say", "zh": "客户反馈"},
    "theme_line": {
        "en": "Top theme: “{term}”, in {comments} comments, mentioned by {low_share} of the low scores.",
        "zh": "主要话题：“{term}”，出现在 {comments} 条评论中，占低分评论的 {low_share}。",
    },
    "theme_quote": {"en": "For example: “{quote}”", "zh": "例如：“{quote}”"},
    "theme_withheld": {
        "en": "Withheld: {respondents} people commented this week, fewer than the minimum of {minimum}, "
        "so that no comment points to its author.",
        "zh": "不予显示：本周只有 {respondents} 人发表评论，少于最低 {minimum} 人，以免评论被追溯到作者。",
    },
    "theme_none": {
        "en": "{comments} comments, no recurring theme.",
        "zh": "{comments} 条评论，没有反复出现的话题。",
    },
    "theme_unavailable": {"en": "Comments unavailable: {reason}.", "zh": "评论暂不可用：{reason}。"},
    "alerts": {"en": "Active alerts", "zh": "当前告警"},
    "alerts_none": {"en": "No active alerts.", "zh": "当前没有告警。"},
    "alerts_unavailable": {
        "en": "Alerts unavailable: {reason}. See Alertmanager or the live page.",
        "zh": "告警暂不可用：{reason}。请查看 Alertmanager 或实时页面。",
    },
    "all_customers": {"en": "all customers", "zh": "所有客户部门"},
    "link": {"en": "The live page", "zh": "实时页面"},
    "footer": {
        "en": "Sent every Monday by deptpulse for {organisation}. Durations are in business time; "
        "a figure needs a minimum sample, below it only the count is given.",
        "zh": "deptpulse 每周一为 {organisation} 发送。时长按工作时间计算；样本不足时只显示数量，不显示数值。",
    },
}


def _t(key: str, locale: Locale, **values: object) -> str:
    return _TEXTS[key][locale].format(**values)


@dataclass(frozen=True)
class _Figure:
    label: str
    value: str  # the figure, or the short-sample sentence
    detail: str
    change: str
    short: bool = False


def _figures(row: ScorecardRow, policy: AlertPolicy, locale: Locale) -> list[_Figure]:
    def short(label: str, count: int, minimum: int) -> _Figure:
        return _Figure(label, _t("short", locale, n=count, minimum=minimum), "", fmt.DASH, short=True)

    sla_count = row.sla_met + row.sla_breached
    figures = [
        _Figure(
            _t("requests", locale),
            str(row.requests_opened),
            _t("requests_sub", locale, resolved=row.requests_resolved, reopened=row.requests_reopened),
            fmt.change(row.requests_opened_change, "count"),
        )
    ]
    if row.csat_insufficient:
        figures.append(short(_t("csat", locale), row.csat_count, policy.csat_min_sample))
        figures.append(short(_t("satisfied", locale), row.csat_count, policy.csat_min_sample))
    else:
        figures.append(
            _Figure(
                _t("csat", locale),
                fmt.score(row.csat_avg),
                _t("csat_sub", locale, n=row.csat_count, target=f"{policy.csat_target:.1f}"),
                fmt.change(row.csat_avg_change, "score"),
            )
        )
        figures.append(
            _Figure(
                _t("satisfied", locale),
                fmt.share(row.csat_satisfied_share),
                _t(
                    "satisfied_sub",
                    locale,
                    low=fmt.share(row.csat_satisfied_share_lower95),
                    high=fmt.share(row.csat_satisfied_share_upper95),
                    target=fmt.share(policy.satisfied_share_target),
                ),
                fmt.change(row.csat_satisfied_share_change, "share"),
            )
        )
    if row.sla_insufficient:
        figures.append(short(_t("sla", locale), sla_count, policy.sla_min_sample))
    else:
        figures.append(
            _Figure(
                _t("sla", locale),
                fmt.share(row.sla_attainment),
                _t(
                    "sla_sub",
                    locale,
                    met=row.sla_met,
                    n=sla_count,
                    target=fmt.share(policy.sla_attainment_target),
                ),
                fmt.change(row.sla_attainment_change, "share"),
            )
        )
    figures.append(
        _Figure(
            _t("first_response", locale),
            fmt.duration(row.first_response_p90_s),
            _t("first_response_sub", locale, n=row.first_response_count),
            fmt.change(row.first_response_p90_s_change, "duration"),
        )
    )
    if row.nps_insufficient:
        figures.append(short(_t("nps", locale), row.nps_count, policy.nps_min_sample))
    else:
        figures.append(
            _Figure(
                _t("nps", locale),
                fmt.nps(row.nps, row.nps_margin95),
                _t("nps_sub", locale, n=row.nps_count),
                fmt.change(row.nps_change, "nps"),
            )
        )
    return figures


def _weakest_line(content: DigestContent, policy: AlertPolicy, locale: Locale) -> str:
    services = [row for row in content.services if row.service_category is not None]
    row = weakest(services, policy)
    if row is None:
        return _t("no_weakest", locale)
    return _t(
        "weakest_line",
        locale,
        service=service_name(content.directory, row.service_category),
        satisfied=fmt.share(row.csat_satisfied_share),
        sla=fmt.share(row.sla_attainment),
        requests=row.requests_opened,
    )


def _theme_lines(themes: ThemesAnswer | Unavailable, locale: Locale) -> list[str]:
    if isinstance(themes, Unavailable):
        return [_t("theme_unavailable", locale, reason=themes.reason)]
    if themes.withheld:
        return [_t("theme_withheld", locale, respondents=themes.respondents, minimum=themes.min_respondents)]
    if not themes.themes:
        return [_t("theme_none", locale, comments=themes.comments)]
    top = themes.themes[0]
    lines = [
        _t(
            "theme_line",
            locale,
            term=top.term,
            comments=top.comments,
            low_share=f"{100 * top.low_share:.0f} %",
        )
    ]
    if top.examples:
        lines.append(_t("theme_quote", locale, quote=top.examples[0]))
    return lines


def _alert_lines(content: DigestContent, locale: Locale) -> list[str]:
    alerts = content.alerts
    if isinstance(alerts, Unavailable):
        return [_t("alerts_unavailable", locale, reason=alerts.reason)]
    if not alerts:
        return [_t("alerts_none", locale)]
    lines = []
    for alert in alerts:
        customer = (
            _t("all_customers", locale)
            if alert.customer_department in ("", "*")
            else display_name(content.directory, alert.customer_department)
        )
        lines.append(f"[{alert.severity}] {alert.name} ({customer}): {alert.summary}".rstrip(": "))
    return lines


@dataclass(frozen=True)
class _Parts:
    """The mail's sentences in the head's language, before they become text or HTML."""

    locale: Locale
    subject: str
    greeting: str
    period: str
    figures: list[_Figure]
    no_data: str
    headings: dict[str, str]
    weakest: str
    themes: list[str]
    alerts: list[str]
    link: str
    footer: str


def compose(content: DigestContent) -> DigestMail:
    """The head's mail: subject, plain text and HTML in the department's language."""
    directory = content.directory
    department = directory.department(content.department)
    locale: Locale = department.locale
    policy = directory.policy_for(department.id)
    week = content.week
    parts = _Parts(
        locale=locale,
        subject=_t("subject", locale, name=department.name, week=week.label),
        greeting=_t("greeting", locale, head=department.head.name),
        period=_t(
            "period",
            locale,
            name=department.name,
            week=week.label,
            start=week.starting.isoformat(),
            end=week.ending.isoformat(),
            zone=week.timezone,
        ),
        figures=_figures(content.overall, policy, locale) if content.overall is not None else [],
        no_data=_t("no_data", locale, name=department.name) if content.overall is None else "",
        headings={
            key: _t(key, locale)
            for key in ("figures", "figure", "this_week", "vs", "weakest", "theme", "alerts", "link")
        },
        weakest=_weakest_line(content, policy, locale),
        themes=_theme_lines(content.themes, locale),
        alerts=_alert_lines(content, locale),
        link=content.link,
        footer=_t("footer", locale, organisation=directory.organisation),
    )
    return DigestMail(parts.subject, _text(parts), _html(parts), "zh-Hans" if locale == "zh" else "en")


def _text(parts: _Parts) -> str:
    headings = parts.headings
    lines = [parts.greeting, "", parts.period, "", headings["figures"]]
    if parts.no_data:
        lines.append(f"  {parts.no_data}")
    for figure in parts.figures:
        key = "line_short" if figure.short else "line_unchanged" if figure.change == fmt.DASH else "line"
        values = {
            "label": figure.label,
            "value": figure.value,
            "detail": figure.detail,
            "change": figure.change,
        }
        lines.append("  " + _t(key, parts.locale, **values))
    lines += ["", headings["weakest"], f"  {parts.weakest}", "", headings["theme"]]
    lines += [f"  {line}" for line in parts.themes]
    lines += ["", headings["alerts"], *(f"  {line}" for line in parts.alerts)]
    lines += ["", _t("link_line", parts.locale, url=parts.link), "", "-- ", parts.footer, ""]
    return "\n".join(lines)


def _html(parts: _Parts) -> str:
    return template("digest/mail.html").render(parts=parts, lang="zh-Hans" if parts.locale == "zh" else "en")
