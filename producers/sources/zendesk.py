"""Zendesk ticket events and satisfaction ratings -> canonical events.

Payloads:

- event webhooks: ``{"type": "zen:event-type:ticket.<event>", "id", "time", "subject", "detail": <the
  ticket>, "event": {...}}``;
- Zendesk Integration Services (and EventBridge) ticket events: ``{"input": {"ticket_event": {"meta",
  "type", "ticket", ...}}}`` (EventBridge: ``{"detail": {"ticket_event": ...}}``);
- satisfaction ratings, bare or as ``{"satisfaction_rating": {...}}`` (the API's and a rating trigger's shape).

Departments (mappings under source ``zendesk``; webhooks carry ids, not names): provider = the
ticket's ``group_id``, mapping field ``group``; customer = ``organization_id``, mapping field
``organization``, else ``requester_id``, mapping field ``requester``. ``request_id`` is
``zendesk:<ticket id>``.

Events: ticket created -> request.opened; status changed to solved -> request.resolved, to closed ->
request.closed, from solved or closed back to an open status -> request.reopened, otherwise
request.status_changed (pending -> waiting_on_customer, open -> in_progress, hold stays hold); a
public comment by staff other than the requester -> request.responded; other ticket events -> none.

Ratings -> feedback.submitted: ``good`` -> CSAT 5 and ``bad`` -> CSAT 1 (the legacy scale has two
points; we take the ends of ours rather than invent a middle); a numeric score 1-5 (the newer CSAT)
as is; ``offered`` / ``unoffered`` (no answer yet) -> none.

Event ids: ``<request_id>:<event type>:`` plus the webhook's event id (Zendesk repeats it on a
retry), the ZIS sequence id and position, or the rating id (a changed rating repeats its id, so the
first answer counts).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from producers.sources.common import (
    AdapterError,
    Event,
    Ticket,
    attributes,
    get,
    integer,
    opt,
    parse_time,
    priority,
    resolve_department,
    slug,
    status,
    text,
)
from schemas.directory import Directory
from schemas.ids import Priority

SOURCE: Final = "zendesk"
_WEBHOOK_PREFIX: Final = "zen:event-type:ticket."
_PRIORITIES: Final[Mapping[str, Priority]] = {"urgent": "P1", "high": "P2", "normal": "P3", "low": "P4"}
_LEGACY_SCORES: Final[Mapping[str, int | None]] = {
    "good": 5, "good_with_comment": 5, "bad": 1, "bad_with_comment": 1, "offered": None, "unoffered": None,
}  # fmt: skip
_FINISHED: Final = ("solved", "closed")


def adapt(payload: Mapping[str, Any], directory: Directory) -> list[Event]:
    """Canonical events for one Zendesk payload; [] for events that measure nothing."""
    rating = payload.get("satisfaction_rating", payload)
    if isinstance(rating, Mapping) and "score" in rating and "ticket_id" in rating:
        return _rating_events(rating, directory)
    ticket_event = opt(payload, "input", "ticket_event") or opt(payload, "detail", "ticket_event")
    if ticket_event is not None:  # ZIS / EventBridge
        sequence = (
            get(ticket_event, "meta", "sequence", "id"),
            get(ticket_event, "meta", "sequence", "position"),
        )
        return _ticket_events(
            kind=slug(get(ticket_event, "type")).removeprefix("ticket_"),
            ticket=get(ticket_event, "ticket"),
            path="ticket_event.ticket",
            at=parse_time(get(ticket_event, "meta", "occurred_at"), "meta.occurred_at"),
            vendor_ids=sequence,
            change=ticket_event,
            directory=directory,
        )
    kind = text(get(payload, "type"))
    if not kind.startswith(_WEBHOOK_PREFIX):
        return []  # user, organisation, article... events
    return _ticket_events(
        kind=kind.removeprefix(_WEBHOOK_PREFIX),
        ticket=get(payload, "detail"),
        path="detail",
        at=parse_time(get(payload, "time"), "time"),
        vendor_ids=(get(payload, "id"),),
        change=opt(payload, "event") or {},
        directory=directory,
    )


def _ticket_events(
    *,
    kind: str,
    ticket: Mapping[str, Any],
    path: str,
    at: datetime,
    vendor_ids: tuple[Any, ...],
    change: Mapping[str, Any],
    directory: Directory,
) -> list[Event]:
    """One ticket event, normalised: ``change`` holds ``previous`` / ``current`` / ``comment``."""
    if kind == "created":
        return [_ticket(ticket, path, directory).event("request.opened", at, *vendor_ids)]
    if kind == "status_changed":
        current, previous = slug(get(change, "current")), slug(opt(change, "previous") or "")
        request = _ticket(ticket, path, directory)
        if current in _FINISHED:
            event_type = "request.resolved" if current == "solved" else "request.closed"
            return [request.event(event_type, at, *vendor_ids)]
        if previous in _FINISHED:
            return [request.event("request.reopened", at, *vendor_ids)]
        return [request.event("request.status_changed", at, *vendor_ids, status=status(current))]
    if kind in (
        "comment_added",
        "comment_created",
    ):  # the webhook's name; ZIS docs title it "Comment Created"
        comment = get(change, "comment")
        by_staff = opt(comment, "author", "is_staff") is True and opt(comment, "is_public") is not False
        if by_staff and str(opt(comment, "author", "id")) != str(ticket.get("requester_id")):
            return [_ticket(ticket, path, directory).event("request.responded", at, *vendor_ids)]
    return []


def _rating_events(rating: Mapping[str, Any], directory: Directory) -> list[Event]:
    score = get(rating, "score")
    if isinstance(score, str) and score.lower() in _LEGACY_SCORES:
        csat = _LEGACY_SCORES[score.lower()]
    elif isinstance(score, int | str):
        csat = integer(score, "score")
    else:
        raise AdapterError(f"invalid score {score!r}: expected good, bad or 1-5")
    if csat is None:
        return []
    rated = parse_time(opt(rating, "updated_at") or get(rating, "created_at"), "updated_at")
    ticket = _ticket(rating, "satisfaction_rating", directory, ticket_key="ticket_id")
    comment = opt(rating, "comment")
    return [
        ticket.event(
            "feedback.submitted", rated, get(rating, "id"), csat=csat, comment=comment and str(comment)
        )
    ]


def _ticket(ticket: Mapping[str, Any], path: str, directory: Directory, *, ticket_key: str = "id") -> Ticket:
    provider = resolve_department(
        directory, SOURCE, "provider", ("group", f"{path}.group_id", _zendesk_id(ticket.get("group_id")))
    )
    customer = resolve_department(
        directory,
        SOURCE,
        "customer",
        ("organization", f"{path}.organization_id", _zendesk_id(ticket.get("organization_id"))),
        ("requester", f"{path}.requester_id", _zendesk_id(ticket.get("requester_id"))),
    )
    return Ticket(
        SOURCE,
        str(get(ticket, ticket_key)),
        provider,
        customer,
        priority(ticket.get("priority"), _PRIORITIES),
        attributes(
            {
                "vendor_priority": ticket.get("priority"),
                "ticket_type": ticket.get("type"),
                "channel": opt(ticket, "via", "channel"),
                "reason": ticket.get("reason"),  # ratings: why the customer chose bad
            }
        ),
    )


def _zendesk_id(value: Any) -> Any:
    """Zendesk writes "no organisation / group" as 0 or "0" in event payloads."""
    return None if value in (0, "0") else value
