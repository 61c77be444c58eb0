"""The template adapter works as documented, so a copy of it starts from working code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from producers.sources import ADAPTERS, template
from producers.sources.common import AdapterError
from schemas.directory import load_directory

DIRECTORY = load_directory(Path(__file__).resolve().parents[1] / "fixtures" / "sources" / "directory.yaml")
PAYLOAD = {
    "event": "created",
    "event_id": "e-981",
    "at": "2026-03-02T09:15:00+01:00",
    "ticket": {"id": "42", "queue": "IT", "requester_department": "Finance", "priority": "high"},
}

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("change", "event_type", "extra"),
    [
        ({}, "request.opened", {}),
        ({"event": "commented", "by_agent": True}, "request.responded", {}),
        (
            {"event": "status_changed", "status": "waiting for customer"},
            "request.status_changed",
            {"status": "waiting_on_customer"},
        ),
        ({"event": "resolved"}, "request.resolved", {}),
        ({"event": "reopened"}, "request.reopened", {}),
        ({"event": "closed"}, "request.closed", {}),
        (
            {"event": "rated", "rating": 4, "comment": "quick"},
            "feedback.submitted",
            {"csat": 4, "comment": "quick"},
        ),
    ],
)
def test_template_maps_each_kind(change: dict[str, Any], event_type: str, extra: dict[str, Any]) -> None:
    [event] = template.adapt(PAYLOAD | change, DIRECTORY)
    assert event.model_dump(
        include={
            "event_type",
            "event_id",
            "request_id",
            "provider_department",
            "customer_department",
            "priority",
            *extra,
        }
    ) == {
        "event_type": event_type,
        "event_id": f"template:42:{event_type}:e-981",
        "request_id": "template:42",
        "provider_department": "it",
        "customer_department": "finance",
        "priority": "P2",
        **extra,
    }


def test_template_skips_customer_comments_and_unknown_events() -> None:
    assert template.adapt(PAYLOAD | {"event": "commented"}, DIRECTORY) == []
    assert template.adapt(PAYLOAD | {"event": "tagged"}, DIRECTORY) == []


def test_template_rejects_a_payload_without_a_queue() -> None:
    payload = PAYLOAD | {"ticket": {"id": "42", "requester_department": "Finance"}}
    with pytest.raises(
        AdapterError, match=r"cannot tell the provider department: the payload has no 'ticket.queue'"
    ):
        template.adapt(payload, DIRECTORY)


def test_the_template_is_not_a_registered_source() -> None:
    assert sorted(ADAPTERS) == ["hr-survey", "jira-sm", "servicenow", "zendesk"]
