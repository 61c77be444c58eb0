"""The canonical service event, version 1: the contract between integrations and deptpulse.

A discriminated union on ``event_type``; strict types; timestamps timezone-aware and normalised
to UTC. Parse bytes with :func:`parse_event` (JSON, the wire format) and Python values with
:func:`validate_event`; pass a :class:`~schemas.directory.Directory` to also check department
and service ids. Every rejection is an :class:`InvalidEvent` whose reason names the field.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas.ids import DepartmentId, Identifier, KnownIds, Priority

SCHEMA_VERSION: Final = 1




class _EventBase(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    schema_version: Literal[1] = Field(description="Version of this contract; always 1.")
    event_id: Identifier = Field(description="Unique per event: the idempotency key (1-128 chars).")
    occurred_at: AwareDatetime = Field(
        description="When it happened: RFC 3339 with an offset; stored in UTC."
    )
    source: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="Publishing system, e.g. jira-sm, servicenow, zendesk, hr-survey."
    )
    provider_department: DepartmentId = Field(description="Department that serves (directory id).")
    customer_department: DepartmentId = Field(description="Department that is served (directory id).")
    service_category: Identifier | None = Field(default=None, description="A service id from the directory.")
    priority: Priority | None = None
    attributes: dict[
        Annotated[str, StringConstraints(max_length=128)], Annotated[str, StringConstraints(max_length=4096)]
    ] = Field(default_factory=dict, max_length=64, description="Extra string fields: kept, not aggregated.")

    @field_validator("occurred_at", mode="after")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        try:
            return value.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+00:01 falls before year 1 in UTC
            raise ValueError("timestamp out of range once converted to UTC") from None

    @field_validator("provider_department", "customer_department", mode="after")
    @classmethod
    def _known_department(cls, value: str | None, info: ValidationInfo) -> str | None:
        directory = _directory_of(info)
        if value is not None and directory is not None and not directory.has_department(value):
            raise ValueError(f"unknown department {value!r} (not in the directory)")
        return value

    @field_validator("service_category", mode="after")
    @classmethod
    def _known_service(cls, value: str | None, info: ValidationInfo) -> str | None:
        directory = _directory_of(info)
        if value is not None and directory is not None and not directory.has_service(value):
            raise ValueError(f"unknown service {value!r} (not in the directory)")
        return value

    @property
    def partition_key(self) -> str:
        """Kafka key: one request's lifecycle stays in one partition, in order."""
        return self.provider_department


class _RequestEventBase(_EventBase):
    request_id: Identifier = Field(description="The request (ticket) this event belongs to.")

    @property
    def partition_key(self) -> str:
        return self.request_id


class RequestOpened(_RequestEventBase):
    event_type: Literal["request.opened"]


class RequestResponded(_RequestEventBase):
    """A provider reply; the first one ends first-response time."""

    event_type: Literal["request.responded"]


class RequestStatusChanged(_RequestEventBase):
    """``waiting_on_customer`` pauses the SLA clock, ``in_progress`` resumes it; others are kept."""

    event_type: Literal["request.status_changed"]
    status: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class RequestResolved(_RequestEventBase):
    event_type: Literal["request.resolved"]


class RequestReopened(_RequestEventBase):
    event_type: Literal["request.reopened"]


class RequestClosed(_RequestEventBase):
    event_type: Literal["request.closed"]


class FeedbackSubmitted(_RequestEventBase):
    """CSAT for one request: 1 (very dissatisfied) to 5 (very satisfied)."""

    event_type: Literal["feedback.submitted"]
    csat: Annotated[int, Field(ge=1, le=5)]
    comment: Annotated[str, StringConstraints(max_length=4096)] | None = None


class SurveyAnswered(_EventBase):
    """A periodic internal-customer survey about a provider, not tied to a request (NPS 0-10)."""

    event_type: Literal["survey.answered"]
    score: Annotated[int, Field(ge=0, le=10)]
    comment: Annotated[str, StringConstraints(max_length=4096)] | None = None
    question_id: Identifier | None = Field(
        default=None,
        description="The survey question answered, e.g. recruiting-speed (report --by question).",
    )
    campaign_id: Identifier | None = Field(
        default=None, description="The survey round (campaign) this answer belongs to; see survey.invited."
    )
    respondent_id: Identifier | None = Field(
        default=None,
        description="A pseudonymous id of who answered: counts distinct respondents (privacy minimum).",
    )


class SurveyInvited(_EventBase):
    """Invitations of a survey campaign: ``invited`` people of the customer department were asked
    about the provider (one event per invitee with the default 1, or one event with the count)."""

    event_type: Literal["survey.invited"]
    campaign_id: Identifier = Field(description="The survey round; answers name it in campaign_id.")
    invited: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        default=1, description="How many people this event invites (1-1,000,000)."
    )


Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]


class ActionRecorded(_EventBase):
    """An improvement action a provider department took (e.g. "recruiting reorganised"), whose
    effect deptpulse measures: ``started_on`` against the figures before and after it."""

    event_type: Literal["action.recorded"]
    customer_department: DepartmentId | None = Field(  # type: ignore[assignment]
        default=None, description="The customer department it is for; absent: every customer."
    )
    title: Title = Field(description="What was done, 1-200 characters.")
    started_on: date = Field(
        description="The day the change took effect (YYYY-MM-DD); not after occurred_at."
    )
    owner: Email | None = Field(default=None, description="Who owns the action (e-mail).")

    @model_validator(mode="after")
    def _started_when_recorded(self) -> ActionRecorded:
        # A day of slack: occurred_at is UTC, started_on is the provider's local date.
        if self.started_on > (self.occurred_at + timedelta(days=1)).date():
            raise ValueError(
                f"started_on {self.started_on.isoformat()} is in the future of its recording "
                f"({self.occurred_at.date().isoformat()}): record an action once it has started"
            )
        return self


RequestEvent = (
    RequestOpened
    | RequestResponded
    | RequestStatusChanged
    | RequestResolved
    | RequestReopened
    | RequestClosed
    | FeedbackSubmitted
)
# Events about a provider but neither a request nor a score: stored, never aggregated into buckets.
RecordEvent = SurveyInvited | ActionRecorded
Event = RequestEvent | SurveyAnswered | RecordEvent
ServiceEvent = Annotated[Event, Field(discriminator="event_type")]
EVENT_TYPES: Final = (
    "request.opened",
    "request.responded",
    "request.status_changed",
    "request.resolved",
    "request.reopened",
    "request.closed",
    "feedback.submitted",
    "survey.answered",
    "survey.invited",
    "action.recorded",
)
EVENT_ADAPTER: Final[TypeAdapter[Event]] = TypeAdapter(ServiceEvent)


class InvalidEvent(ValueError):
    """An event that breaks the contract; ``reason`` names the field(s) and what is wrong."""

    def __init__(self, reason: str, kind: str = "schema") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind  # "decode" (not JSON / not UTF-8), "schema", "unknown_department"


def parse_event(data: bytes | str, directory: KnownIds | None = None) -> Event:
    """Validate one JSON-encoded event (the wire format); raise :class:`InvalidEvent`."""
    try:
        return EVENT_ADAPTER.validate_json(data, context=_context(directory))
    except ValidationError as exc:
        raise _invalid(exc) from None


def validate_event(value: Any, directory: KnownIds | None = None) -> Event:
    """Validate an event given as Python values (datetimes, not strings); raise :class:`InvalidEvent`."""
    if isinstance(value, _EventBase):
        value = value.model_dump()
    try:
        return EVENT_ADAPTER.validate_python(value, context=_context(directory))
    except ValidationError as exc:
        raise _invalid(exc) from None


def event_to_json(event: Event) -> bytes:
    """The canonical wire encoding (UTC timestamps, no nulls for absent optionals)."""
    return event.__pydantic_serializer__.to_json(event, exclude_none=True)


def _context(directory: KnownIds | None) -> dict[str, Any] | None:
    return None if directory is None else {"directory": directory}


def _directory_of(info: ValidationInfo) -> KnownIds | None:
    context = info.context
    return context.get("directory") if isinstance(context, dict) else None


def _invalid(exc: ValidationError) -> InvalidEvent:
    errors = exc.errors(include_url=False, include_input=False)
    parts = []
    kind = "schema"
    for error in errors[:5]:
        loc = [str(part) for part in error["loc"]]
        if loc and loc[0] in EVENT_TYPES:  # the union's tag; the field is what follows
            loc = loc[1:]
        location = ".".join(loc) or ("event_type" if error["type"].startswith("union_tag") else "event")
        message = error["msg"]
        if error["type"] == "json_invalid":
            kind = "decode"
        elif "unknown department" in message:
            kind = "unknown_department"
        parts.append(f"{location}: {message}")
    if len(errors) > 5:
        parts.append(f"... and {len(errors) - 5} more")
    return InvalidEvent("; ".join(parts), kind=kind)
