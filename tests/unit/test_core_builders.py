"""Builders of real schema events for the core's tests (unit and property), and checks of them.

Kept in a ``test_core_*`` module because those are the test files the core owns.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from schemas.directory import Directory, load_directory
from schemas.events import ActionRecorded, RequestEvent, SurveyAnswered, SurveyInvited, validate_event

pytestmark = pytest.mark.unit

Event = RequestEvent | SurveyAnswered
EXAMPLE_ORG = Path(__file__).parents[2] / "deploy" / "directory" / "example-org.yaml"
# Monday 2 March 2026, 09:00 in Berlin (CET, UTC+1): IT works 08:00-18:00 Mon-Thu, 08:00-16:00 Fri.
MONDAY_9 = datetime(2026, 3, 2, 8, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@cache
def example_directory() -> Directory:
    return load_directory(EXAMPLE_ORG)


def make_event(
    event_type: str,
    at: datetime,
    request_id: str = "r1",
    *,
    event_id: str | None = None,
    provider: str = "it",
    customer: str = "hr",
    service: str | None = "it.access",
    priority: str | None = "P2",
    **fields: Any,
) -> Event:
    """A validated event; the default event_id is derived from its content, so equal calls repeat it."""
    payload: dict[str, Any] = {
        "schema_version": 1,
        "event_type": event_type,
        "event_id": event_id or f"{request_id}/{event_type}/{at.isoformat()}/{sorted(fields.items())}",
        "occurred_at": at,
        "source": "test",
        "provider_department": provider,
        "customer_department": customer,
        "service_category": service,
        "priority": priority,
        **fields,
    }
    if event_type != "survey.answered":
        payload["request_id"] = request_id
    event = validate_event(payload)
    assert not isinstance(event, SurveyInvited | ActionRecorded), "the core's builders make aggregated events"
    return event


def make_request_event(event_type: str, at: datetime, request_id: str = "r1", **fields: Any) -> RequestEvent:
    """A validated event of a request (what a lifecycle applies): ``make_event`` without survey answers."""
    event = make_event(event_type, at, request_id, **fields)
    assert not isinstance(event, SurveyAnswered), "a survey answer is not an event of a request"
    return event


def numbered(events: list[Event], first_offset: int = 0) -> list[tuple[int, Event]]:
    """(offset, event) pairs as a partition delivers them."""
    return list(enumerate(events, start=first_offset))


def test_make_event_builds_the_real_models() -> None:
    opened = make_event("request.opened", MONDAY_9)
    survey = make_event("survey.answered", MONDAY_9, score=9)
    assert opened.event_type == "request.opened" and opened.occurred_at.tzinfo is not None
    assert isinstance(survey, SurveyAnswered) and survey.score == 9
    assert make_event("request.opened", MONDAY_9).event_id == opened.event_id


def test_example_directory_has_the_sla_the_tests_assume() -> None:
    target = example_directory().sla_target("it", "it.access", "P2")
    assert target is not None and (target.first_response, target.resolution, target.clock) == (1800, 28800, "business")
