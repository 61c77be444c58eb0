"""The adapters' shared mapping logic: fields, departments, times, ids, priorities, statuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from producers.sources.common import (
    AdapterError,
    Ticket,
    attributes,
    first_present,
    get,
    integer,
    opt,
    parse_time,
    present,
    priority,
    resolve_department,
    stable_id,
    status,
)
from schemas.directory import UnmappedValue, load_directory
from schemas.events import FeedbackSubmitted
from schemas.ids import Priority

DIRECTORY = load_directory(Path(__file__).resolve().parents[1] / "fixtures" / "sources" / "directory.yaml")

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("value", [None, "", [], {}])
def test_absent_values(value: object) -> None:
    assert not present(value)
    assert opt({"a": value}, "a") is None


@pytest.mark.parametrize("value", [0, False, "0", [0], {"a": None}])
def test_present_values(value: object) -> None:
    assert present(value)


def test_get_walks_nested_fields_and_names_the_missing_path() -> None:
    payload = {"issue": {"fields": {"project": {"key": "ITSD"}, "resolution": None}}}
    assert get(payload, "issue", "fields", "project", "key") == "ITSD"
    with pytest.raises(AdapterError, match=r"missing field 'issue\.fields\.resolution'"):
        get(payload, "issue", "fields", "resolution")
    with pytest.raises(AdapterError, match=r"missing field 'issue\.fields\.project\.key\.x'"):
        get(payload, "issue", "fields", "project", "key", "x")  # a string is not walked into


def test_first_present() -> None:
    assert first_present({"a": "", "b": None, "c": "x", "d": "y"}, "a", "b", "c", "d") == ("c", "x")
    assert first_present({"a": ""}, "a", "b") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2018-01-11T13:08:03.317+0300", datetime(2018, 1, 11, 10, 8, 3, 317000, tzinfo=UTC)),  # Jira
        ("2024-04-17T17:18:10Z", datetime(2024, 4, 17, 17, 18, 10, tzinfo=UTC)),  # Zendesk
        ("2025-10-15T09:55:04+0330", datetime(2025, 10, 15, 6, 25, 4, tzinfo=UTC)),  # JSM SLA
        (
            "2019-05-25T01:23:45.465719851Z",
            datetime(2019, 5, 25, 1, 23, 45, 465719, tzinfo=UTC),
        ),  # EventBridge
        (1628677146887, datetime(2021, 8, 11, 10, 19, 6, 887000, tzinfo=UTC)),  # Jira epoch millis
    ],
)
def test_parse_time_gives_aware_utc(value: object, expected: datetime) -> None:
    parsed = parse_time(value, "at")
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_naive_time_needs_a_documented_zone() -> None:
    with pytest.raises(AdapterError, match=r"timestamp opened_at='2016-12-14 02:46:44' has no UTC offset"):
        parse_time("2016-12-14 02:46:44", "opened_at")
    shanghai = timezone(timedelta(hours=8))
    assert parse_time("2016-12-14 02:46:44", "opened_at", naive_zone=shanghai) == datetime(
        2016, 12, 13, 18, 46, 44, tzinfo=UTC
    )


@pytest.mark.parametrize("value", ["2018-1-11 13:08:04,225", "yesterday", None, True])
def test_invalid_time_names_the_field(value: object) -> None:
    with pytest.raises(AdapterError, match=r"timestamp"):
        parse_time(value, "timestamp")


def test_stable_id_is_readable_and_bounded() -> None:
    assert stable_id("jira-sm:10042", "request.opened") == "jira-sm:10042:request.opened"
    long = stable_id("hr-survey", "r-1", "q" * 200)
    assert len(long) <= 128
    assert long.startswith("hr-survey:sha256:")
    assert long == stable_id("hr-survey", "r-1", "q" * 200)  # deterministic
    assert long != stable_id("hr-survey", "r-2", "q" * 200)


def test_priority_and_status() -> None:
    table: dict[str, Priority] = {"high": "P2", "1": "P1"}
    assert priority("High ", table) == "P2"
    assert priority(1, table) == "P1"
    assert priority("unheard-of", table) is None
    assert priority(None, table) is None
    assert status("Waiting for customer") == "waiting_on_customer"
    assert status("PENDING") == "waiting_on_customer"
    assert status("Waiting for support") == "in_progress"
    assert status("In Progress") == "in_progress"
    assert status("Escalated to vendor") == "escalated_to_vendor"
    assert status("Готово") == "готово"


@pytest.mark.parametrize(("value", "expected"), [(4, 4), ("4", 4), ("4.0", 4), (" 10 ", 10)])
def test_integer(value: object, expected: int) -> None:
    assert integer(value, "rating") == expected


@pytest.mark.parametrize("value", ["4.5", "four", True, None, "nan"])
def test_integer_rejects_non_whole_numbers(value: object) -> None:
    with pytest.raises(AdapterError, match=r"invalid rating"):
        integer(value, "rating")


def test_attributes_drop_absent_values_and_stringify() -> None:
    assert attributes({"a": None, "b": "", "c": False, "d": 7, "e": "x" * 5000}) == {
        "c": "false",
        "d": "7",
        "e": "x" * 4096,
    }


def test_resolve_department_takes_the_first_present_candidate() -> None:
    assert (
        resolve_department(
            DIRECTORY,
            "zendesk",
            "customer",
            ("organization", "detail.organization_id", None),
            ("requester", "detail.requester_id", 7881),
        )
        == "sales"
    )


def test_unmapped_value_names_the_value_and_the_mapping() -> None:
    with pytest.raises(UnmappedValue) as caught:
        resolve_department(
            DIRECTORY,
            "zendesk",
            "customer",
            ("organization", "detail.organization_id", "999"),
            ("requester", "detail.requester_id", 7881),  # not consulted: the organisation is unknown
        )
    assert str(caught.value) == "no department mapping for zendesk field 'organization' value '999'"


def test_no_candidate_names_every_path() -> None:
    with pytest.raises(AdapterError) as caught:
        resolve_department(DIRECTORY, "zendesk", "provider", ("group", "detail.group_id", None))
    assert str(caught.value) == "cannot tell the provider department: the payload has no 'detail.group_id'"


def test_ticket_events_break_no_contract_silently() -> None:
    ticket = Ticket("zendesk", "4711", "it", "finance", "P2", {"channel": "web"})
    at = datetime(2026, 3, 2, 8, 15, tzinfo=UTC)
    event = ticket.event("feedback.submitted", at, "r-1", csat=5)
    assert isinstance(event, FeedbackSubmitted)
    assert (event.event_id, event.request_id) == ("zendesk:4711:feedback.submitted:r-1", "zendesk:4711")
    with pytest.raises(
        AdapterError, match=r"the mapped event breaks the contract: csat: .*less than or equal to 5"
    ):
        ticket.event("feedback.submitted", at, "r-1", csat=7)
