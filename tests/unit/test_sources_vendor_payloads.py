"""The vendors' published payloads (../shared/vendor-payloads, see its INDEX.md) through the adapters.

Read in place, never copied into the project. The test directory (tests/fixtures/sources/directory.yaml)
maps the departments these payloads name; each test states the exact events, or the exact rejection
where a payload lacks what the contract needs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from producers.sources import ADAPTERS, convert, read_payloads
from producers.sources.common import REJECTIONS
from schemas.directory import load_directory
from schemas.events import event_to_json

VENDOR_PAYLOADS = Path(__file__).resolve().parents[2].parent / "shared" / "vendor-payloads"
DIRECTORY = load_directory(Path(__file__).resolve().parents[1] / "fixtures" / "sources" / "directory.yaml")

# CI always has ../shared beside the checkout: there a missing folder is a failure, not a skip.
if not VENDOR_PAYLOADS.is_dir() and os.environ.get("CI"):
    raise RuntimeError(f"CI=true but the vendor payloads are missing at {VENDOR_PAYLOADS}")

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(not VENDOR_PAYLOADS.is_dir(), reason=f"no vendor payloads at {VENDOR_PAYLOADS}"),
]


def payload(name: str) -> Any:
    return json.loads((VENDOR_PAYLOADS / name).read_text(encoding="utf-8"))


def events(source: str, value: Any) -> list[dict[str, Any]]:
    return [json.loads(event_to_json(event)) for event in ADAPTERS[source](value, DIRECTORY)]


def rejection(source: str, value: Any) -> str:
    with pytest.raises(REJECTIONS) as caught:
        ADAPTERS[source](value, DIRECTORY)
    return str(caught.value)


# --- Jira / Jira Service Management ----------------------------------------------------------------


def test_jira_server_issue_created() -> None:
    assert events("jira-sm", payload("jira_issue_created.json")) == [
        {
            "schema_version": 1,
            "event_type": "request.opened",
            "event_id": "jira-sm:30369:request.opened",
            "occurred_at": "2018-01-11T10:08:03.317000Z",  # created 13:08:03.317+0300
            "source": "jira-sm",
            "request_id": "jira-sm:30369",
            "provider_department": "engineering",  # project BBCOM
            "customer_department": "sales",  # no organisation: reporter 5b912f5c8a96e82b9549361c
            "priority": "P3",  # Medium
            "attributes": {"ticket": "BBCOM-1398", "issue_type": "Task", "vendor_priority": "Medium"},
        }
    ]


def test_jira_status_change_to_in_progress() -> None:
    assert events("jira-sm", payload("jira_issue_updated_status_change.json")) == [
        {
            "schema_version": 1,
            "event_type": "request.status_changed",
            "event_id": "jira-sm:11442:request.status_changed:34911",  # changelog 34911
            "occurred_at": "2019-01-30T12:51:33.199000Z",
            "source": "jira-sm",
            "request_id": "jira-sm:11442",
            "provider_department": "engineering",  # project INDEV
            "customer_department": "sales",
            "priority": "P1",  # Highest
            "status": "in_progress",  # To Do -> In Progress
            "attributes": {"ticket": "INDEV-6", "issue_type": "Tarea", "vendor_priority": "Highest"},
        }
    ]


def test_jira_cloud_issue_created() -> None:
    assert events("jira-sm", payload("jira_cloud_issue_created.json")) == [
        {
            "schema_version": 1,
            "event_type": "request.opened",
            "event_id": "jira-sm:10021:request.opened",
            "occurred_at": "2024-12-29T03:11:23.303000Z",  # 08:41:23.303+0530
            "source": "jira-sm",
            "request_id": "jira-sm:10021",
            "provider_department": "it",  # project KAN
            "customer_department": "finance",  # customfield_10002 is []: reporter 712020:f1ad...
            "priority": "P3",
            "attributes": {"ticket": "KAN-22", "issue_type": "Task", "vendor_priority": "Medium"},
        }
    ]


def test_jira_cloud_description_update_measures_nothing() -> None:
    assert events("jira-sm", payload("jira_cloud_issue_updated.json")) == []


def test_jira_cloud_comment_is_rejected_for_its_trimmed_issue() -> None:
    # The author is the assignee (an agent), but Cloud's comment webhook carries neither the
    # organisation nor the reporter, so no customer department can be named.
    assert rejection("jira-sm", payload("jira_cloud_comment_created.json")) == (
        "cannot tell the customer department: the payload has no "
        "'issue.fields.customfield_10002' or 'issue.fields.reporter'"
    )


def test_jira_cloud_comment_with_the_customer_known_is_a_response() -> None:
    comment = payload("jira_cloud_comment_created.json")
    comment["issue"]["fields"]["customfield_10002"] = [{"id": "3", "name": "Finance"}]  # as a full issue has
    [event] = events("jira-sm", comment)
    assert (event["event_type"], event["event_id"], event["occurred_at"], event["priority"]) == (
        "request.responded",
        "jira-sm:10509:request.responded:10274",
        "2021-08-11T10:19:06.887000Z",
        "P3",  # 'Обычный', priority id 3
    )


def test_jira_server_comment_without_an_issue_is_rejected() -> None:
    assert rejection("jira-sm", payload("jira_comment_created.json")) == "missing field 'issue.id'"


def test_jsm_sla_field_value_goes_to_attributes() -> None:
    issue = payload("jira_cloud_issue_created.json")
    issue["issue"]["fields"]["customfield_10031"] = payload("jsm_sla_field_value.json")
    [event] = events("jira-sm", issue)
    assert {key: value for key, value in event["attributes"].items() if key.startswith("sla.")} == {
        "sla.time_to_resolution.breached": "false",
        "sla.time_to_resolution.goal_seconds": "547200",  # 152h
        "sla.time_to_resolution.elapsed_seconds": "208301",
        "sla.time_to_resolution.breach_time": "2025-11-10T11:09:43.324000+00:00",  # 14:39:43.324+0330
    }


# --- ServiceNow ----------------------------------------------------------------------------------------


def test_servicenow_closed_incident_from_a_developer_instance() -> None:
    common = {
        "schema_version": 1,
        "source": "servicenow",
        "request_id": "servicenow:1c741bd70b2322007518478d83673af3",
        "provider_department": "it",  # assignment_group 287ebd7d... (sys_id only)
        "customer_department": "finance",  # no caller department: caller 681ccaf9...
        "priority": "P3",
        "attributes": {
            "ticket": "INC0000060",
            "table": "incident",
            "category": "inquiry",
            "vendor_priority": "3",
            "made_sla": "true",
        },
    }
    assert events("servicenow", payload("servicenow_incident_table_api.json")) == [
        common
        | {
            "event_type": "request.opened",
            "event_id": "servicenow:1c741bd70b2322007518478d83673af3:request.opened",
            "occurred_at": "2016-12-12T15:19:57Z",
        },
        common
        | {
            "event_type": "request.resolved",
            "event_id": "servicenow:1c741bd70b2322007518478d83673af3:request.resolved:20161213T214314Z",
            "occurred_at": "2016-12-13T21:43:14Z",
        },
        common
        | {
            "event_type": "request.closed",
            "event_id": "servicenow:1c741bd70b2322007518478d83673af3:request.closed:20161214T024644Z",
            "occurred_at": "2016-12-14T02:46:44Z",
        },
    ]


def test_servicenow_vendor_documented_new_incident() -> None:
    assert events("servicenow", payload("servicenow_incident_table_api_get_vendor_doc.json")) == [
        {
            "schema_version": 1,
            "event_type": "request.opened",
            "event_id": "servicenow:a9e30c7dc61122760116894de7bcc7bd:request.opened",
            "occurred_at": "2015-11-02T22:04:15Z",
            "source": "servicenow",
            "request_id": "servicenow:a9e30c7dc61122760116894de7bcc7bd",
            "provider_department": "it",  # assignment_group 8a4dde73...
            "customer_department": "sales",  # caller 46c6f9ef...
            "priority": "P3",
            "attributes": {
                "ticket": "INC0000046",
                "table": "incident",
                "category": "software",
                "vendor_priority": "3",
                "made_sla": "false",
            },
        }
    ]


def test_servicenow_unassigned_requested_item_gives_no_events() -> None:
    assert events("servicenow", payload("servicenow_sc_req_item_table_api.json")) == []


def test_servicenow_hr_case_creation_request_is_not_a_record() -> None:
    assert (
        rejection("servicenow", payload("servicenow_hr_case_create_request.json")) == "missing field 'sys_id'"
    )


# --- Zendesk ---------------------------------------------------------------------------------------------


def test_zendesk_legacy_satisfaction_rating() -> None:
    assert events("zendesk", payload("zendesk_satisfaction_rating.json")) == [
        {
            "schema_version": 1,
            "event_type": "feedback.submitted",
            "event_id": "zendesk:208:feedback.submitted:35436",
            "occurred_at": "2011-07-20T22:55:29Z",
            "source": "zendesk",
            "request_id": "zendesk:208",
            "provider_department": "hr",  # group 44
            "customer_department": "sales",  # requester 7881
            "csat": 5,  # good
            "attributes": {},
        }
    ]


def test_zendesk_agent_assignment_measures_nothing() -> None:
    assert events("zendesk", payload("zendesk_zis_ticket_event_agent_assignment_changed.json")) == []


def test_zendesk_zis_ticket_shape_maps() -> None:
    created = payload("zendesk_zis_ticket_event_agent_assignment_changed.json")
    created["input"]["ticket_event"]["type"] = "Ticket Created"  # the same documented ticket object
    assert events("zendesk", created) == [
        {
            "schema_version": 1,
            "event_type": "request.opened",
            "event_id": "zendesk:35436:request.opened:CE4A698AF24F35B3208649C6951E000E:1",
            "occurred_at": "2019-05-25T01:23:45Z",
            "source": "zendesk",
            "request_id": "zendesk:35436",
            "provider_department": "it",  # group 98738
            "customer_department": "finance",  # organisation 10002
            "priority": "P4",  # low
            "attributes": {"vendor_priority": "low", "ticket_type": "question", "channel": "web"},
        }
    ]


def test_zendesk_user_event_measures_nothing() -> None:
    assert events("zendesk", payload("zendesk_webhook_event_envelope_example.json")) == []


def test_zendesk_prismatic_ticket_created_lacks_the_group() -> None:
    body = payload("zendesk_ticket_created_event_prismatic.json")["body"]["data"]  # the webhook body
    assert (
        rejection("zendesk", body)
        == "cannot tell the provider department: the payload has no 'detail.group_id'"
    )


# --- HR pulse survey exports ------------------------------------------------------------------------


def test_pulsestage_export() -> None:
    rows = read_payloads(
        "hr-survey", (VENDOR_PAYLOADS / "hr_pulse_export_pulsestage.csv").read_text(encoding="utf-8")
    )
    assert [e for row in rows for e in events("hr-survey", row)] == [
        {
            "schema_version": 1,
            "event_type": "survey.answered",
            "event_id": "hr-survey:1:how_satisfied_are_you",
            "occurred_at": "2025-01-01T10:00:00Z",
            "source": "hr-survey",
            "provider_department": "hr",  # question 'How satisfied are you?'
            "customer_department": "engineering",  # team Engineering
            "score": 8,  # 4 on PulseStage's 1-5 scale
            "question_id": "how_satisfied_are_you",  # no question id column: the question text, slugged
            "respondent_id": "1",  # the response id: PulseStage exports are anonymous
            "attributes": {"question": "How satisfied are you?", "vendor_score": "4", "vendor_scale": "1-5"},
        }
    ]


def test_qualtrics_demo_export_is_rejected_row_by_row() -> None:
    # A real Qualtrics export, but a demo survey: no department column and no question about one.
    rows = read_payloads(
        "hr-survey", (VENDOR_PAYLOADS / "qualtrics_survey_export_raw.csv").read_text(encoding="utf-8")
    )
    assert [row["ResponseId"] for row in rows] == ["R_5rYfeErcBsS3nsJ", "R_5rHTV2kfYGjFPep"]
    assert rows[0]["RecordedDate"] == "2025-07-01T11:14:19-04:00"  # America/New_York, from the ImportId row
    found, rejects = convert("hr-survey", rows, DIRECTORY)
    assert found == []
    assert [(reject.record, reject.reason) for reject in rejects] == [
        (
            number,
            "cannot tell the customer department: the payload has no 'department' or 'Department' or 'team'",
        )
        for number in (1, 2)
    ]
