"""Did an action work? Each recorded action's figures in the days before it started against the days
after it settled (``deptpulse actions list``, ``/api/v1/actions``, the scorecard page's table).

Windows are whole UTC days: ``window_days`` before the UTC midnight that starts ``started_on``, and
``window_days`` after ``settling_days`` more (defaults 28 and 7). The sums are the provider's
minute buckets, narrowed to the action's service and customer when it names them; the comparison,
its 95 % intervals and verdicts are :func:`stream_processors.core.effects.compare`'s. An action whose
after window has not ended is "measuring" and has no effect yet. Two actions of one provider whose
scopes meet (same service or customer, or one for all) and whose starts are closer than
``window_days + settling_days`` each fall inside the other's windows: both carry a note that their
effects cannot be separated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Literal, NamedTuple, Protocol

from clickhouse_connect.driver.client import Client
from pydantic import BaseModel, ConfigDict

from schemas import reads
from schemas.directory import Directory
from schemas.reads import with_provider_filter
from stream_processors.core import MinuteAggregate
from stream_processors.core.effects import Effect, compare
from stream_processors.scorecard.queries import SUMS, aggregate_from_row
from stream_processors.scorecard.service import check_department, policy_of

Status = Literal["measured", "measuring"]
DAY: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class RecordedAction:
    """An ``action.recorded`` event as storage holds it."""

    event_id: str
    provider_department: str
    customer_department: str | None  # None: every customer
    service_category: str | None  # None: every service
    title: str
    started_on: date
    owner: str | None
    recorded_at: datetime


class EffectWindows(NamedTuple):
    """``[before_since, before_until)`` against ``[after_since, after_until)``, UTC."""

    before_since: datetime
    before_until: datetime
    after_since: datetime
    after_until: datetime


def effect_windows(started_on: date, window_days: int, settling_days: int) -> EffectWindows:
    """The windows of an action that started on ``started_on`` (UTC midnight of that day)."""
    start = datetime.combine(started_on, time(), tzinfo=UTC)
    after_since = start + settling_days * DAY
    return EffectWindows(start - window_days * DAY, start, after_since, after_since + window_days * DAY)


class ActionRow(BaseModel):
    """One action and its measured effect."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str
    provider_department: str
    customer_department: str | None
    service_category: str | None
    title: str
    started_on: date
    owner: str | None
    recorded_at: datetime
    before_since: datetime
    before_until: datetime
    after_since: datetime
    after_until: datetime
    status: Status  # "measuring" until after_until has passed: no effects, no verdict
    effects: list[Effect]  # per figure: before, after, difference, 95 % interval, verdict
    overlapping: list[str]  # event ids of actions whose effects cannot be separated from this one's
    notes: list[str]


def _same_scope(one: RecordedAction, other: RecordedAction) -> bool:
    def meet(a: str | None, b: str | None) -> bool:
        return a is None or b is None or a == b

    return (
        one.provider_department == other.provider_department
        and meet(one.service_category, other.service_category)
        and meet(one.customer_department, other.customer_department)
    )


def overlaps(
    actions: Sequence[RecordedAction], window_days: int, settling_days: int
) -> dict[str, list[RecordedAction]]:
    """Per event id, the other actions inside its windows (or it inside theirs), oldest first."""
    reach = window_days + settling_days
    found: dict[str, list[RecordedAction]] = {action.event_id: [] for action in actions}
    ordered = sorted(actions, key=lambda action: (action.started_on, action.recorded_at))
    for index, one in enumerate(ordered):
        for other in ordered[index + 1 :]:
            if (other.started_on - one.started_on).days >= reach:
                break
            if _same_scope(one, other):
                found[one.event_id].append(other)
                found[other.event_id].append(one)
    return found


def measuring_note(windows: EffectWindows) -> str:
    return f"measuring: the after window ends on {(windows.after_until - DAY).date().isoformat()}"


def overlap_note(other: RecordedAction) -> str:
    return (
        f"overlaps “{other.title}” (started {other.started_on.isoformat()}): "
        "their effects cannot be separated"
    )


SumsOf = Callable[[RecordedAction, EffectWindows], tuple[MinuteAggregate, MinuteAggregate]]


def action_rows(
    actions: Iterable[RecordedAction],
    sums_of: SumsOf,
    directory: Directory,
    now: datetime,
    window_days: int,
    settling_days: int,
) -> list[ActionRow]:
    """Every action, newest start first, with its effect (``sums_of`` gives the before and after sums
    of an action's windows; it is not called for an action still measuring)."""
    listed = sorted(actions, key=lambda action: (action.started_on, action.recorded_at), reverse=True)
    others = overlaps(listed, window_days, settling_days)
    rows = []
    for action in listed:
        windows = effect_windows(action.started_on, window_days, settling_days)
        measuring = now < windows.after_until
        notes = [measuring_note(windows)] if measuring else []
        notes.extend(overlap_note(other) for other in others[action.event_id])
        effects = (
            []
            if measuring
            else compare(*sums_of(action, windows), policy_of(directory, action.provider_department))
        )
        rows.append(
            ActionRow(
                event_id=action.event_id,
                provider_department=action.provider_department,
                customer_department=action.customer_department,
                service_category=action.service_category,
                title=action.title,
                started_on=action.started_on,
                owner=action.owner,
                recorded_at=action.recorded_at,
                **windows._asdict(),
                status="measuring" if measuring else "measured",
                effects=effects,
                overlapping=[other.event_id for other in others[action.event_id]],
                notes=notes,
            )
        )
    return rows


class ActionReader(Protocol):
    def actions(self, provider: str | None = None) -> list[RecordedAction]:
        """Every recorded action (of ``provider``), each event id once."""
        ...

    def window_sums(
        self, action: RecordedAction, windows: EffectWindows
    ) -> tuple[MinuteAggregate, MinuteAggregate]:
        """The merged minute buckets of the action's scope in its before and after windows."""
        ...


# --- ClickHouse ------------------------------------------------------------------------------------

ACTIONS_SQL: Final = {
    with_provider: with_provider_filter(
        reads.ACTIONS_SQL, "AND provider_department = {provider:String}" if with_provider else ""
    )
    for with_provider in (False, True)
}


def _window_sums_sql(service_filter: str, customer_filter: str) -> str:
    return f"""
SELECT
    bucket_start >= {{after_since:DateTime('UTC')}} AS is_after,
    {SUMS}
FROM minute_buckets
WHERE row_kind = 'bucket'
  AND provider_department = {{provider:String}}
  AND ((bucket_start >= {{before_since:DateTime('UTC')}} AND bucket_start < {{before_until:DateTime('UTC')}})
    OR (bucket_start >= {{after_since:DateTime('UTC')}} AND bucket_start < {{after_until:DateTime('UTC')}}))
  {service_filter}
  {customer_filter}
GROUP BY is_after
"""


# The filters an action names: (with a service, with a customer) -> fixed text.
WINDOW_SUMS_SQL: Final = {
    (with_service, with_customer): _window_sums_sql(
        "AND service_category = {service:String}" if with_service else "",
        "AND customer_department = {customer:String}" if with_customer else "",
    )
    for with_service in (False, True)
    for with_customer in (False, True)
}


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class ClickHouseActions:
    """:class:`ActionReader` over ``raw_events`` (the actions) and ``minute_buckets`` (their effect)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def actions(self, provider: str | None = None) -> list[RecordedAction]:
        parameters: dict[str, Any] = {} if provider is None else {"provider": provider}
        result = self._client.query(ACTIONS_SQL[provider is not None], parameters=parameters)
        return [
            RecordedAction(
                event_id=row["event_id"],
                provider_department=row["provider_department"],
                customer_department=row["customer_department"] or None,
                service_category=row["service_category"] or None,
                title=row["title"],
                started_on=date.fromisoformat(row["started_on"]),
                owner=row["owner"] or None,
                recorded_at=_utc(row["occurred_at"]),
            )
            for row in result.named_results()
        ]

    def window_sums(
        self, action: RecordedAction, windows: EffectWindows
    ) -> tuple[MinuteAggregate, MinuteAggregate]:
        parameters: dict[str, Any] = {"provider": action.provider_department, **windows._asdict()}
        if action.service_category is not None:
            parameters["service"] = action.service_category
        if action.customer_department is not None:
            parameters["customer"] = action.customer_department
        sql = WINDOW_SUMS_SQL[(action.service_category is not None, action.customer_department is not None)]
        sums = {False: MinuteAggregate(), True: MinuteAggregate()}
        for row in self._client.query(sql, parameters=parameters).named_results():
            sums[bool(row["is_after"])] = aggregate_from_row(row)
        return sums[False], sums[True]


class ActionsService:
    """Every action of a provider (or of every provider) with its measured effect."""

    def __init__(
        self, reader: ActionReader, directory: Directory, window_days: int = 28, settling_days: int = 7
    ) -> None:
        self.reader = reader
        self.directory = directory
        self.window_days = window_days
        self.settling_days = settling_days

    def actions(self, now: datetime, provider: str | None = None) -> list[ActionRow]:
        check_department(self.directory, provider, "provider")
        return action_rows(
            self.reader.actions(provider),
            self.reader.window_sums,
            self.directory,
            now,
            self.window_days,
            self.settling_days,
        )
