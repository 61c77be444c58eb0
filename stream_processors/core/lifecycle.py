"""One request's lifecycle: first-response and resolution times, its SLA, and its aggregate samples.

A :class:`RequestTracker` keeps the request's events that matter as a small sorted timeline and
derives everything from it, so the result depends on the SET of events, not on the order they
arrived in. When an event changes what was derived (an out-of-order reply that is earlier than
the one counted, a pause that started before a resolution), :meth:`RequestTracker.apply` returns
the samples to retract and the samples to add; summed, the deltas always equal what the request
would have produced in order.

Rules (documented here once):

- The department, customer, service and priority of a request are those of its ``request.opened``
  (the earliest one, by occurred_at then event_id, if a source sent two).
- Clocks run on the PROVIDER department's calendar from the open. The pause statuses of the
  request's SLA (else of the provider department; by default ``waiting_on_customer``) pause them,
  any other status resumes them; they are also stopped while the request is resolved or
  closed (until a reopen). Events dated before the open are measured as at the open.
- First response ends at the first ``request.responded``, or at the first resolution when the
  provider resolved without replying (as Jira Service Management's "time to first response").
- Business seconds exclude the paused intervals. Wall seconds do NOT: they are the time the
  customer saw, from open to the event. A ``calendar``-clock SLA is checked against wall time
  minus the pauses.
- The combined SLA verdict is judged once per request, at its first resolution: met when both the
  first response and the resolution were within target. A reopen counts ``requests_reopened``; a
  later re-resolution adds a resolution sample (measured from the open, pauses and resolved periods
  excluded in business time) but is not judged again. A reopen of a request that is neither
  resolved nor closed is ignored.
- First response and resolution also have a verdict each (Jira Service Management's SLA metrics),
  judged when the metric completes (the first response; the first resolution) or when its target
  passes, whichever comes first. The target passes at the instant after which the clock shows more
  than the target (:meth:`PausableClock.deadline`, pauses included); a completion at or before it
  is met (in the completion's minute), else the metric is breached in the minute the target passed,
  whether or not the request is ever answered or resolved. Without a completion, the breach is
  judged when event time passes that instant: a later event of the request, or the partition's
  watermark (:meth:`RequestTracker.advance`). An event dated before a breach that was judged from
  the watermark corrects it, as any out-of-order event does.
- CSAT is counted in the minute of the feedback, for the request's pair and service; every
  feedback event counts (they are distinct answers; repeats of one event are removed upstream by
  event_id).
- Durations are rounded to whole seconds: more precision means nothing for tickets, and integral
  floats add exactly, so aggregate totals do not depend on the order deltas are summed in.
"""

from __future__ import annotations

import math
from bisect import insort
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, NamedTuple

from schemas.directory import Directory
from schemas.events import (
    FeedbackSubmitted,
    RequestClosed,
    RequestEvent,
    RequestOpened,
    RequestReopened,
    RequestResolved,
    RequestResponded,
    RequestStatusChanged,
)

from stream_processors.core.aggregates import Sample, SampleKind
from stream_processors.core.calendar import BusinessCalendar, PausableClock

Bucket = tuple[str, str, str, int]  # provider, customer, service ('' for none), minute start (POSIX s)
Entry = tuple[Bucket, Sample]

# Timeline kinds, in the order they apply when two events share an instant.
_RESPONDED, _STATUS, _RESOLVED, _CLOSED, _REOPENED = range(5)
_TIMELINE_KIND: Final = {
    RequestResponded: _RESPONDED,
    RequestStatusChanged: _STATUS,
    RequestResolved: _RESOLVED,
    RequestClosed: _CLOSED,
    RequestReopened: _REOPENED,
}

_OPENED: Final = Sample(SampleKind.OPENED)
_REOPENED_SAMPLE: Final = Sample(SampleKind.REOPENED)
_SLA_MET: Final = Sample(SampleKind.SLA_MET)
_SLA_BREACHED: Final = Sample(SampleKind.SLA_BREACHED)
_FIRST_RESPONSE_VERDICTS: Final = (
    Sample(SampleKind.FIRST_RESPONSE_SLA_MET),
    Sample(SampleKind.FIRST_RESPONSE_SLA_BREACHED),
)
_RESOLUTION_VERDICTS: Final = (Sample(SampleKind.RESOLUTION_SLA_MET), Sample(SampleKind.RESOLUTION_SLA_BREACHED))
_CSAT: Final = {score: Sample(SampleKind.CSAT, score=score) for score in range(1, 6)}


def minute_start(timestamp: float) -> int:
    """The POSIX second of the UTC minute a timestamp falls in."""
    return int(timestamp // 60) * 60


@dataclass(frozen=True, slots=True)
class SlaTargets:
    first_response_s: float
    resolution_s: float
    business_clock: bool  # False: calendar clock (wall time minus pauses)


def sla_elapsed(
    targets: SlaTargets,
    calendar: BusinessCalendar,
    opened_at: float,
    at: float,
    paused_wall_s: float = 0.0,
    paused_business_s: float = 0.0,
) -> float:
    """Seconds the SLA clock has counted from ``opened_at`` to ``at`` (POSIX) with no pause running:
    business seconds on ``calendar``, or wall seconds for a calendar clock, less the ended pauses."""
    if targets.business_clock:
        return calendar.business_seconds_ts(opened_at, at) - paused_business_s
    return at - opened_at - paused_wall_s


class LifecycleRules:
    """What a lifecycle needs from the directory: calendars, SLA targets and the statuses that pause
    the clock, looked up once each."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory
        self.calendars = {d.id: BusinessCalendar.from_calendar(d.calendar) for d in directory.departments}
        self._sla: dict[
            tuple[str, str | None, str | None, str], tuple[SlaTargets | None, frozenset[str]]
        ] = {}

    def sla(
        self, provider: str, service: str | None, priority: str | None, customer: str
    ) -> tuple[SlaTargets | None, frozenset[str]]:
        """The request's SLA targets (None without one) and the canonical statuses that pause its clock."""
        key = (provider, service, priority, customer)
        found = self._sla.get(key)
        if found is None:
            rule = self._directory.sla_rule(provider, service, priority, customer)
            if rule is None:
                found = (None, self._directory.pause_statuses(provider))
            else:
                target = rule.target
                targets = SlaTargets(
                    float(target.first_response), float(target.resolution), target.clock == "business"
                )
                found = (targets, rule.pause_statuses)
            self._sla[key] = found
        return found


SlaClock = Literal["running", "paused", "stopped"]


class RequestFact(NamedTuple):
    """A snapshot of one request for the facts table (the newest ``last_event_at`` wins)."""

    request_id: str
    provider_department: str
    customer_department: str
    service_category: str  # '' when none
    priority: str | None
    opened_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None  # the latest resolution; ``status`` says whether it still holds
    closed_at: datetime | None  # the latest close
    status: str  # open, resolved, closed, reopened, or the last status_changed value
    reopen_count: int
    first_response_wall_s: float | None
    first_response_business_s: float | None
    resolution_wall_s: float | None  # of the latest resolution
    resolution_business_s: float | None
    sla_first_response_target_s: float | None
    sla_resolution_target_s: float | None
    sla_met: bool | None  # None until the first resolution, or without an SLA
    # The SLA clock as of this snapshot, enough to read a running clock at any later instant while
    # no event comes (the at-risk watch, core.at_risk): running, paused (waiting on the customer) or
    # stopped (resolved or closed), and the wall and business seconds of the pauses that have ended.
    sla_clock: SlaClock
    sla_paused_wall_s: float
    sla_paused_business_s: float
    last_event_at: datetime
    first_response_sla_met: bool | None = None  # None until judged, or without an SLA
    resolution_sla_met: bool | None = None

    def to_row(self) -> tuple[object, ...]:
        """Values in :data:`FACT_COLUMNS` order (the fields are those columns)."""
        return tuple(self)


FACT_COLUMNS: Final = RequestFact._fields


class _Measure(NamedTuple):
    at: datetime  # the event's occurred_at
    wall_s: float
    business_s: float


TimelineItem = tuple[float, int, str, datetime]  # (POSIX seconds, kind, status, occurred_at)


class _Metric:
    """One SLA metric of a request (first response or resolution): its target, its deadline while
    the clock runs, and its verdict once judged."""

    __slots__ = ("deadline", "met", "target_s", "verdicts")

    def __init__(self, target_s: float, verdicts: tuple[Sample, Sample]) -> None:
        self.target_s, self.verdicts = target_s, verdicts
        self.met: bool | None = None
        self.deadline: float | None = None  # while pending and the clock runs


class _Fold:
    """The walk over a request's timeline from its open: samples so far and the current state.

    Resumable: stepping the walk on with an item later than all before it gives exactly what
    walking the whole timeline again would, so in-order events cost one step. :meth:`expire`
    judges breaches up to an event-time horizon; an item after a breach judged so must be later
    than its deadline to step on (``breached_until``), else the timeline is walked again.
    """

    __slots__ = (
        "_business_clock",
        "_clock",
        "_first_response_sla_s",
        "_metrics",
        "_opened_at",
        "_pause_statuses",
        "_prefix",
        "_sla",
        "breached_until",
        "closed",
        "closed_at",
        "entries",
        "first_response",
        "first_response_metric",
        "reopen_count",
        "resolution",
        "resolution_metric",
        "resolved",
        "sla_met",
        "status",
        "waiting",
    )

    def __init__(
        self,
        opened_at: float,
        prefix: tuple[str, str, str],
        calendar: BusinessCalendar,
        sla: SlaTargets | None,
        pause_statuses: frozenset[str],
    ) -> None:
        self._opened_at, self._prefix, self._sla = opened_at, prefix, sla
        self._pause_statuses = pause_statuses
        self._clock = PausableClock(calendar, opened_at)
        self.entries: list[Entry] = [((*prefix, minute_start(opened_at)), _OPENED)]
        self.waiting = self.resolved = self.closed = False
        self.status, self.reopen_count = "open", 0
        self.first_response: _Measure | None = None
        self.resolution: _Measure | None = None  # the latest
        self._first_response_sla_s = 0.0
        self.closed_at: datetime | None = None
        self.sla_met: bool | None = None
        self.breached_until = -math.inf  # the latest deadline :meth:`expire` judged breached
        self.first_response_metric = self.resolution_metric = None
        self._metrics: tuple[_Metric, ...] = ()
        self._business_clock = sla is None or sla.business_clock
        if sla is not None:
            self.first_response_metric = _Metric(sla.first_response_s, _FIRST_RESPONSE_VERDICTS)
            self.resolution_metric = _Metric(sla.resolution_s, _RESOLUTION_VERDICTS)
            self._metrics = (self.first_response_metric, self.resolution_metric)
            self._schedule(opened_at)

    @property
    def next_deadline(self) -> float | None:
        """The earliest deadline of a metric still pending with its clock running."""
        deadlines = [m.deadline for m in self._metrics if m.met is None and m.deadline is not None]
        return min(deadlines) if deadlines else None

    def expire(self, horizon: float) -> None:
        """Judge the metrics whose target passed before ``horizon`` (event time) breached."""
        for metric in self._metrics:
            if metric.met is None and metric.deadline is not None and metric.deadline < horizon:
                self.breached_until = max(self.breached_until, metric.deadline)
                self._breach(metric, metric.deadline)

    def _breach(self, metric: _Metric, deadline: float) -> None:
        metric.met = False
        self.entries.append(((*self._prefix, minute_start(deadline)), metric.verdicts[1]))

    def _complete(self, metric: _Metric | None, bucket: Bucket) -> None:
        if metric is not None and metric.met is None:
            metric.met = True
            self.entries.append((bucket, metric.verdicts[0]))

    def _schedule(self, at: float) -> None:
        """Each pending metric's deadline from the clock's state at ``at``."""
        for metric in self._metrics:
            if metric.met is None:
                metric.deadline = self._clock.deadline(at, metric.target_s, self._business_clock)

    def step(self, event_at: float, kind: int, value: str, occurred_at: datetime) -> None:
        at = event_at if event_at > self._opened_at else self._opened_at
        for metric in self._metrics:  # targets that passed before this event
            if metric.met is None and metric.deadline is not None and at > metric.deadline:
                self._breach(metric, metric.deadline)
        bucket = (*self._prefix, minute_start(event_at))
        if self.first_response is None and kind in (_RESPONDED, _RESOLVED):
            self._complete(self.first_response_metric, bucket)
            self.first_response, self._first_response_sla_s = self._measure(at, occurred_at)
            sample = Sample(
                SampleKind.FIRST_RESPONSE, self.first_response.wall_s, self.first_response.business_s
            )
            self.entries.append((bucket, sample))
        if kind == _STATUS:
            self.status, self.waiting = value, value in self._pause_statuses
        elif kind == _RESOLVED:
            if self.resolved:
                return
            measure, sla_s = self._measure(at, occurred_at)
            first = self.resolution is None
            if first:
                self._complete(self.resolution_metric, bucket)
            kind_of_sample = SampleKind.FIRST_RESOLUTION if first else SampleKind.RESOLUTION
            self.entries.append((bucket, Sample(kind_of_sample, measure.wall_s, measure.business_s)))
            if first and self._sla is not None:
                sla = self._sla
                self.sla_met = (
                    self._first_response_sla_s <= sla.first_response_s and sla_s <= sla.resolution_s
                )
                self.entries.append((bucket, _SLA_MET if self.sla_met else _SLA_BREACHED))
            self.resolution, self.resolved, self.waiting, self.status = measure, True, False, "resolved"
        elif kind == _CLOSED:
            self.closed, self.closed_at, self.waiting, self.status = True, occurred_at, False, "closed"
        elif kind == _REOPENED:
            if not (self.resolved or self.closed):
                return
            self.reopen_count += 1
            self.entries.append((bucket, _REOPENED_SAMPLE))
            self.resolved = self.closed = self.waiting = False
            self.status = "reopened"
        was_paused = self._clock.paused
        self._clock.set_paused(self.waiting or self.resolved or self.closed, at)
        if self._clock.paused != was_paused:  # a running clock keeps its deadlines
            self._schedule(at)

    def clock(self) -> tuple[SlaClock, float, float]:
        """The SLA clock's state and the pauses that have ended (see :class:`RequestFact`)."""
        state: SlaClock = "stopped" if self.resolved or self.closed else "paused" if self.waiting else "running"
        return state, *self._clock.ended_pauses()

    def _measure(self, at: float, occurred_at: datetime) -> tuple[_Measure, float]:
        """The measure at ``at`` and the elapsed seconds the SLA clock counts."""
        unpaused_wall, business = self._clock.elapsed(at)
        measure = _Measure(occurred_at, float(round(at - self._opened_at)), float(round(business)))
        if self._sla is None or self._sla.business_clock:
            return measure, measure.business_s
        return measure, float(round(unpaused_wall))


class RequestTracker:
    """The state of one opened request; created from its ``request.opened``."""

    __slots__ = (
        "_bucket_prefix",
        "_calendar",
        "_feedback",
        "_feedback_entries",
        "_first_reply",
        "_fold",
        "_horizon",
        "_last_event_time",
        "_open_key",
        "_opened_time",
        "_pause_statuses",
        "_rules",
        "_sla",
        "_timeline",
        "last_event_at",
        "opened_at",
        "priority",
        "request_id",
    )

    def __init__(self, opened: RequestOpened, rules: LifecycleRules) -> None:
        at = opened.occurred_at.timestamp()
        self.request_id = opened.request_id
        self._rules = rules
        self._timeline: list[TimelineItem] = []
        self._first_reply: TimelineItem | None = None
        self._feedback: list[tuple[int, int]] = []  # (minute, csat)
        self._horizon = -math.inf  # the event time up to which breaches are judged (advance)
        self.last_event_at, self._last_event_time = at, opened.occurred_at
        self._adopt(opened, at)
        self._feedback_entries: list[Entry] = []
        self._fold = self._walk()

    @property
    def entries(self) -> list[Entry]:
        """Every sample this request contributes now (what its deltas have summed to)."""
        return self._fold.entries + self._feedback_entries

    @property
    def closed(self) -> bool:
        return self._fold.status == "closed"

    @property
    def next_deadline(self) -> float | None:
        """When (event time, POSIX s) a pending SLA metric's target passes if nothing changes; the
        caller calls :meth:`advance` once event time is past it."""
        return self._fold.next_deadline

    def advance(self, horizon: float) -> list[Entry]:
        """Event time (the partition's watermark) reached ``horizon``: the breaches judged by it."""
        # Expire up to the furthest horizon seen, even when this one is not further: an event taken
        # since may have moved a deadline behind it, and the caller relies on no pending deadline
        # being left before ``horizon`` after this call (it would schedule it again, forever).
        self._horizon = max(self._horizon, horizon)
        fold = self._fold
        before = len(fold.entries)
        fold.expire(self._horizon)
        return fold.entries[before:]

    def apply(self, event: RequestEvent) -> tuple[list[Entry], list[Entry]]:
        """Take one more event of this request; return (samples to retract, samples to add)."""
        occurred_at = event.occurred_at
        at = occurred_at.timestamp()
        if at > self.last_event_at:
            self.last_event_at, self._last_event_time = at, occurred_at
        if isinstance(event, FeedbackSubmitted):
            minute = minute_start(at)
            self._feedback.append((minute, event.csat))
            entry = ((*self._bucket_prefix, minute), _CSAT[event.csat])
            self._feedback_entries.append(entry)
            return [], [entry]
        if isinstance(event, RequestOpened):
            if (at, event.event_id) >= self._open_key:
                return [], []
            # An earlier open of the same request: it defines the request; recount everything.
            retracted = self.entries
            self._adopt(event, at)
            self._feedback_entries = [((*self._bucket_prefix, m), _CSAT[s]) for m, s in self._feedback]
            self._fold = self._walk()
            return retracted, self.entries
        status = event.status if isinstance(event, RequestStatusChanged) else ""
        item = (at, _TIMELINE_KIND[type(event)], status, occurred_at)
        timeline = self._timeline
        if isinstance(event, RequestResponded):
            if self._first_reply is not None:
                if item >= self._first_reply:
                    return [], []  # later replies change nothing but last_event_at
                timeline.remove(self._first_reply)
                self._first_reply = item
                insort(timeline, item)
                return self._rewalk()
            self._first_reply = item
        if (not timeline or item >= timeline[-1]) and at > self._fold.breached_until:
            timeline.append(item)
            fold = self._fold
            before = len(fold.entries)
            fold.step(*item)
            return [], fold.entries[before:]
        insort(timeline, item)
        return self._rewalk()

    def fact(self) -> RequestFact:
        fold, sla = self._fold, self._sla
        first, resolution = fold.first_response, fold.resolution
        provider, customer, service = self._bucket_prefix
        clock, paused_wall, paused_business = fold.clock()
        return RequestFact(
            request_id=self.request_id,
            provider_department=provider,
            customer_department=customer,
            service_category=service,
            priority=self.priority,
            opened_at=self._opened_time,
            first_response_at=first.at if first else None,
            resolved_at=resolution.at if resolution else None,
            closed_at=fold.closed_at,
            status=fold.status,
            reopen_count=fold.reopen_count,
            first_response_wall_s=first.wall_s if first else None,
            first_response_business_s=first.business_s if first else None,
            resolution_wall_s=resolution.wall_s if resolution else None,
            resolution_business_s=resolution.business_s if resolution else None,
            sla_first_response_target_s=sla.first_response_s if sla else None,
            sla_resolution_target_s=sla.resolution_s if sla else None,
            sla_met=fold.sla_met,
            sla_clock=clock,
            sla_paused_wall_s=paused_wall,
            sla_paused_business_s=paused_business,
            last_event_at=self._last_event_time,
            first_response_sla_met=fold.first_response_metric.met if fold.first_response_metric else None,
            resolution_sla_met=fold.resolution_metric.met if fold.resolution_metric else None,
        )

    def _adopt(self, opened: RequestOpened, at: float) -> None:
        """Take attribution and clock start from this open."""
        self._open_key = (at, opened.event_id)
        self.opened_at, self._opened_time = at, opened.occurred_at
        service = opened.service_category
        self._bucket_prefix = (opened.provider_department, opened.customer_department, service or "")
        self.priority = opened.priority
        self._calendar = self._rules.calendars[opened.provider_department]
        self._sla, self._pause_statuses = self._rules.sla(
            opened.provider_department, service, opened.priority, opened.customer_department
        )

    def _walk(self) -> _Fold:
        fold = _Fold(self.opened_at, self._bucket_prefix, self._calendar, self._sla, self._pause_statuses)
        for item in self._timeline:
            fold.step(*item)
        fold.expire(self._horizon)
        return fold

    def _rewalk(self) -> tuple[list[Entry], list[Entry]]:
        """Walk the whole timeline again after an out-of-order event; what changed."""
        previous = self._fold.entries
        self._fold = self._walk()
        return _difference(previous, self._fold.entries)


def _difference(old: list[Entry], new: list[Entry]) -> tuple[list[Entry], list[Entry]]:
    """(in old but not new, in new but not old), as multisets; fast when new only appends."""
    if new[: len(old)] == old:
        return [], new[len(old) :]
    remaining = Counter(old)
    added = []
    for entry in new:
        if remaining[entry] > 0:
            remaining[entry] -= 1
        else:
            added.append(entry)
    return list(remaining.elements()), added
