"""``deptpulse actions add``: an improvement action as a canonical ``action.recorded`` event, checked
against the directory before anything is published."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo

from schemas.directory import Directory
from schemas.events import ActionRecorded, InvalidEvent, validate_event
from stream_processors.scorecard.service import check_department, check_service
from stream_processors.scorecard.windows import shown

SOURCE = "deptpulse-cli"


class ActionRefused(ValueError):
    """An action that cannot be recorded; the message says why."""


def action_event(
    directory: Directory,
    *,
    provider: str,
    title: str,
    started_on: date,
    now: datetime,
    service: str | None = None,
    customer: str | None = None,
    owner: str | None = None,
    event_id: str | None = None,
) -> ActionRecorded:
    """The event of an action the provider took. Raises UnknownDepartment, UnknownService or
    :class:`ActionRefused` (an empty title, a start after today in the provider's timezone, an owner
    that is not an e-mail address)."""
    check_department(directory, provider, "provider")
    check_service(directory, service, provider)
    check_department(directory, customer, "customer")
    if not title.strip():
        raise ActionRefused("the title is empty: say what was done, e.g. 'recruiting reorganised'")
    zone = directory.department(provider).calendar.timezone
    today = now.astimezone(ZoneInfo(zone)).date()
    if started_on > today:
        raise ActionRefused(
            f"the start {started_on.isoformat()} is in the future (today is {today.isoformat()} in "
            f"{zone}): record an action once it has started"
        )
    values = {
        "schema_version": 1,
        "event_type": "action.recorded",
        "event_id": event_id or f"action:{uuid.uuid4()}",
        "occurred_at": now,
        "source": SOURCE,
        "provider_department": provider,
        "customer_department": customer,
        "service_category": service,
        "title": title,
        "started_on": started_on,
        "owner": owner,
    }
    try:
        event = validate_event(values, directory)
    except InvalidEvent as exc:
        if exc.reason.startswith("owner"):
            raise ActionRefused(f"the owner {shown(owner or '')} is not an e-mail address") from None
        raise ActionRefused(exc.reason) from None
    assert isinstance(event, ActionRecorded)
    return event
