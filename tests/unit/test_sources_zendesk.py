"""Zendesk adapter, on the project's own fixtures shaped like the documented webhook, ZIS and rating payloads.

The vendors' published payloads run in test_sources_vendor_payloads.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from producers.sources import zendesk
from producers.sources.common import AdapterError
from schemas.directory import UnmappedValue, load_directory
from schemas.events import event_to_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
DIRECTORY = load_directory(FIXTURES / "directory.yaml")

pytestmark = pytest.mark.unit

TICKET_4711 = {
    "schema_version": 1,
    "source": "zendesk",
    "request_id": "zendesk:4711",
    "provider_department": "it",  # group 360007335272
    "customer_department": "finance",  # organisation 360010000001
    "priority": "P2",
    "attributes": {"vendor_priority": "high", "ticket_type": "INCIDENT", "channel": "web_form"},
}


def load(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / "zendesk" / name).read_text(encoding="utf-8"))
    return payload


def adapt(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(event_to_json(event)) for event in zendesk.adapt(payload, DIRECTORY)]


def test_ticket_created() -> None:
    assert adapt(load("ticket_created.json")) == [
        TICKET_4711
        | {
            "event_type": "request.opened",
            "event_id": "zendesk:4711:request.opened:01JNQ8W4Y1M7V2K3R5T8C0D4E6",
            "occurred_at": "2026-03-02T08:15:00Z",
        }
    ]


def test_staff_comment_is_a_response() -> None:
    assert adapt(load("ticket_comment_added.json")) == [
        TICKET_4711
        | {
            "event_type": "request.responded",
            "event_id": "zendesk:4711:request.responded:01JNQ9ZZ7X6W5V4T3S2R1Q0P9N",
            "occurred_at": "2026-03-02T08:47:31Z",
        }
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"is_public": False},  # an internal note
        {"author": {"id": "360400000101", "is_staff": False, "name": "Jonas Weber"}},  # the requester
        {
            "author": {"id": "360400000101", "is_staff": True, "name": "Jonas Weber"}
        },  # staff, but the requester
    ],
)
def test_comments_that_are_not_responses(change: dict[str, Any]) -> None:
    payload = load("ticket_comment_added.json")
    payload["event"]["comment"] |= change
    assert adapt(payload) == []


@pytest.mark.parametrize(
    ("previous", "current", "event_type", "status"),
    [
        ("OPEN", "PENDING", "request.status_changed", "waiting_on_customer"),
        ("PENDING", "OPEN", "request.status_changed", "in_progress"),
        ("OPEN", "HOLD", "request.status_changed", "hold"),
        ("OPEN", "SOLVED", "request.resolved", None),
        ("SOLVED", "CLOSED", "request.closed", None),
        ("SOLVED", "OPEN", "request.reopened", None),
    ],
)
def test_status_changes(previous: str, current: str, event_type: str, status: str | None) -> None:
    payload = load("ticket_status_changed.json")
    payload["event"] |= {"previous": previous, "current": current}
    [event] = adapt(payload)
    assert (event["event_type"], event.get("status")) == (event_type, status)
    assert event["event_id"] == f"zendesk:4711:{event_type}:01JNQAB2C3D4E5F6G7H8J9K0M1"


def test_zis_ticket_event() -> None:
    assert adapt(load("zis_status_changed_solved.json")) == [
        TICKET_4711
        | {
            "event_type": "request.resolved",
            "event_id": "zendesk:4711:request.resolved:D4E5F60718293A4B5C6D7E8F90A1B2C3:1",
            "occurred_at": "2026-03-03T15:20:00Z",
            "attributes": {"vendor_priority": "high", "ticket_type": "incident", "channel": "web"},
        }
    ]


def test_eventbridge_wraps_the_same_ticket_event() -> None:
    zis = load("zis_status_changed_solved.json")
    bridge = {"version": "0", "detail-type": "Support Ticket: Status Changed", "detail": zis["input"]}
    assert adapt(bridge) == adapt(zis)


def test_bad_rating_is_csat_1() -> None:
    assert adapt(load("satisfaction_rating_bad.json")) == [
        {
            "schema_version": 1,
            "source": "zendesk",
            "event_type": "feedback.submitted",
            "event_id": "zendesk:4711:feedback.submitted:360077123456",
            "occurred_at": "2026-03-03T18:02:44Z",
            "request_id": "zendesk:4711",
            "provider_department": "it",
            "customer_department": "finance",  # by the requester: ratings carry no organisation
            "csat": 1,
            "comment": "Took two days for a reboot tip.",
            "attributes": {"reason": "Issue took too long to resolve"},
        }
    ]


@pytest.mark.parametrize(
    ("score", "csat"), [("good", 5), ("good_with_comment", 5), ("bad", 1), (4, 4), ("3", 3)]
)
def test_rating_scores(score: object, csat: int) -> None:
    payload = load("satisfaction_rating_bad.json")
    payload["satisfaction_rating"]["score"] = score
    assert adapt(payload)[0]["csat"] == csat


@pytest.mark.parametrize("score", ["offered", "unoffered"])
def test_ratings_not_yet_given_measure_nothing(score: str) -> None:
    payload = load("satisfaction_rating_bad.json")
    payload["satisfaction_rating"]["score"] = score
    assert adapt(payload) == []


@pytest.mark.parametrize(
    ("score", "reason"), [("meh", "invalid score 'meh'"), (9, "csat: Input should be less")]
)
def test_invalid_rating_scores(score: object, reason: str) -> None:
    payload = load("satisfaction_rating_bad.json")
    payload["satisfaction_rating"]["score"] = score
    with pytest.raises(AdapterError, match=reason):
        zendesk.adapt(payload, DIRECTORY)


def test_without_an_organisation_the_requester_is_the_customer() -> None:
    payload = load("ticket_created.json")
    payload["detail"]["organization_id"] = None
    assert adapt(payload)[0]["customer_department"] == "finance"


def test_unmapped_group_names_the_value_and_the_mapping() -> None:
    payload = load("ticket_created.json")
    payload["detail"]["group_id"] = "360000999999"
    with pytest.raises(
        UnmappedValue, match=r"^no department mapping for zendesk field 'group' value '360000999999'$"
    ):
        zendesk.adapt(payload, DIRECTORY)


def test_missing_group_is_named() -> None:
    payload = load("ticket_created.json")
    payload["detail"]["group_id"] = "0"  # Zendesk's 'none'
    with pytest.raises(
        AdapterError, match=r"^cannot tell the provider department: the payload has no 'detail.group_id'$"
    ):
        zendesk.adapt(payload, DIRECTORY)


def test_missing_event_time_is_named() -> None:
    payload = load("ticket_created.json")
    del payload["time"]
    with pytest.raises(AdapterError, match=r"^missing field 'time'$"):
        zendesk.adapt(payload, DIRECTORY)


@pytest.mark.parametrize(
    ("comment", "kept"),
    [
        ("  \n ", None),  # blank: no comment
        ("招聘太慢 " * 25_000, "cut"),  # 100 kB: cut with a visible mark, the rating kept
        ("<b>fine</b> 👍", "<b>fine</b> 👍"),  # text is data: kept as written (renderers escape)
    ],
)
def test_a_rating_keeps_its_score_whatever_its_comment(comment: str, kept: str | None) -> None:
    payload = load("satisfaction_rating_bad.json")
    payload["satisfaction_rating"]["comment"] = comment

    [event] = adapt(payload)

    assert event["csat"] == 1
    if kept == "cut":
        assert len(event["comment"]) == 4096 and event["comment"].endswith("… [truncated]")
    else:
        assert event.get("comment") == kept
