"""ServiceNow records (incident, sc_req_item, HR case) and survey results -> canonical events.

Payloads: a record as the Table API serialises it (what an outbound REST message posts), alone or in
the Table API envelope ``{"result": record | [records]}``. Reference fields may be ``{"value",
"link"}``, ``{"display_value", "value"}`` (``sysparm_display_value=all``) or plain text; display
names are preferred for groups and departments, internal values for people, states and times.

Timestamps: the Table API (``sysparm_display_value=false``, the default) and ``GlideRecord.getValue``
give 'YYYY-MM-DD HH:MM:SS' in UTC without an offset; we read them as UTC. Send internal values, not
display values (those are in the sending user's timezone).

Departments (mappings under source ``servicenow``): provider = ``assignment_group``, mapping field
``assignment_group``; customer = the requester's department (``caller_id.department``,
``opened_for.department``, ``requested_for.department`` dot-walked into the message, or nested),
mapping field ``department``, else the requester's sys_id, mapping field ``requester``. A record not
yet assigned to a group gives no events: nobody serves it yet, and the next message carries opened_at.

A record is a snapshot, not a change, and every update re-sends it. So each message emits every
milestone the snapshot shows, with ids derived from the sys_id and the milestone; repeats carry the
same ids and the consumer drops them:

- request.opened at ``opened_at``;
- request.reopened at ``reopened_time`` (per ``reopen_count``);
- request.resolved at ``resolved_at`` (tables without it: ``closed_at``, unless cancelled);
- request.closed at ``closed_at``;
- while open and past New/Draft: request.responded at ``work_start`` or ``sys_updated_on`` (ServiceNow
  records no first-response time: the first snapshot showing work started stands in for it; one id per
  record, so later snapshots repeat it), and request.status_changed for the state at
  ``sys_updated_on`` (per ``sys_mod_count``; incident On Hold / Awaiting Caller -> waiting_on_customer).

Survey results (``asmt_metric_result``, with the assessed record's ``assignment_group`` and the
respondent's ``user.department`` or ``user`` added to the message): a result about a task (``source_table``
incident, sc_req_item, ...) -> feedback.submitted with ``actual_value`` as CSAT 1-5 for that request; a
result about a department (``source_table`` cmn_department, ``source_id`` its name) -> survey.answered
with ``actual_value`` as the 0-10 score.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from producers.sources.common import (
    Candidate,
    Event,
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
    slug,
    stable_id,
    status,
    survey_answer,
)
from schemas.directory import Directory
from schemas.ids import Priority

SOURCE: Final = "servicenow"
_PRIORITIES: Final[Mapping[str, Priority]] = {
    "1": "P1", "2": "P2", "3": "P3", "4": "P4", "5": "P4",
    "1 - critical": "P1", "2 - high": "P2", "3 - moderate": "P3", "4 - low": "P4", "5 - planning": "P4",
}  # fmt: skip
# Out-of-box state choices per table (display values are used as they come).
_STATES: Final[Mapping[str, Mapping[str, str]]] = {
    "incident": {"1": "new", "2": "in_progress", "3": "on_hold", "6": "resolved", "7": "closed", "8": "canceled"},
    "sc_req_item": {
        "-5": "pending_fulfilment", "1": "open", "2": "work_in_progress",
        "3": "closed_complete", "4": "closed_incomplete", "7": "closed_skipped",
    },
    "sn_hr_core_case": {
        "1": "draft", "10": "ready", "18": "work_in_progress", "20": "awaiting_acceptance",
        "24": "suspended", "3": "closed_complete", "4": "closed_incomplete", "7": "cancelled",
    },
}  # fmt: skip
_NOT_STARTED: Final = frozenset({"new", "draft"})
_CANCELLED: Final = frozenset({"canceled", "cancelled", "closed_incomplete", "closed_skipped"})
_AWAITING_CALLER: Final = "1"  # incident hold_reason
_REQUESTER_FIELDS: Final = ("caller_id", "opened_for", "requested_for", "opened_by")


def adapt(payload: Mapping[str, Any], directory: Directory) -> list[Event]:
    """Canonical events for one record, survey result, or Table API envelope of them."""
    result = payload.get("result", payload)
    records = result if isinstance(result, list) else [result]
    return [event for record in records for event in _record_events(record, directory)]


def _record_events(record: Mapping[str, Any], directory: Directory) -> list[Event]:
    sys_id = _value(get(record, "sys_id"))
    if "actual_value" in record:
        return [_survey_event(record, sys_id, directory)]
    if not present(_ref(record.get("assignment_group"))):
        return []
    ticket = _ticket(record, sys_id, directory)
    state = _state(record)
    events = [ticket.event("request.opened", _time(record, "opened_at"))]
    if reopened_at := _optional_time(record, "reopened_time"):
        events.append(ticket.event("request.reopened", reopened_at, _value(record.get("reopen_count"))))
    closed_at = _optional_time(record, "closed_at")
    resolved_at = _optional_time(record, "resolved_at") or (closed_at if state not in _CANCELLED else None)
    if resolved_at:
        events.append(ticket.event("request.resolved", resolved_at, f"{resolved_at:%Y%m%dT%H%M%SZ}"))
    if closed_at:
        events.append(ticket.event("request.closed", closed_at, f"{closed_at:%Y%m%dT%H%M%SZ}"))
    if not (resolved_at or closed_at) and state not in _NOT_STARTED:
        updated = _time(record, "sys_updated_on")
        started = min(_optional_time(record, "work_start") or updated, updated)
        events.append(ticket.event("request.responded", started))
        modification = _value(get(record, "sys_mod_count"))
        events.append(ticket.event("request.status_changed", updated, modification, status=status(state)))
    return events


def _survey_event(result: Mapping[str, Any], sys_id: str, directory: Directory) -> Event:
    score = integer(_value(get(result, "actual_value")), "actual_value")
    answered = _time(result, "sys_created_on")
    customer = resolve_department(
        directory,
        SOURCE,
        "customer",
        ("department", "user.department", _ref(result.get("user.department"))),
        ("requester", "user", _value(result.get("user"))),
    )
    extra = attributes({"question": _ref(result.get("metric")), "assessment": _ref(result.get("instance"))})
    comment = _ref(result.get("string_value")) or None
    if _ref(get(result, "source_table")) == "cmn_department":
        about = ("department", "source_id", _ref(get(result, "source_id")))
        provider = resolve_department(directory, SOURCE, "provider", about)
        event_id = stable_id(SOURCE, "survey.answered", sys_id)
        return survey_answer(SOURCE, event_id, answered, provider, customer, score, comment, extra)
    provider = resolve_department(directory, SOURCE, "provider", _group(result))
    task = Ticket(SOURCE, _value(get(result, "source_id")), provider, customer, None, extra)
    return task.event("feedback.submitted", answered, sys_id, csat=score, comment=comment)


def _ticket(record: Mapping[str, Any], sys_id: str, directory: Directory) -> Ticket:
    requester_field, requester = first_present(record, *_REQUESTER_FIELDS) or (_REQUESTER_FIELDS[0], None)
    department = record.get(f"{requester_field}.department") or opt(requester, "department")
    customer = resolve_department(
        directory,
        SOURCE,
        "customer",
        ("department", f"{requester_field}.department", _ref(department)),
        ("requester", requester_field, _value(requester)),
    )
    vendor_priority = _value(record.get("priority"))
    return Ticket(
        SOURCE,
        sys_id,
        resolve_department(directory, SOURCE, "provider", _group(record)),
        customer,
        priority(vendor_priority, _PRIORITIES),
        attributes(
            {
                "ticket": _ref(record.get("number")),
                "table": _value(record.get("sys_class_name")),
                "category": _ref(record.get("category")),
                "vendor_priority": vendor_priority,
                "made_sla": _ref(record.get("made_sla")),
            }
        ),
    )


def _state(record: Mapping[str, Any]) -> str:
    """The state's name: display values as sent, out-of-box codes translated per table."""
    code = str(_value(record.get("state")) or "")
    name = slug(_STATES.get(str(_value(record.get("sys_class_name"))), {}).get(code, code or "unknown"))
    if name == "on_hold" and str(_value(record.get("hold_reason"))) == _AWAITING_CALLER:
        return "awaiting_caller"
    return name


def _group(record: Mapping[str, Any]) -> Candidate:
    return ("assignment_group", "assignment_group", _ref(record.get("assignment_group")))


def _time(record: Mapping[str, Any], field: str) -> datetime:
    return parse_time(_value(get(record, field)), field, naive_zone=UTC)


def _optional_time(record: Mapping[str, Any], field: str) -> datetime | None:
    return _time(record, field) if present(_value(record.get(field))) else None


def _value(value: Any) -> Any:
    """The internal value of a field: codes, ids, counts and UTC times."""
    return _ref(value, prefer="value")


def _ref(value: Any, prefer: str = "display_value") -> Any:
    """A reference or choice field's value: plain text, or an object with display_value / value.

    Display values suit names (groups, departments); internal values suit codes, ids and times
    (a date-time's display value is in the sending user's timezone).
    """
    if isinstance(value, Mapping):
        return value.get(prefer) or value.get("value") or value.get("display_value")
    return value
