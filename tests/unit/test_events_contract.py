"""The event contract v1: every kind of invalid event is rejected with a reason naming the field;
valid events of every type survive the wire encoding unchanged, in UTC."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, get_args

import pytest

from deptpulse.settings import EXAMPLE_DIRECTORY
from schemas.directory import load_directory
from schemas.events import (
    EVENT_TYPES,
    InvalidEvent,
    event_to_json,
    parse_event,
    validate_event,
)
from schemas.export import EVENT_MODELS

DIRECTORY = load_directory(EXAMPLE_DIRECTORY)

pytestmark = pytest.mark.unit

BASE: dict[str, Any] = {
    "schema_version": 1,
    "event_id": "jira-sm:10042:request.opened",
    "occurred_at": "2026-03-02T09:15:00+01:00",
    "source": "jira-sm",
    "provider_department": "it",
    "customer_department": "finance",
    "service_category": "it.access",
    "priority": "P2",
    "attributes": {"ticket": "ITSD-42"},
}
REQUEST = BASE | {"request_id": "jira-sm:10042"}
VALID: dict[str, dict[str, Any]] = {
    "request.opened": REQUEST | {"event_type": "request.opened"},
    "request.responded": REQUEST | {"event_type": "request.responded"},
    "request.status_changed": REQUEST
    | {"event_type": "request.status_changed", "status": "waiting_on_customer"},
    "request.resolved": REQUEST | {"event_type": "request.resolved"},
    "request.reopened": REQUEST | {"event_type": "request.reopened"},
    "request.closed": REQUEST | {"event_type": "request.closed"},
    "feedback.submitted": REQUEST | {"event_type": "feedback.submitted", "csat": 5, "comment": "Danke!"},
    "survey.answered": BASE
    | {
        "event_type": "survey.answered",
        "score": 9,
        "comment": "很好",
        "question_id": "recruiting-speed",
        "campaign_id": "2026-q1",
        "respondent_id": "r-7f3a",
    },
    "survey.invited": BASE | {"event_type": "survey.invited", "campaign_id": "2026-q1", "invited": 40},
    "action.recorded": {
        **{key: value for key, value in BASE.items() if key != "customer_department"},
        "event_type": "action.recorded",
        "title": "Recruiting reorganised: one owner per open position",
        "started_on": "2026-03-01",
        "owner": "head.hr@example.com",
    },
}
ACTION = VALID["action.recorded"]
INVITED = VALID["survey.invited"]
FEEDBACK = VALID["feedback.submitted"]
SURVEY = VALID["survey.answered"]


def test_every_event_type_has_a_valid_example() -> None:
    assert sorted(VALID) == sorted(EVENT_TYPES)


# (case, event, check against the directory?, the reason must contain)
INVALID: list[tuple[str, dict[str, Any], bool, str]] = [
    ("unknown event_type", REQUEST | {"event_type": "request.escalated"}, False, "event_type: Input tag 'request.escalated'"),
    ("no event_type", REQUEST, False, "event_type: Unable to extract tag using discriminator 'event_type'"),
    ("csat as text", FEEDBACK | {"csat": "5"}, False, "csat: Input should be a valid integer"),
    ("csat fractional", FEEDBACK | {"csat": 4.5}, False, "csat: Input should be a valid integer"),
    ("event_id a number", FEEDBACK | {"event_id": 7}, False, "event_id: Input should be a valid string"),
    ("naive occurred_at", FEEDBACK | {"occurred_at": "2026-03-02T09:15:00"}, False, "occurred_at: Input should have timezone info"),
    ("occurred_at before year 1 in UTC", FEEDBACK | {"occurred_at": "0001-01-01T00:00:00+00:01"}, False, "occurred_at: Value error, timestamp out of range"),
    ("occurred_at not a time", FEEDBACK | {"occurred_at": "yesterday"}, False, "occurred_at: Input should be a valid datetime"),
    ("unknown provider department", FEEDBACK | {"provider_department": "marketing"}, True, "provider_department: Value error, unknown department 'marketing'"),
    ("unknown customer department", SURVEY | {"customer_department": "marketing"}, True, "customer_department: Value error, unknown department 'marketing'"),
    ("department id not an id", FEEDBACK | {"provider_department": "IT"}, False, "provider_department: String should match pattern"),
    ("csat 6", FEEDBACK | {"csat": 6}, False, "csat: Input should be less than or equal to 5"),
    ("csat 0", FEEDBACK | {"csat": 0}, False, "csat: Input should be greater than or equal to 1"),
    ("nps 11", SURVEY | {"score": 11}, False, "score: Input should be less than or equal to 10"),
    ("nps -1", SURVEY | {"score": -1}, False, "score: Input should be greater than or equal to 0"),
    ("event_id of 129 chars", FEEDBACK | {"event_id": "e" * 129}, False, "event_id: String should have at most 128 characters"),
    ("event_id empty", FEEDBACK | {"event_id": ""}, False, "event_id: String should have at least 1 character"),
    ("request_id empty", FEEDBACK | {"request_id": ""}, False, "request_id: String should have at least 1 character"),
    ("request_id on a survey", SURVEY | {"request_id": "r-1"}, False, "request_id: Extra inputs are not permitted"),
    ("extra unknown field", FEEDBACK | {"department": "it"}, False, "department: Extra inputs are not permitted"),
    ("priority P5", FEEDBACK | {"priority": "P5"}, False, "priority: Input should be 'P1', 'P2', 'P3' or 'P4'"),
    ("unknown service", FEEDBACK | {"service_category": "it.teleportation"}, True, "service_category: Value error, unknown service 'it.teleportation'"),
    ("schema_version 2", FEEDBACK | {"schema_version": 2}, False, "schema_version: Input should be 1"),
    ("status empty", VALID["request.status_changed"] | {"status": ""}, False, "status: String should have at least 1 character"),
    ("attribute not text", FEEDBACK | {"attributes": {"n": 1}}, False, "attributes.n: Input should be a valid string"),
    ("attribute too long", FEEDBACK | {"attributes": {"n": "x" * 4097}}, False, "attributes.n: String should have at most 4096 characters"),
    ("comment too long", SURVEY | {"comment": "x" * 4097}, False, "comment: String should have at most 4096 characters"),
    ("campaign_id empty", SURVEY | {"campaign_id": ""}, False, "campaign_id: String should have at least 1 character"),
    ("invited 0", INVITED | {"invited": 0}, False, "invited: Input should be greater than or equal to 1"),
    ("invitation without campaign", {k: v for k, v in INVITED.items() if k != "campaign_id"}, False, "campaign_id: Field required"),
    ("action title empty", ACTION | {"title": "   "}, False, "title: String should have at least 1 character"),
    ("action starting in the future", ACTION | {"started_on": "2026-03-09"}, False, "started_on 2026-03-09 is in the future of its recording"),
    ("action start not a date", ACTION | {"started_on": "March"}, False, "started_on: Input should be a valid date"),
    ("action on an unknown service", ACTION | {"service_category": "hr.teleportation"}, True, "service_category: Value error, unknown service 'hr.teleportation'"),
    ("action owner not an e-mail", ACTION | {"owner": "hr head"}, False, "owner: String should match pattern"),
]  # fmt: skip

# Every required field of every event type, removed one at a time.
MISSING: list[tuple[str, str]] = [
    (event_type, name)
    for model in EVENT_MODELS
    for event_type in get_args(model.model_fields["event_type"].annotation)
    for name, field in model.model_fields.items()
    if field.is_required() and name != "event_type"
]


@pytest.mark.parametrize(
    ("case", "event", "with_directory", "reason"), INVALID, ids=[row[0] for row in INVALID]
)
def test_invalid_event_is_rejected_naming_the_field(
    case: str, event: dict[str, Any], with_directory: bool, reason: str
) -> None:
    directory = DIRECTORY if with_directory else None
    with pytest.raises(InvalidEvent) as caught:
        parse_event(json.dumps(event), directory)
    assert reason in caught.value.reason
    expected_kind = "unknown_department" if "unknown department" in reason else "schema"
    assert caught.value.kind == expected_kind


@pytest.mark.parametrize(("event_type", "name"), MISSING, ids=[f"{t}-{n}" for t, n in MISSING])
def test_missing_required_field_is_rejected_naming_it(event_type: str, name: str) -> None:
    event = dict(VALID[event_type])
    del event[name]
    with pytest.raises(InvalidEvent) as caught:
        parse_event(json.dumps(event))
    assert caught.value.reason == f"{name}: Field required"


def test_request_id_is_required_on_every_request_event_and_feedback() -> None:
    requiring = {event_type for event_type, name in MISSING if name == "request_id"}
    assert requiring == set(EVENT_TYPES) - {"survey.answered", "survey.invited", "action.recorded"}


def test_unknown_departments_pass_without_a_directory() -> None:
    assert (
        parse_event(json.dumps(FEEDBACK | {"provider_department": "marketing"})).provider_department
        == "marketing"
    )


@pytest.mark.parametrize("data", [b"{not json", b"\xff\xfe", b"[]"])
def test_undecodable_bytes_are_rejected(data: bytes) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(data)
    assert caught.value.kind in {"decode", "schema"}
    assert caught.value.reason


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_valid_events_round_trip_through_the_wire_encoding(event_type: str) -> None:
    event = parse_event(json.dumps(VALID[event_type]), DIRECTORY)
    assert event.event_type == event_type
    wire = event_to_json(event)
    assert parse_event(wire, DIRECTORY) == event
    assert validate_event(event, DIRECTORY) == event
    assert b"null" not in wire  # absent optionals are left out, not sent as null


def test_timestamps_are_normalised_to_utc() -> None:
    event = parse_event(json.dumps(FEEDBACK | {"occurred_at": "2026-03-02T17:15:00+08:00"}))
    assert event.occurred_at == datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert json.loads(event_to_json(event))["occurred_at"] == "2026-03-02T09:15:00Z"


def test_python_values_too_must_be_timezone_aware() -> None:
    shanghai = timezone(timedelta(hours=8))
    aware = validate_event(FEEDBACK | {"occurred_at": datetime(2026, 3, 2, 17, 15, tzinfo=shanghai)})
    assert aware.occurred_at == datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
    with pytest.raises(InvalidEvent, match=r"occurred_at: Input should have timezone info"):
        validate_event(FEEDBACK | {"occurred_at": datetime(2026, 3, 2, 17, 15)})


def test_events_are_frozen() -> None:
    event = parse_event(json.dumps(FEEDBACK))
    with pytest.raises(ValueError, match="frozen"):
        event.csat = 1  # type: ignore[misc,union-attr]


def test_partition_keys() -> None:
    assert parse_event(json.dumps(FEEDBACK)).partition_key == "jira-sm:10042"  # one request, one partition
    assert parse_event(json.dumps(SURVEY)).partition_key == "it"
