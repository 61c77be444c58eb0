"""Shared mapping logic of the source adapters: what every vendor needs, written once.

An adapter is a pure function ``adapt(payload, directory) -> list[event]`` (no I/O, no clock). It
raises :class:`AdapterError` when the payload lacks or garbles a field it needs (the message names the
field) and :class:`~schemas.directory.UnmappedValue` when the directory maps no department for a
value (the message names the value and the mapping). The helpers below keep adapters short and alike:

- :func:`get` / :func:`opt` / :func:`first_present`: read payload fields; null, "", [] and {} are absent.
- :func:`resolve_department`: the directory's mappings; the first present candidate value decides.
- :func:`parse_time`: ISO 8601 text or epoch milliseconds -> timezone-aware UTC.
- :func:`stable_id`: ids derived from the vendor's own ids, so a retried webhook repeats its event_id.
- :func:`priority`, :func:`status`, :func:`integer`, :func:`attributes`: value conversions.
- :class:`Ticket`: what all events of one request share; ``ticket.event(...)`` builds a validated event.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, Final, TypeAlias

from schemas.directory import Directory, UnmappedValue
from schemas.events import Event as Event  # re-exported: the event union every adapter returns
from schemas.events import (
    InvalidEvent,
    validate_event,
)
from schemas.ids import IN_PROGRESS, WAITING_ON_CUSTOMER, Priority

Adapter: TypeAlias = Callable[[Mapping[str, Any], Directory], list[Event]]
# (mapping field, payload path named in errors, value) for resolve_department
Candidate: TypeAlias = tuple[str, str, Any]

MAX_ID_LENGTH: Final = 128
MAX_ATTRIBUTE_LENGTH: Final = 4096

# Vendor statuses (slugged) that pause or resume the SLA clock; any other status keeps its slug.
STATUS_SYNONYMS: Final[Mapping[str, str]] = {
    "waiting_for_customer": WAITING_ON_CUSTOMER,  # Jira Service Management
    "pending": WAITING_ON_CUSTOMER,  # Zendesk: waiting on the requester
    "awaiting_caller": WAITING_ON_CUSTOMER,  # ServiceNow incident on hold, reason 1
    "awaiting_acceptance": WAITING_ON_CUSTOMER,  # ServiceNow HR case: the employee must accept
    "waiting_for_support": IN_PROGRESS,  # JSM: the customer answered
    "open": IN_PROGRESS,  # Zendesk and Jira: being worked on
    "work_in_progress": IN_PROGRESS,  # ServiceNow requested item and HR case
}


class AdapterError(ValueError):
    """A payload the adapter cannot map: the message names the missing or invalid field."""


# What an adapter raises for a bad payload; anything else is a bug and should surface.
REJECTIONS: Final = (AdapterError, UnmappedValue)


def present(value: Any) -> bool:
    """Vendors spell "no value" as null, "" (ServiceNow), [] or {}: all count as absent."""
    return value is not None and value != "" and value != [] and value != {}


def opt(payload: Any, *keys: str) -> Any:
    """The value under ``keys`` (one key per nesting level), or None when absent."""
    value = payload
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value if present(value) else None


def get(payload: Any, *keys: str) -> Any:
    """The value under ``keys``; :class:`AdapterError` naming the dotted path when absent."""
    value = opt(payload, *keys)
    if value is None:
        raise AdapterError(f"missing field {'.'.join(keys)!r}")
    return value


def first_present(payload: Mapping[str, Any], *keys: str) -> tuple[str, Any] | None:
    """The first of ``keys`` with a present value, as (key, value)."""
    return next(((key, payload[key]) for key in keys if present(payload.get(key))), None)


def text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def slug(value: Any) -> str:
    """'Waiting for customer' -> 'waiting_for_customer' (any script; punctuation becomes '_')."""
    return re.sub(r"\W+", "_", text(value).strip().lower()).strip("_") or text(value)


def resolve_department(directory: Directory, source: str, role: str, *candidates: Candidate) -> str:
    """Department id from the first candidate whose value is present.

    An unmapped value raises :class:`UnmappedValue` (no silent fall-through to the next candidate: a
    value the directory does not know is a gap to fix); no present value raises :class:`AdapterError`.
    """
    for mapping_field, _path, value in candidates:
        if present(value):
            return directory.resolve(source, mapping_field, text(value).strip())
    paths = " or ".join(repr(path) for _, path, _ in candidates)
    raise AdapterError(f"cannot tell the {role} department: the payload has no {paths}")


def parse_time(value: Any, path: str, *, naive_zone: tzinfo | None = None) -> datetime:
    """A timezone-aware UTC datetime from ISO 8601 text or epoch milliseconds (Jira's ``timestamp``).

    Text without an offset is read in ``naive_zone`` (ServiceNow: UTC); without one it is rejected,
    because guessing a zone would shift every duration measured from it.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(text(value).strip())
    except ValueError:
        raise AdapterError(f"invalid timestamp {path}={value!r}: expected ISO 8601") from None
    if parsed.tzinfo is None:
        if naive_zone is None:
            raise AdapterError(f"timestamp {path}={value!r} has no UTC offset")
        parsed = parsed.replace(tzinfo=naive_zone)
    return parsed.astimezone(UTC)


def stable_id(*parts: object) -> str:
    """Vendor ids joined by ':'; beyond 128 characters, the first part and a SHA-256 of the whole."""
    joined = ":".join(text(part) for part in parts)
    if len(joined) <= MAX_ID_LENGTH:
        return joined
    return f"{text(parts[0])[:48]}:sha256:{hashlib.sha256(joined.encode()).hexdigest()}"


def priority(value: Any, table: Mapping[str, Priority]) -> Priority | None:
    """P1-P4 through the vendor's table (lower-case keys); None when absent or unknown.

    Unknown priorities are not rejected: priority is optional and the raw value stays in attributes.
    """
    return table.get(text(value).strip().lower()) if present(value) else None


def status(value: Any) -> str:
    """Canonical status: waiting_on_customer / in_progress for the clock's synonyms, else the slug."""
    name = slug(value)
    return STATUS_SYNONYMS.get(name, name)[:64]


def integer(value: Any, path: str) -> int:
    """A whole number from a number or numeric text ('4', '4.0'); else AdapterError naming the path."""
    try:
        number = float(text(value).strip())
    except ValueError:
        number = math.nan
    if isinstance(value, bool) or not number.is_integer():
        raise AdapterError(f"invalid {path} {value!r}: expected a whole number")
    return int(number)


def attributes(values: Mapping[str, Any]) -> dict[str, str]:
    """Event attributes: the present values as text (booleans lower-case), cut to the contract's limits."""
    return {
        key[:128]: (text(value).lower() if isinstance(value, bool) else text(value))[:MAX_ATTRIBUTE_LENGTH]
        for key, value in values.items()
        if present(value)
    }


MAX_COMMENT: Final = 4096  # characters, the contract's limit
TRUNCATED_MARK: Final = "… [truncated]"


def fit_comment(comment: Any) -> Any:
    """A vendor's free text as the contract takes it: blank -> None, longer than the contract's
    limit -> cut with a visible mark. A 100 kB comment must not cost the CSAT score it came with."""
    if not isinstance(comment, str):
        return comment
    if not comment.strip():
        return None
    if len(comment) > MAX_COMMENT:
        return comment[: MAX_COMMENT - len(TRUNCATED_MARK)] + TRUNCATED_MARK
    return comment


def make_event(**fields: Any) -> Event:
    """Validate one event against the contract; a violation becomes an AdapterError naming the field.
    Comments are fitted to the contract first (:func:`fit_comment`)."""
    if "comment" in fields:
        fields["comment"] = fit_comment(fields["comment"])
    try:
        return validate_event({"schema_version": 1, **fields})
    except InvalidEvent as exc:
        raise AdapterError(f"the mapped event breaks the contract: {exc.reason}") from None


def survey_answer(
    source: str,
    event_id: str,
    occurred_at: datetime,
    provider_department: str,
    customer_department: str,
    score: int,
    comment: str | None = None,
    extra: Mapping[str, str] | None = None,
    *,
    service_category: str | None = None,
    question_id: str | None = None,
    campaign_id: str | None = None,
    respondent_id: str | None = None,
) -> Event:
    """A survey.answered event (NPS 0-10 about a provider, not tied to a request)."""
    return make_event(
        event_type="survey.answered",
        event_id=event_id,
        occurred_at=occurred_at,
        source=source,
        provider_department=provider_department,
        customer_department=customer_department,
        service_category=service_category,
        score=score,
        comment=comment,
        question_id=question_id,
        campaign_id=campaign_id,
        respondent_id=respondent_id,
        attributes=dict(extra or {}),
    )


@dataclass(frozen=True)
class Ticket:
    """What every event of one request shares; an adapter builds one per payload and emits from it."""

    source: str
    vendor_id: str  # the vendor's stable id of the request (not a key that changes when moved)
    provider_department: str
    customer_department: str
    priority: Priority | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def request_id(self) -> str:
        """``<source>:<vendor id>``: unique across sources that number their tickets alike."""
        return stable_id(self.source, self.vendor_id)

    def event(self, event_type: str, occurred_at: datetime, *vendor_ids: object, **fields: Any) -> Event:
        """One event of this request; event_id = request_id, event type and the vendor ids given."""
        return make_event(
            event_type=event_type,
            event_id=stable_id(self.request_id, event_type, *vendor_ids),
            occurred_at=occurred_at,
            source=self.source,
            request_id=self.request_id,
            provider_department=self.provider_department,
            customer_department=self.customer_department,
            priority=self.priority,
            attributes=dict(self.attributes),
            **fields,
        )
