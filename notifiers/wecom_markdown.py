"""A WeCom group robot's markdown message from one Alertmanager webhook notification. Pure.

Chinese for departments whose locale is zh (the rules' ``summary_zh``/``description_zh``, falling back to
English), English otherwise; the same wording as the e-mail templates (deploy/alertmanager/templates).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from schemas.directory import Directory

MAX_CONTENT_BYTES = 4096  # the robot refuses longer markdown content
OVERALL_CUSTOMER = "*"  # the provider's overall row

_WORDS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "page": "urgent",
        "ticket": "action needed",
        "info": "for information",
        "resolved": "resolved",
        "all customers": "all internal customers",
        "for": " for ",
        "since": "since",
        "dashboard": "dashboard",
        "runbook": "runbook",
        "resolved at": "resolved",
        "alerts": "{count} alerts",
        "cut": "… (truncated: {count} more alert(s) not shown)",
        "cut one": "… (truncated)",
    },
    "zh": {
        "page": "紧急",
        "ticket": "待处理",
        "info": "通知",
        "resolved": "已恢复",
        "all customers": "所有内部客户部门",
        "provider": "服务部门：",
        "customer": "客户部门：",
        "since": "开始于",
        "dashboard": "仪表盘",
        "runbook": "处理手册",
        "resolved at": "恢复于",
        "alerts": "共 {count} 条告警",
        "cut": "……（已截断：另有 {count} 条告警未显示）",
        "cut one": "……（内容过长，已截断）",
    },
}
# WeCom's markdown colours: info green, comment grey, warning orange.
_COLOUR = {"page": "warning", "ticket": "warning", "info": "comment", "resolved": "info"}
_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$")
# WeCom's markdown is a subset (headings, bold, links, inline code, quotes, <font>) and documents no
# escapes: CommonMark's backslash escapes for the inline marks, an entity for the tag opener.
_ESCAPES = str.maketrans({"\\": "\\\\", "*": "\\*", "`": "\\`", "[": "\\[", "]": "\\]", "<": "&lt;"})


def escape(text: str) -> str:
    """Text from labels and annotations as literal markdown: on one line, marks escaped."""
    return " ".join(text.split()).translate(_ESCAPES)


def link(label: str, url: str) -> str:
    """A markdown link, or nothing for a URL that is not http(s)."""
    if urlsplit(url).scheme not in ("http", "https"):
        return ""
    return f"[{label}]({quote(url, safe=':/?#&=%+,;@!$~.-_')})"


def render(notification: Mapping[str, Any], directory: Directory, department_id: str) -> str:
    """The markdown content for ``department_id``'s head, at most ``MAX_CONTENT_BYTES`` long."""
    locale = directory.department(department_id).locale
    words = _WORDS[locale]
    alerts: Sequence[Mapping[str, Any]] = notification.get("alerts") or []
    firing = [alert for alert in alerts if alert.get("status") != "resolved"]
    resolved = [alert for alert in alerts if alert.get("status") == "resolved"]
    blocks = [_header(firing, alerts, directory, department_id, locale)]
    blocks += [_firing(alert, directory, locale) for alert in firing]
    # One block per alert after the header, so that the truncation mark counts alerts.
    resolved_blocks = [_resolved(alert, locale) for alert in resolved]
    if resolved_blocks:
        resolved_blocks[0] = f'<font color="info">{words["resolved"]}</font>\n\n{resolved_blocks[0]}'
    blocks += resolved_blocks
    return fit(blocks, locale)


def fit(blocks: Sequence[str], locale: str, limit: int = MAX_CONTENT_BYTES) -> str:
    """Blocks (a header, then one per alert) joined by blank lines; whole blocks while they fit, then a
    mark saying how many were cut."""
    words = _WORDS[locale]
    content = "\n\n".join(blocks)
    if len(content.encode()) <= limit:
        return content
    kept: list[str] = []
    for index, block in enumerate(blocks):
        mark = words["cut"].format(count=len(blocks) - index)
        candidate = "\n\n".join([*kept, block])
        if len(f"{candidate}\n\n{mark}".encode()) > limit:
            if kept:
                return "\n\n".join([*kept, mark])
            # Not even the first block fits: cut it at a character, not inside an escape.
            mark = words["cut one"]
            room = limit - len(f"\n\n{mark}".encode())
            cut = block.encode()[:room].decode(errors="ignore")
            cut = re.sub(r"&[a-z]*$", "", cut)
            if (len(cut) - len(cut.rstrip("\\"))) % 2:  # a backslash whose escaped mark was cut off
                cut = cut[:-1]
            return f"{cut}\n\n{mark}"
        kept.append(block)
    return "\n\n".join(kept)  # unreachable: the whole content was too long


def _header(
    firing: Sequence[Mapping[str, Any]],
    alerts: Sequence[Mapping[str, Any]],
    directory: Directory,
    department_id: str,
    locale: str,
) -> str:
    """The state (the first firing alert's severity, or resolved), the department, how many alerts."""
    words = _WORDS[locale]
    state = _label(firing[0], "severity") if firing else "resolved"
    state = state if state in _COLOUR else "ticket"
    count = f" · {words['alerts'].format(count=len(alerts))}" if len(alerts) > 1 else ""
    department = escape(directory.department(department_id).name)
    return f'### <font color="{_COLOUR[state]}">deptpulse · {words[state]}</font> · {department}{count}'


def _firing(alert: Mapping[str, Any], directory: Directory, locale: str) -> str:
    words = _WORDS[locale]
    lines = [
        f"**{escape(_annotation(alert, 'summary', locale))}**",
        f"> {_context(alert, directory, locale)}",
    ]
    description = _annotation(alert, "description", locale)
    if description:
        lines.append(f"> {escape(description)}")
    links = [
        link(words[name], str(alert.get("annotations", {}).get(f"{name}_url", "")))
        for name in ("dashboard", "runbook")
    ]
    if any(links):
        lines.append("> " + " · ".join(text for text in links if text))
    return "\n".join(lines)


def _resolved(alert: Mapping[str, Any], locale: str) -> str:
    words = _WORDS[locale]
    summary = escape(_annotation(alert, "summary", locale))
    ended = _time(str(alert.get("endsAt", "")))
    if not ended:
        return f"✓ {summary}"
    return (
        f"✓ {summary}（{words['resolved at']} {ended}）"
        if locale == "zh"
        else f"✓ {summary} ({words['resolved at']} {ended})"
    )


def _context(alert: Mapping[str, Any], directory: Directory, locale: str) -> str:
    """Provider, customer, severity and start, as the e-mails say it."""
    words = _WORDS[locale]
    provider, customer = _label(alert, "provider_department"), _label(alert, "customer_department")
    severity = _label(alert, "severity")
    parts = []
    customer_name = words["all customers"] if customer == OVERALL_CUSTOMER else _name(directory, customer)
    if locale == "zh":
        parts += [f"{words['provider']}{_name(directory, provider)}"] if provider else []
        parts += [f"{words['customer']}{customer_name}"] if customer else []
    elif provider:
        parts.append(_name(directory, provider) + (f"{words['for']}{customer_name}" if customer else ""))
    parts.append(words.get(severity, escape(severity)) if severity else "")
    started = _time(str(alert.get("startsAt", "")))
    parts += [f"{words['since']} {started}"] if started else []
    return " · ".join(part for part in parts if part)


def _name(directory: Directory, department_id: str) -> str:
    name = (
        directory.department(department_id).name if directory.has_department(department_id) else department_id
    )
    return escape(name)


def _label(alert: Mapping[str, Any], name: str) -> str:
    return str(alert.get("labels", {}).get(name, ""))


def _annotation(alert: Mapping[str, Any], name: str, locale: str) -> str:
    annotations = alert.get("annotations", {})
    text = annotations.get(f"{name}_zh") if locale == "zh" else None
    return str(text or annotations.get(name, ""))


def _time(value: str) -> str:
    """Alertmanager's RFC 3339 time as 'YYYY-MM-DD HH:MM UTC'; empty for the zero time or nonsense."""
    match = _TIME.match(value)
    if not match or value.startswith("0001-"):
        return ""
    zone = "+00:00" if match.group(2) == "Z" else match.group(2)
    moment = datetime.fromisoformat(match.group(1) + zone).astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")
