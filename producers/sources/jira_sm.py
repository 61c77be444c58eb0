"""Jira Service Management webhooks -> canonical events.

Departments (mappings under source ``jira-sm``):

- provider: the project key, mapping field ``project`` (a service desk project per department);
- customer: the requester's organisation, JSM's *Organizations* field (``customfield_10002`` on Cloud;
  pass ``organizations_field=`` for another id; a *Department* select field works too), mapping field
  ``department``; when the request has none, the reporter's account id (Server: user name), mapping
  field ``requester``.

``request_id`` is ``jira-sm:<issue id>`` (the id survives moving an issue; the key is ``attributes.ticket``).

Events:

- ``jira:issue_created`` -> request.opened at ``fields.created``.
- ``jira:issue_updated`` whose changelog changes the status, at ``fields.updated``: resolution cleared
  -> request.reopened; resolution set (or status category *done* where the project sets none) ->
  request.resolved; status *Closed* -> request.closed; otherwise request.status_changed ('Waiting for
  customer' -> waiting_on_customer, 'Waiting for support' / 'In Progress' -> in_progress, others
  slugged). Updates without a status change -> no event.
- ``comment_created``: a public comment (``jsdPublic`` not false) by someone other than the reporter
  (when the payload names no reporter: by the assignee) -> request.responded at ``comment.created``.
  Jira Cloud trims the issue in comment webhooks (no reporter, no organisation): those are rejected
  because they cannot name the customer; send comments through an automation rule with the full issue.
- CSAT: JSM has no feedback webhook. A poller or automation posts ``{"webhookEvent":
  "deptpulse:jsm_feedback", "timestamp": <epoch ms>, "issue": {...}, "feedback": <the body of GET
  /rest/servicedeskapi/request/{key}/feedback: {"type": "csat", "rating": 1-5, "comment": {"body"}}>}``
  -> feedback.submitted.

JSM SLA fields (any field holding an SLA value) go to attributes ``sla.<name>.breached``,
``.goal_seconds``, ``.elapsed_seconds``, ``.breach_time``. Event ids are ``<request_id>:<event type>``
plus the changelog or comment id: a retried webhook repeats them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from producers.sources.common import (
    Event,
    Ticket,
    attributes,
    get,
    integer,
    opt,
    parse_time,
    present,
    priority,
    resolve_department,
    slug,
    status,
)
from schemas.directory import Directory
from schemas.ids import Priority

SOURCE: Final = "jira-sm"
ORGANIZATIONS_FIELD: Final = "customfield_10002"
FEEDBACK_EVENT: Final = "deptpulse:jsm_feedback"
_PRIORITIES: Final[Mapping[str, Priority]] = {
    "highest": "P1", "blocker": "P1", "critical": "P1",
    "high": "P2", "major": "P2",
    "medium": "P3",
    "low": "P4", "minor": "P4", "lowest": "P4", "trivial": "P4",
    # Jira's default priority ids: for renamed or translated priorities ("Обычный" is id 3)
    "1": "P1", "2": "P2", "3": "P3", "4": "P4", "5": "P4",
}  # fmt: skip


def adapt(
    payload: Mapping[str, Any], directory: Directory, *, organizations_field: str = ORGANIZATIONS_FIELD
) -> list[Event]:
    """Canonical events for one JSM webhook payload; [] for webhooks that measure nothing."""
    kind = get(payload, "webhookEvent")
    if kind == "jira:issue_created":
        created = parse_time(get(payload, "issue", "fields", "created"), "issue.fields.created")
        return [_ticket(payload, directory, organizations_field).event("request.opened", created)]
    if kind == "jira:issue_updated":
        return _status_events(payload, directory, organizations_field)
    if kind == "comment_created":
        return _response_events(payload, directory, organizations_field)
    if kind == FEEDBACK_EVENT:
        rating = integer(get(payload, "feedback", "rating"), "feedback.rating")
        submitted = parse_time(get(payload, "timestamp"), "timestamp")
        ticket = _ticket(payload, directory, organizations_field)
        comment = opt(payload, "feedback", "comment", "body")
        return [ticket.event("feedback.submitted", submitted, csat=rating, comment=comment)]
    return []


def _status_events(payload: Mapping[str, Any], directory: Directory, organizations_field: str) -> list[Event]:
    changes = {
        slug(item.get("fieldId") or item.get("field") or ""): item
        for item in opt(payload, "changelog", "items") or []
        if isinstance(item, Mapping)
    }
    if "status" not in changes:
        return []
    ticket = _ticket(payload, directory, organizations_field)
    updated = parse_time(get(payload, "issue", "fields", "updated"), "issue.fields.updated")
    changelog_id = get(payload, "changelog", "id")
    new_status = changes["status"].get("toString") or get(payload, "issue", "fields", "status", "name")
    resolution = changes.get("resolution", {})
    if present(resolution.get("from")) and not present(resolution.get("to")):
        return [ticket.event("request.reopened", updated, changelog_id)]
    events = []
    category = opt(payload, "issue", "fields", "status", "statusCategory", "key")
    unresolved_project = opt(payload, "issue", "fields", "resolution") is None
    if present(resolution.get("to")) or (category == "done" and unresolved_project):
        events.append(ticket.event("request.resolved", updated, changelog_id))
    if slug(new_status) == "closed":
        events.append(ticket.event("request.closed", updated, changelog_id))
    return events or [
        ticket.event("request.status_changed", updated, changelog_id, status=status(new_status))
    ]


def _response_events(
    payload: Mapping[str, Any], directory: Directory, organizations_field: str
) -> list[Event]:
    get(payload, "issue", "id")  # Jira Server's comment webhook has no issue: nothing to attribute it to
    if opt(payload, "comment", "jsdPublic") is False:
        return []  # an internal note, not an answer to the customer
    author = _user_id(opt(payload, "comment", "author"))
    reporter = _user_id(opt(payload, "issue", "fields", "reporter"))
    agent = (
        author != reporter if reporter else author == _user_id(opt(payload, "issue", "fields", "assignee"))
    )
    if not agent:
        return []
    created = parse_time(get(payload, "comment", "created"), "comment.created")
    ticket = _ticket(payload, directory, organizations_field)
    return [ticket.event("request.responded", created, get(payload, "comment", "id"))]


def _ticket(payload: Mapping[str, Any], directory: Directory, organizations_field: str) -> Ticket:
    fields = opt(payload, "issue", "fields") or {}
    provider = resolve_department(
        directory, SOURCE, "provider", ("project", "issue.fields.project.key", opt(fields, "project", "key"))
    )
    customer = resolve_department(
        directory,
        SOURCE,
        "customer",
        ("department", f"issue.fields.{organizations_field}", _display(fields.get(organizations_field))),
        ("requester", "issue.fields.reporter", _user_id(fields.get("reporter"))),
    )
    priority_name, priority_id = opt(fields, "priority", "name"), opt(fields, "priority", "id")
    request_type = next(
        (value["requestType"] for value in fields.values() if _has(value, "requestType")), None
    )
    return Ticket(
        SOURCE,
        get(payload, "issue", "id"),
        provider,
        customer,
        priority(priority_name, _PRIORITIES) or priority(priority_id, _PRIORITIES),
        attributes(
            {
                "ticket": opt(payload, "issue", "key"),
                "issue_type": opt(fields, "issuetype", "name"),
                "request_type": _display(request_type),
                "vendor_priority": priority_name,
                **_sla_attributes(fields),
            }
        ),
    )


def _sla_attributes(fields: Mapping[str, Any]) -> dict[str, Any]:
    """JSM SLA fields ('Time to first response', ...): the ongoing cycle, else the last completed one."""
    found: dict[str, Any] = {}
    for value in fields.values():
        if not (_has(value, "ongoingCycle") or _has(value, "completedCycles")) or not _has(value, "name"):
            continue
        cycle = value.get("ongoingCycle") or (value.get("completedCycles") or [None])[-1]
        if not isinstance(cycle, Mapping):
            continue
        breach_ms = opt(cycle, "breachTime", "epochMillis")
        prefix = f"sla.{slug(value['name'])}"
        found |= {
            f"{prefix}.breached": cycle.get("breached"),
            f"{prefix}.goal_seconds": _seconds(opt(cycle, "goalDuration", "millis")),
            f"{prefix}.elapsed_seconds": _seconds(opt(cycle, "elapsedTime", "millis")),
            f"{prefix}.breach_time": breach_ms and parse_time(breach_ms, "breachTime").isoformat(),
        }
    return found


def _seconds(millis: Any) -> int | None:
    return None if millis is None else integer(millis, "millis") // 1000


def _has(value: Any, key: str) -> bool:
    return isinstance(value, Mapping) and present(value.get(key))


def _display(value: Any) -> Any:
    """A select-like field's display value: the first of a list; an object's 'name' or 'value'."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, Mapping):
        value = value.get("name") or value.get("value")
    return value


def _user_id(user: Any) -> str | None:
    """Cloud users have an accountId; Server / Data Center users a name (or key)."""
    if not isinstance(user, Mapping):
        return None
    found = user.get("accountId") or user.get("name") or user.get("key")
    return None if found is None else str(found)
