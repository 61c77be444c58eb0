"""Template adapter: copy this module to map a new ticketing system (Four Keys' new-source-template).

To add a source:

1. Copy this file to ``producers/sources/<vendor>.py`` and set ``SOURCE``: the name events carry and
   the directory's mappings use.
2. Decide the departments. Which payload field names the provider (a queue, group, project) and which
   the customer (the requester's department or organisation; the requester as a fallback)? Add the
   values to the directory: ``mappings: [{source: <SOURCE>, field: <field>, values: [...]}]``.
   :func:`~producers.sources.common.resolve_department` takes candidates in order; an unmapped value
   raises ``UnmappedValue`` naming it, a payload without any raises ``AdapterError``.
3. Decide which vendor events become which canonical events, and when each happened. Parse times with
   ``parse_time``: text without an offset is rejected unless the vendor documents its zone.
4. Derive event ids from the vendor's own ids (``Ticket.event`` prefixes the request id and event
   type), so a retried webhook repeats its event_id and the consumer drops the copy.
5. Write fixtures shaped like the vendor's documented payloads in ``tests/fixtures/sources/<vendor>/``
   and tests in ``tests/unit/test_sources_<vendor>.py``; register ``adapt`` in ``ADAPTERS``
   (``producers/sources/__init__.py``).

This template maps a generic ticket webhook, the kind a home-grown tool sends::

    {"event": "created" | "status_changed" | "commented" | "resolved" | "closed" | "reopened" | "rated",
     "event_id": "e-981", "at": "2026-03-02T09:15:00+01:00",
     "ticket": {"id": "42", "queue": "IT", "requester_department": "Finance", "priority": "high"},
     "status": "waiting for customer", "by_agent": true, "rating": 4, "comment": "quick, thanks"}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from producers.sources.common import (
    Event,
    Ticket,
    get,
    integer,
    opt,
    parse_time,
    priority,
    resolve_department,
    status,
)
from schemas.directory import Directory
from schemas.ids import Priority

SOURCE: Final = "template"
_PRIORITIES: Final[Mapping[str, Priority]] = {"urgent": "P1", "high": "P2", "normal": "P3", "low": "P4"}
_MILESTONES: Final = {
    "created": "request.opened",
    "resolved": "request.resolved",
    "closed": "request.closed",
    "reopened": "request.reopened",
}


def adapt(payload: Mapping[str, Any], directory: Directory) -> list[Event]:
    """Canonical events for one payload of the generic ticket webhook; [] for events we do not measure."""
    kind = get(payload, "event")
    if kind == "commented" and payload.get("by_agent") is not True:
        return []  # the customer's own comment is not a response
    at = parse_time(get(payload, "at"), "at")
    event_id = get(payload, "event_id")
    ticket = Ticket(
        SOURCE,
        str(get(payload, "ticket", "id")),
        resolve_department(
            directory, SOURCE, "provider", ("queue", "ticket.queue", opt(payload, "ticket", "queue"))
        ),
        resolve_department(
            directory,
            SOURCE,
            "customer",
            ("department", "ticket.requester_department", opt(payload, "ticket", "requester_department")),
        ),
        priority(opt(payload, "ticket", "priority"), _PRIORITIES),
    )
    if kind in _MILESTONES:
        return [ticket.event(_MILESTONES[kind], at, event_id)]
    if kind == "commented":
        return [ticket.event("request.responded", at, event_id)]
    if kind == "status_changed":
        return [ticket.event("request.status_changed", at, event_id, status=status(get(payload, "status")))]
    if kind == "rated":
        rating = integer(get(payload, "rating"), "rating")
        return [
            ticket.event("feedback.submitted", at, event_id, csat=rating, comment=opt(payload, "comment"))
        ]
    return []
