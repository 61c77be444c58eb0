"""Requests still waiting for their first reply after their first-response target has passed.

Elapsed time is measured on the provider's clock for that SLA: business seconds on the provider's
calendar for a business-clock target, wall seconds for a calendar-clock one, so a request opened
on Friday evening is not "late" over the weekend. A request whose status pauses its SLA's clock
(``Directory.sla_rule``: the SLA's pause statuses, else the provider's) is not counted. Earlier pauses are not subtracted (the request facts keep
the current status, not the pause history), so a request that waited on its customer before any
reply can be counted a little early: the gauge leans towards showing a backlog, never hiding one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from schemas.directory import Directory

from stream_processors.core.calendar import BusinessCalendar


class UnansweredRequest(NamedTuple):
    """An open request without a first response, as the request facts hold it."""

    provider_department: str
    customer_department: str
    service_category: str  # '' when none
    priority: str | None
    opened_at: datetime
    status: str


def past_first_response_target(
    requests: Iterable[UnansweredRequest], directory: Directory, now: datetime
) -> Counter[tuple[str, str]]:
    """(provider, customer) -> how many requests are past their first-response target at ``now``."""
    calendars: dict[str, BusinessCalendar] = {}
    backlog: Counter[tuple[str, str]] = Counter()
    for request in requests:
        if not directory.has_department(request.provider_department):
            continue
        rule = directory.sla_rule(
            request.provider_department,
            request.service_category or None,
            request.priority,
            request.customer_department,
        )
        if rule is None or request.status in rule.pause_statuses:
            continue
        target = rule.target
        if target.clock == "calendar":
            elapsed = (now - request.opened_at).total_seconds()
        else:
            calendar = calendars.get(request.provider_department)
            if calendar is None:
                department = directory.department(request.provider_department)
                calendar = calendars[request.provider_department] = BusinessCalendar.from_calendar(
                    department.calendar
                )
            elapsed = calendar.business_seconds(request.opened_at, now)
        if elapsed > target.first_response:
            backlog[(request.provider_department, request.customer_department)] += 1
    return backlog
