"""ServiceNow adapter, on the project's own Table-API-shaped fixtures.

The vendors' published payloads run in test_sources_vendor_payloads.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from producers.sources import servicenow
from producers.sources.common import AdapterError
from schemas.directory import UnmappedValue, load_directory
from schemas.events import event_to_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
DIRECTORY = load_directory(FIXTURES / "directory.yaml")
INC_ID = "servicenow:9d385017c611228701d22104cc95c371"

pytestmark = pytest.mark.unit


def load(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / "servicenow" / name).read_text(encoding="utf-8"))
    return payload


def adapt(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(event_to_json(event)) for event in servicenow.adapt(payload, DIRECTORY)]


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str, str, str | None]]:
    return [(e["event_type"], e["event_id"], e["occurred_at"], e.get("status")) for e in events]


def test_in_progress_incident_with_display_values() -> None:
    events = adapt(load("incident_in_progress.json"))
    assert summary(events) == [
        ("request.opened", f"{INC_ID}:request.opened", "2026-03-02T09:15:00Z", None),
        # work_start, not the display value (the sending user's timezone, an hour later)
        ("request.responded", f"{INC_ID}:request.responded", "2026-03-02T09:32:10Z", None),
        (
            "request.status_changed",
            f"{INC_ID}:request.status_changed:3",
            "2026-03-02T09:40:00Z",
            "in_progress",
        ),
    ]
    assert {(e["provider_department"], e["customer_department"], e["priority"]) for e in events} == {
        ("it", "finance", "P2")
    }
    assert events[0]["request_id"] == INC_ID
    assert events[0]["attributes"] == {
        "ticket": "INC0010042",
        "table": "incident",
        "category": "Hardware",
        "vendor_priority": "2",
        "made_sla": "true",
    }


def test_on_hold_awaiting_caller_pauses_the_clock() -> None:
    assert summary(adapt(load("incident_on_hold_awaiting_caller.json")))[1:] == [
        ("request.responded", f"{INC_ID}:request.responded", "2026-03-02T09:32:10Z", None),
        (
            "request.status_changed",
            f"{INC_ID}:request.status_changed:5",
            "2026-03-02T11:02:45Z",
            "waiting_on_customer",
        ),
    ]


def test_other_hold_reasons_keep_their_name() -> None:
    payload = load("incident_on_hold_awaiting_caller.json") | {"hold_reason": "4"}  # awaiting vendor
    assert summary(adapt(payload))[-1][-1] == "on_hold"


def test_each_snapshot_repeats_the_ids_of_milestones_already_sent() -> None:
    first = {e["event_id"] for e in adapt(load("incident_in_progress.json"))}
    later = {e["event_id"] for e in adapt(load("incident_on_hold_awaiting_caller.json"))}
    assert first & later == {f"{INC_ID}:request.opened", f"{INC_ID}:request.responded"}


def test_resolved_after_a_reopen_in_a_table_api_envelope() -> None:
    assert summary(adapt(load("incident_resolved_after_reopen.json"))) == [
        ("request.opened", f"{INC_ID}:request.opened", "2026-03-02T09:15:00Z", None),
        ("request.reopened", f"{INC_ID}:request.reopened:1", "2026-03-03T08:05:00Z", None),
        ("request.resolved", f"{INC_ID}:request.resolved:20260304T162000Z", "2026-03-04T16:20:00Z", None),
    ]


def test_requested_item_closed_complete_is_resolved_and_closed() -> None:
    events = adapt(load("sc_req_item_closed.json"))
    ritm = "servicenow:aeed229047801200e0ef563dbb9a71c2"
    assert summary(events) == [
        ("request.opened", f"{ritm}:request.opened", "2026-03-05T13:00:00Z", None),
        ("request.resolved", f"{ritm}:request.resolved:20260309T153000Z", "2026-03-09T15:30:00Z", None),
        ("request.closed", f"{ritm}:request.closed:20260309T153000Z", "2026-03-09T15:30:00Z", None),
    ]
    assert {(e["provider_department"], e["customer_department"], e["priority"]) for e in events} == {
        ("it", "sales", "P4")  # Hardware, requested_for.department Sales, priority 4 - Low
    }


def test_cancelled_requested_item_is_closed_not_resolved() -> None:
    payload = load("sc_req_item_closed.json")
    payload["result"]["state"] = "4"  # Closed Incomplete
    assert [e["event_type"] for e in adapt(payload)] == ["request.opened", "request.closed"]


def test_hr_case_awaiting_acceptance() -> None:
    events = adapt(load("hr_case_awaiting_acceptance.json"))
    case = "servicenow:c4a3f1e61b2f3010a1b2c3d4e5f60718"
    assert summary(events) == [
        ("request.opened", f"{case}:request.opened", "2026-03-06T01:30:00Z", None),
        ("request.responded", f"{case}:request.responded", "2026-03-06T06:45:00Z", None),
        (
            "request.status_changed",
            f"{case}:request.status_changed:4",
            "2026-03-06T06:45:00Z",
            "waiting_on_customer",
        ),
    ]
    assert {(e["provider_department"], e["customer_department"]) for e in events} == {("hr", "engineering")}


def test_new_records_are_only_opened() -> None:
    payload = load("incident_on_hold_awaiting_caller.json") | {"state": "1", "work_start": ""}
    assert [e["event_type"] for e in adapt(payload)] == ["request.opened"]


def test_unassigned_records_give_no_events() -> None:
    assert adapt(load("incident_on_hold_awaiting_caller.json") | {"assignment_group": ""}) == []


def test_csat_survey_result_is_feedback_on_the_task() -> None:
    assert adapt(load("survey_result_csat.json")) == [
        {
            "schema_version": 1,
            "event_type": "feedback.submitted",
            "event_id": f"{INC_ID}:feedback.submitted:0b8e3a6f1b7f3010a1b2c3d4e5f6a1b2",
            "occurred_at": "2026-03-04T17:02:13Z",
            "source": "servicenow",
            "request_id": INC_ID,  # the same request as the incident's own events
            "provider_department": "it",
            "customer_department": "finance",
            "csat": 4,
            "comment": "Fixed fast, thank you.",
            "attributes": {
                "question": "How satisfied are you with the resolution of your incident?",
                "assessment": "AINST0010123",
            },
        }
    ]


def test_department_survey_result_is_a_survey_answer() -> None:
    assert adapt(load("survey_result_department_nps.json")) == [
        {
            "schema_version": 1,
            "event_type": "survey.answered",
            "event_id": "servicenow:survey.answered:1c9f4b7a2c803020b2c3d4e5f6a7b8c9",
            "occurred_at": "2026-03-20T08:00:00Z",
            "source": "servicenow",
            "provider_department": "facilities",
            "customer_department": "sales",
            "score": 9,
            "attributes": {
                "question": "How likely are you to recommend Facilities to a colleague?",
                "assessment": "AINST0010456",
            },
        }
    ]


def test_csat_out_of_range_is_rejected() -> None:
    with pytest.raises(AdapterError, match=r"csat: Input should be less than or equal to 5"):
        servicenow.adapt(load("survey_result_csat.json") | {"actual_value": "9"}, DIRECTORY)


def test_unmapped_group_names_the_value_and_the_mapping() -> None:
    payload = load("incident_on_hold_awaiting_caller.json") | {"assignment_group": "Network Operations"}
    with pytest.raises(
        UnmappedValue,
        match=r"^no department mapping for servicenow field 'assignment_group' value 'Network Operations'$",
    ):
        servicenow.adapt(payload, DIRECTORY)


def test_without_a_department_the_requester_is_the_customer() -> None:
    payload = load("incident_on_hold_awaiting_caller.json")
    del payload["caller_id.department"]
    payload["caller_id"] = {"value": "681ccaf9c0a8016400b98a06818d57c7"}
    assert {e["customer_department"] for e in adapt(payload)} == {"finance"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sys_id": ""}, "missing field 'sys_id'"),
        ({"opened_at": ""}, "missing field 'opened_at'"),
        (
            {"opened_at": "02/03/2026 09:15"},
            "invalid timestamp opened_at='02/03/2026 09:15': expected ISO 8601",
        ),
        (
            {"caller_id": "", "caller_id.department": ""},
            "cannot tell the customer department: the payload has no 'caller_id.department' or 'caller_id'",
        ),
    ],
)
def test_missing_or_invalid_fields_are_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(AdapterError) as caught:
        servicenow.adapt(load("incident_on_hold_awaiting_caller.json") | change, DIRECTORY)
    assert str(caught.value) == message
