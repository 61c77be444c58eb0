"""``deptpulse digest``: for each department, read the week, compose the head's mail, send it.

Each department is one unit: what fails for one (its figures cannot be read, its head has no
valid address, the relay refuses or is unreachable) is recorded in its :class:`Outcome` with the
reason, and the others go on. Alertmanager being unreachable is not a failure: the mail says
"alerts unavailable" and the outcome carries a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage

from schemas.directory import Directory
from stream_processors.comments.api import CommentsSource
from stream_processors.comments.reading import CommentQuery, ThemesAnswer
from stream_processors.digest.alerts import ActiveAlert, AlertsUnavailable
from stream_processors.digest.compose import DigestContent, DigestMail, Unavailable, compose
from stream_processors.digest.mail import Delivery, address_problem, build_message
from stream_processors.digest.weeks import ReportWeek
from stream_processors.scorecard.report import ReportError, query_errors
from stream_processors.scorecard.service import ScorecardSource

AlertsReader = Callable[[str, str], Sequence[ActiveAlert]]  # (department, locale) -> alerts
Sender = Callable[[EmailMessage], Delivery]


@dataclass(frozen=True)
class Outcome:
    """What happened to one department's digest."""

    department: str
    to: str
    subject: str = ""
    sent: bool = False
    error: str = ""  # why the head did not get their mail; empty when they did (or on a dry run)
    warnings: tuple[str, ...] = ()
    message: EmailMessage | None = field(default=None, compare=False)


def scorecard_link(public_url: str, department: str) -> str:
    """The department's served page; a head signs in with their token or a proxy."""
    return f"{public_url.rstrip('/')}/scorecard/{department}"


def read_content(
    directory: Directory,
    department: str,
    week: ReportWeek,
    source: ScorecardSource,
    comments: CommentsSource,
    alerts: AlertsReader,
    link: str,
) -> DigestContent:
    """The week of one department; :class:`ReportError` when its figures cannot be read."""
    window = week.window()
    with query_errors():
        rows = source.scorecard(window, department)
        services = source.services(window, department)
    overall = next((row for row in rows if row.customer_department is None), None)
    if overall is not None and not any(
        (overall.requests_opened, overall.requests_opened_change, overall.csat_count, overall.nps_count,
         overall.sla_met + overall.sla_breached, overall.first_response_count)
    ):  # fmt: skip
        overall = None  # nothing this week nor the week before: say so instead of a row of zeros
    themes: ThemesAnswer | Unavailable
    try:
        with query_errors():
            themes = comments.themes(CommentQuery(department, window), top=1)
    except ReportError as exc:  # the figures still go out; the mail says why there are no themes
        themes = Unavailable(str(exc))
    locale = directory.department(department).locale
    active: Sequence[ActiveAlert] | Unavailable
    try:
        active = alerts(department, locale)
    except AlertsUnavailable as exc:
        active = Unavailable(str(exc))
    return DigestContent(
        directory=directory,
        department=department,
        week=week,
        overall=overall,
        services=services,
        themes=themes,
        alerts=active,
        link=link,
    )


def digest_department(
    directory: Directory,
    department: str,
    week: ReportWeek,
    *,
    source: ScorecardSource,
    comments: CommentsSource,
    alerts: AlertsReader,
    link: str,
    sender_address: str,
    now: datetime,
    send: Sender | None,
) -> Outcome:
    """One department's digest: composed, and sent unless ``send`` is None (a dry run)."""
    head = directory.department(department).head
    problem = address_problem(head.email or "")
    try:
        content = read_content(directory, department, week, source, comments, alerts, link)
    except ReportError as exc:
        return Outcome(department, head.email, error=f"cannot read the week's figures: {exc}")
    mail: DigestMail = compose(content)
    warnings = tuple(
        f"{what} unavailable: {part.reason}"
        for what, part in (("alerts", content.alerts), ("comments", content.themes))
        if isinstance(part, Unavailable)
    )
    if problem is not None:  # reported, never skipped silently: the head does not get the mail
        return Outcome(department, head.email, mail.subject, error=problem, warnings=warnings)
    message = build_message(mail, sender_address, head.email, now)
    if send is None:
        return Outcome(department, head.email, mail.subject, warnings=warnings, message=message)
    delivery = send(message)
    return Outcome(
        department,
        head.email,
        mail.subject,
        sent=delivery.delivered,
        error=delivery.reason if not delivery.delivered else "",
        warnings=warnings,
        message=message,
    )
