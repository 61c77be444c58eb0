"""Jira Service Management adapter, on the project's own JSM-shaped fixtures.

The vendors' published payloads run in test_sources_vendor_payloads.py.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from producers.sources import jira_sm
from producers.sources.common import AdapterError
from schemas.directory import UnmappedValue, load_directory
from schemas.events import event_to_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
DIRECTORY = load_directory(FIXTURES / "directory.yaml")

pytestmark = pytest.mark.unit

# What every event of the fixture request ITSD-42 shares.
ITSD_42 = {
    "schema_version": 1,
    "source": "jira-sm",
    "request_id": "jira-sm:10042",
    "provider_department": "it",  # project ITSD
    "customer_department": "finance",  # organisation Finance
    "priority": "P2",  # High
    "attributes": {
        "ticket": "ITSD-42",
        "issue_type": "[System] Service request",
        "request_type": "Get IT help",
        "vendor_priority": "High",
        "sla.time_to_first_response.breached": "false",
        "sla.time_to_first_response.goal_seconds": "7200",
        "sla.time_to_first_response.elapsed_seconds": "0",
        "sla.time_to_first_response.breach_time": "2026-03-02T10:15:00+00:00",
    },
}


def load(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / "jira-sm" / name).read_text(encoding="utf-8"))
    return payload


def adapt(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(event_to_json(event)) for event in jira_sm.adapt(payload, DIRECTORY)]


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "issue_created.json",
            {
                "event_type": "request.opened",
                "event_id": "jira-sm:10042:request.opened",
                "occurred_at": "2026-03-02T08:15:00Z",
            },
        ),
        (
            "issue_updated_waiting_for_customer.json",
            {
                "event_type": "request.status_changed",
                "event_id": "jira-sm:10042:request.status_changed:20101",
                "occurred_at": "2026-03-02T09:05:30Z",
                "status": "waiting_on_customer",
            },
        ),
        (
            "issue_updated_resolved.json",
            {
                "event_type": "request.resolved",
                "event_id": "jira-sm:10042:request.resolved:20102",
                "occurred_at": "2026-03-03T13:00:00Z",
            },
        ),
        (
            "issue_updated_reopened.json",
            {
                "event_type": "request.reopened",
                "event_id": "jira-sm:10042:request.reopened:20103",
                "occurred_at": "2026-03-04T07:30:00Z",
            },
        ),
        (
            "issue_updated_closed.json",
            {
                "event_type": "request.closed",
                "event_id": "jira-sm:10042:request.closed:20104",
                "occurred_at": "2026-03-09T23:00:00Z",
            },
        ),
        (
            "comment_created.json",
            {
                "event_type": "request.responded",
                "event_id": "jira-sm:10042:request.responded:30077",
                "occurred_at": "2026-03-02T08:41:12.250000Z",
            },
        ),
        (
            "feedback_submitted.json",
            {
                "event_type": "feedback.submitted",
                "event_id": "jira-sm:10042:feedback.submitted",
                "occurred_at": "2026-03-04T08:19:05Z",
                "csat": 4,
                "comment": "Quick and friendly, thanks!",
            },
        ),
    ],
)
def test_fixture_becomes_one_event(fixture: str, expected: dict[str, Any]) -> None:
    assert adapt(load(fixture)) == [ITSD_42 | expected]


def test_a_retried_webhook_repeats_its_event_id() -> None:
    payload = load("issue_updated_resolved.json")
    retry = copy.deepcopy(payload) | {"timestamp": payload["timestamp"] + 60_000}
    assert adapt(payload) == adapt(retry)


def test_closing_with_a_resolution_resolves_and_closes() -> None:
    payload = load("issue_updated_closed.json")
    payload["changelog"]["items"].append(
        {"field": "resolution", "fieldId": "resolution", "from": None, "to": "10000", "toString": "Done"}
    )
    assert [event["event_type"] for event in adapt(payload)] == ["request.resolved", "request.closed"]


def test_done_status_resolves_in_projects_without_resolutions() -> None:
    payload = load("issue_updated_resolved.json")
    payload["changelog"]["items"] = payload["changelog"]["items"][:1]  # no resolution item
    payload["issue"]["fields"]["resolution"] = None
    assert [event["event_type"] for event in adapt(payload)] == ["request.resolved"]


def test_updates_without_a_status_change_measure_nothing() -> None:
    payload = load("issue_updated_waiting_for_customer.json")
    payload["changelog"]["items"] = [{"field": "summary", "fieldId": "summary", "toString": "VPN drops"}]
    assert adapt(payload) == []


@pytest.mark.parametrize(
    "change",
    [
        {"jsdPublic": False},  # an internal note
        {"author": {"accountId": "5f1a2b3c4d5e6f7a8b9c0d1e"}},  # the reporter's own comment
    ],
)
def test_comments_that_are_not_responses(change: dict[str, Any]) -> None:
    payload = load("comment_created.json")
    payload["comment"] |= change
    assert adapt(payload) == []


def test_without_an_organisation_the_reporter_is_the_customer() -> None:
    payload = load("issue_created.json")
    payload["issue"]["fields"]["customfield_10002"] = []
    payload["issue"]["fields"]["reporter"] = {"accountId": "712020:f1ad7cfd-7f82-4dc0-85e4-8bc47bcc08e4"}
    assert adapt(payload)[0]["customer_department"] == "finance"


def test_another_organizations_field_id() -> None:
    payload = load("issue_created.json")
    fields = payload["issue"]["fields"]
    fields["customfield_10200"] = {"value": "Finance", "id": "10300"}  # a 'Department' select field
    del fields["customfield_10002"]
    [event] = jira_sm.adapt(payload, DIRECTORY, organizations_field="customfield_10200")
    assert event.customer_department == "finance"


def test_translated_priority_falls_back_to_the_default_id() -> None:
    payload = load("issue_created.json")
    payload["issue"]["fields"]["priority"] = {"id": "1", "name": "Наивысший"}
    assert adapt(payload)[0]["priority"] == "P1"
    assert adapt(payload)[0]["attributes"]["vendor_priority"] == "Наивысший"


def test_unmapped_project_names_the_value_and_the_mapping() -> None:
    payload = load("issue_created.json")
    payload["issue"]["fields"]["project"]["key"] = "MKT"
    with pytest.raises(
        UnmappedValue, match=r"^no department mapping for jira-sm field 'project' value 'MKT'$"
    ):
        jira_sm.adapt(payload, DIRECTORY)


def test_unmapped_organisation_names_the_value_and_the_mapping() -> None:
    payload = load("issue_created.json")
    payload["issue"]["fields"]["customfield_10002"][0]["name"] = "Marketing"
    with pytest.raises(
        UnmappedValue, match=r"^no department mapping for jira-sm field 'department' value 'Marketing'$"
    ):
        jira_sm.adapt(payload, DIRECTORY)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (("webhookEvent",), "missing field 'webhookEvent'"),
        (("issue", "fields", "created"), "missing field 'issue.fields.created'"),
        (("issue", "id"), "missing field 'issue.id'"),
    ],
)
def test_missing_fields_are_named(path: tuple[str, ...], message: str) -> None:
    payload = load("issue_created.json")
    parent = payload
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    with pytest.raises(AdapterError) as caught:
        jira_sm.adapt(payload, DIRECTORY)
    assert str(caught.value) == message


def test_invalid_feedback_is_rejected_naming_the_field() -> None:
    payload = load("feedback_submitted.json")
    payload["feedback"]["rating"] = "great"
    with pytest.raises(AdapterError, match=r"^invalid feedback\.rating 'great'"):
        jira_sm.adapt(payload, DIRECTORY)
    payload["feedback"]["rating"] = 6
    with pytest.raises(AdapterError, match=r"csat: Input should be less than or equal to 5"):
        jira_sm.adapt(payload, DIRECTORY)


def test_other_webhooks_measure_nothing() -> None:
    assert jira_sm.adapt({"webhookEvent": "jira:worklog_updated"}, DIRECTORY) == []
