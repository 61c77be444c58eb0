"""A deterministic simulator of how the departments of an organisation serve each other.

:func:`simulate` turns a directory, a time window, a rate and a seed into canonical events in
event-time order: requests between department pairs (everyone asks IT and HR a lot, Sales asks
Legal, Finance asks Procurement, ...), opened mostly in the customer's working hours with a
weekday and time-of-day shape, answered and resolved inside the provider's business hours
(its calendar and timezone, via zoneinfo) relative to the SLA targets of the directory, with
``waiting_on_customer`` pauses, reopens, closes, CSAT that falls as replies get slower, and
fortnightly HR pulse surveys (``survey.answered``). The same arguments give the same events.

Scenarios (:data:`SCENARIOS`) are small dataclasses of knobs: ``steady``, and
``it-degradation``, where from the middle of the window IT's replies to Finance slow down
six-fold and Finance's CSAT and survey scores for IT fall: enough for the satisfaction, SLA and
NPS alerts to fire with samples over the directory's minimums.

:func:`simulate` never sleeps, so a month of history takes seconds; :func:`live` paces any
event stream to wall time for ``deptpulse simulate --rate``.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from time import sleep as _sleep
from time import time as _wall_time
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo

from schemas.directory import Calendar, Department, Directory, SlaTarget
from schemas.events import (
    IN_PROGRESS,
    WAITING_ON_CUSTOMER,
    Event,
    FeedbackSubmitted,
    RequestClosed,
    RequestOpened,
    RequestReopened,
    RequestResolved,
    RequestResponded,
    RequestStatusChanged,
    SurveyAnswered,
)

_E = TypeVar("_E", bound=Event)

HOUR: Final = 3600.0
DAY: Final = 86400.0

# --- scenarios ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Degradation:
    """One provider serving one customer badly from some point of the window on."""

    provider: str
    customer: str
    starts_at: float = 0.5  # fraction of the window
    reply_slowdown: float = 6.0  # multiplies first-response and reply delays (business time)
    resolution_slowdown: float = 3.0
    csat_drop: float = 0.6  # subtracted from the mean CSAT, on top of the slowness effect
    survey_drop: float = 3.5  # subtracted from the mean survey score (0-10)
    volume_factor: float = 2.0  # unhappy customers open more requests (follow-ups, escalations)
    feedback_share: float = 0.6  # and answer more CSAT surveys

    def applies(self, provider: str, customer: str, at: float, starts: float) -> bool:
        return provider == self.provider and customer == self.customer and at >= starts


@dataclass(frozen=True)
class Scenario:
    """The knobs of a simulation; shares are per request."""

    name: str
    description: str
    feedback_share: float = 0.35
    waiting_share: float = 0.25
    reopen_share: float = 0.06
    close_share: float = 0.85
    reply_median_of_target: float = 0.3  # first reply, as a fraction of the SLA target
    reply_spread: float = 0.45  # lognormal sigma: ~0.5 % breach the first-response target
    survey_every_days: int = 14
    survey_respondents: tuple[int, int] = (22, 32)  # per (customer, provider): above nps_min_sample
    degradation: Degradation | None = None


SCENARIOS: Final[dict[str, Scenario]] = {
    "steady": Scenario("steady", "Every department serves within its SLAs; CSAT around 4.5."),
    "it-degradation": Scenario(
        "it-degradation",
        "From the middle of the window IT answers Finance six times slower; Finance's CSAT and "
        "survey scores for IT fall.",
        degradation=Degradation(provider="it", customer="finance"),
    ),
}

# --- the organisation's traffic -------------------------------------------------------------------

# How much each department is asked for help, and how many people ask; unknown ids weigh 1.
PROVIDER_WEIGHT: Final = {
    "it": 6.0, "hr": 4.0, "facilities": 2.0, "finance": 1.5,
    "procurement": 1.0, "engineering": 1.0, "legal": 0.5, "sales": 0.3,
}  # fmt: skip
CUSTOMER_WEIGHT: Final = {"engineering": 3.0, "sales": 2.5, "finance": 1.2, "it": 1.0, "hr": 0.8}
# Pairs that are heavier than the two weights above suggest.
PAIR_FACTOR: Final = {
    ("sales", "legal"): 8.0, ("procurement", "legal"): 4.0, ("finance", "procurement"): 6.0,
    ("it", "procurement"): 4.0, ("sales", "finance"): 3.0, ("engineering", "it"): 1.5,
    ("it", "engineering"): 3.0, ("sales", "engineering"): 2.0, ("finance", "it"): 1.5,
}  # fmt: skip
SERVICE_WEIGHT: Final = {"it.access": 5.0, "it.hardware": 3.0, "it.outage": 0.5}
UNCATEGORISED_SHARE: Final = 0.05
PRIORITY_WEIGHT: Final = {"P1": 0.03, "P2": 0.15, "P3": 0.57, "P4": 0.25}
FALLBACK_SLA: Final = SlaTarget(first_response=4 * 3600, resolution=3 * 86400)
CHANNELS: Final = ("portal", "portal", "portal", "email", "chat")
TICKETING_SOURCES: Final = ("jira-sm", "servicenow", "zendesk")
SURVEY_SOURCE: Final = "hr-survey"
SURVEYED_PROVIDERS: Final = ("it", "hr", "facilities", "finance")
# Requests by local hour of the customer, inside its working hours; 1.0 is the busiest hour.
HOURLY_SHAPE: Final = {8: 0.7, 9: 0.9, 10: 1.0, 11: 1.0, 12: 0.6, 13: 0.7, 14: 0.95, 15: 0.9, 16: 0.8, 17: 0.6}  # fmt: skip
AFTER_HOURS_SHAPE: Final = 0.03
WEEKDAY_FACTOR: Final = (1.15, 1.05, 1.0, 0.95, 0.8, 1.0, 1.0)  # Monday's backlog, Friday's exodus
_SHAPE_MAX: Final = 1.15
LOW_CSAT_COMMENTS: Final = ("Took days to get a first answer.", "Still not fixed.", "Nobody replied.")
LOW_SCORE_COMMENTS: Final = ("Slow to respond lately.", "Hard to reach anyone.", "Tickets sit for days.")
_PILOT_CANDIDATES: Final = 8_000
_SURVEY_ANCHOR: Final = date(2026, 1, 5)  # a Monday: waves fall on the same days in every run
_SURVEY_LAUNCH: Final = time(10, 0)
_SURVEY_ANSWER_SPAN: Final = 2 * 9 * HOUR  # answers arrive over about two business days


class BusinessClock:
    """Business time on a department calendar; instants are POSIX timestamps (seconds)."""

    def __init__(self, calendar: Calendar) -> None:
        self.zone = ZoneInfo(calendar.timezone)
        weekdays = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        self._hours = [calendar.working_hours.get(day, []) for day in weekdays]  # type: ignore[call-overload]
        self._holidays = frozenset(calendar.holidays)
        self._always_open = not any(self._hours)
        self._days: dict[date, tuple[tuple[float, float], ...]] = {}

    def intervals(self, day: date) -> tuple[tuple[float, float], ...]:
        """The working intervals of a local day, as timestamps."""
        cached = self._days.get(day)
        if cached is None:
            cached = (
                ()
                if day in self._holidays
                else tuple(
                    (
                        datetime.combine(day, interval.start, self.zone).timestamp(),
                        datetime.combine(day, interval.end, self.zone).timestamp(),
                    )
                    for interval in self._hours[day.weekday()]
                )
            )
            self._days[day] = cached
        return cached

    def add(self, at: float, seconds: float) -> float:
        """The instant ``seconds`` of business time after ``at``: always inside working hours."""
        if self._always_open:
            return at + seconds
        day = datetime.fromtimestamp(at, self.zone).date()
        remaining = seconds
        for _ in range(3660):  # ten years of days: a calendar with hours always ends this
            for start, end in self.intervals(day):
                if at >= end:
                    continue
                begin = max(at, start)
                if begin + remaining <= end:
                    return begin + remaining
                remaining -= end - begin
            day += timedelta(days=1)
        raise ValueError("no working hours within ten years")

    def opening_shape(self, at: float) -> float:
        """Relative chance that someone of this department opens a request at ``at``."""
        local = datetime.fromtimestamp(at, self.zone)
        working = self._always_open or any(start <= at < end for start, end in self.intervals(local.date()))
        if not working:
            return AFTER_HOURS_SHAPE
        return HOURLY_SHAPE.get(local.hour, 0.5) * WEEKDAY_FACTOR[local.weekday()]


@dataclass(frozen=True)
class _Pair:
    customer: str
    provider: str


@dataclass
class _Organisation:
    """What the simulation needs of the directory, precomputed once."""

    directory: Directory
    clocks: dict[str, BusinessClock] = field(init=False)
    pairs: list[_Pair] = field(init=False)
    cumulative_weights: list[float] = field(init=False)
    sources: dict[str, str] = field(init=False)
    prefixes: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        departments = self.directory.departments
        self.clocks = {d.id: BusinessClock(d.calendar) for d in departments}
        self.pairs = [_Pair(c.id, p.id) for c in departments for p in departments if c.id != p.id]
        weights = [
            PROVIDER_WEIGHT.get(pair.provider, 1.0)
            * CUSTOMER_WEIGHT.get(pair.customer, 1.0)
            * PAIR_FACTOR.get((pair.customer, pair.provider), 1.0)
            for pair in self.pairs
        ]
        self.cumulative_weights = list(itertools.accumulate(weights))
        self.sources = {d.id: _ticketing_source(d, index) for index, d in enumerate(departments)}
        self.prefixes = {d.id: _request_prefix(d) for d in departments}

    def choose_pair(self, rng: random.Random) -> _Pair:
        point = rng.random() * self.cumulative_weights[-1]
        return self.pairs[bisect.bisect_right(self.cumulative_weights, point)]

    def choose_service(self, rng: random.Random, provider: str) -> tuple[str | None, str | None]:
        """A service category of the provider (or none) and a priority its SLAs know."""
        department = self.directory.department(provider)
        service = None
        if department.services and rng.random() >= UNCATEGORISED_SHARE:
            services = department.services
            service = rng.choices(services, [SERVICE_WEIGHT.get(s.id, 1.0) for s in services])[0]
        slas = service.sla if service and service.sla else department.default_sla
        priorities: list[str] = list(slas) or list(PRIORITY_WEIGHT)
        priority = rng.choices(priorities, [PRIORITY_WEIGHT[p] for p in priorities])[0]
        return (service.id if service else None), priority


def _ticketing_source(department: Department, index: int) -> str:
    """Each department works in one ticketing system; spread them over the ones it is mapped in."""
    mapped = sorted({m.source for m in department.mappings if m.source in TICKETING_SOURCES})
    candidates = mapped or list(TICKETING_SOURCES)
    return candidates[index % len(candidates)]


def _request_prefix(department: Department) -> str:
    for mapping in department.mappings:
        if mapping.source == "jira-sm" and mapping.field == "project":
            return mapping.values[0]
    return department.id.upper()


# --- one request's life ---------------------------------------------------------------------------


# A planned event: when, which model, which fields on top of the request's common fields.
_Planned = tuple[float, type[Event], dict[str, Any]]


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


@dataclass
class _Lifecycle:
    """Plans every event of one request at once; the caller interleaves requests by time."""

    organisation: _Organisation
    scenario: Scenario
    degradation_starts: float

    def plan(self, rng: random.Random, opened: float, pair: _Pair) -> tuple[dict[str, Any], list[_Planned]]:
        provider_clock = self.organisation.clocks[pair.provider]
        customer_clock = self.organisation.clocks[pair.customer]
        service, priority = self.organisation.choose_service(rng, pair.provider)
        target = self.organisation.directory.sla_target(pair.provider, service, priority) or FALLBACK_SLA
        provider_add = provider_clock.add if target.clock == "business" else _calendar_add
        scenario, degradation = self.scenario, self.scenario.degradation
        degraded = degradation is not None and degradation.applies(
            pair.provider, pair.customer, opened, self.degradation_starts
        )
        slow = degradation.reply_slowdown if degradation and degraded else 1.0
        slow_resolution = degradation.resolution_slowdown if degradation and degraded else 1.0

        first_reply = max(
            60.0,
            _lognormal(rng, scenario.reply_median_of_target * target.first_response, scenario.reply_spread)
            * slow,
        )
        responded = provider_add(opened, first_reply)
        planned: list[_Planned] = [
            (opened, RequestOpened, {"attributes": {"channel": rng.choice(CHANNELS)}}),
            (responded, RequestResponded, {}),
        ]
        last = responded
        if rng.random() < scenario.waiting_share:
            waiting = provider_add(last, rng.uniform(60.0, 1800.0))
            resumed = customer_clock.add(waiting, _lognormal(rng, 3 * HOUR, 0.8))
            last = provider_add(resumed, _lognormal(rng, 0.2 * target.first_response, 0.6) * slow)
            planned += [
                (waiting, RequestStatusChanged, {"status": WAITING_ON_CUSTOMER}),
                (resumed, RequestStatusChanged, {"status": IN_PROGRESS}),
                (last, RequestResponded, {}),
            ]
        work = max(60.0, _lognormal(rng, 0.2 * target.resolution, 0.7) * slow_resolution)
        resolved = provider_add(last, work)
        planned.append((resolved, RequestResolved, {}))
        reopened = rng.random() < scenario.reopen_share
        if reopened:
            reopened_at = customer_clock.add(resolved, _lognormal(rng, 2 * HOUR, 0.8))
            replied = provider_add(reopened_at, _lognormal(rng, 0.3 * target.first_response, 0.5) * slow)
            resolved = provider_add(replied, _lognormal(rng, 0.1 * target.resolution, 0.7))
            planned += [
                (reopened_at, RequestReopened, {}),
                (replied, RequestResponded, {}),
                (resolved, RequestResolved, {}),
            ]
        feedback_share = degradation.feedback_share if degradation and degraded else scenario.feedback_share
        if rng.random() < feedback_share:
            csat = self._csat(
                rng,
                first_reply / target.first_response,
                (first_reply + work) / target.resolution,
                reopened,
                degradation.csat_drop if degradation and degraded else 0.0,
            )
            extra: dict[str, Any] = {"csat": csat}
            if csat <= 2 and rng.random() < 0.5:
                extra["comment"] = rng.choice(LOW_CSAT_COMMENTS)
            planned.append(
                (customer_clock.add(resolved, _lognormal(rng, 1.5 * HOUR, 1.0)), FeedbackSubmitted, extra)
            )
        if rng.random() < scenario.close_share:
            planned.append((resolved + 3 * DAY + rng.uniform(0, HOUR), RequestClosed, {}))

        common = {
            "schema_version": 1,
            "source": self.organisation.sources[pair.provider],
            "provider_department": pair.provider,
            "customer_department": pair.customer,
            "service_category": service,
            "priority": priority,
        }
        return common, planned

    @staticmethod
    def _csat(
        rng: random.Random, reply_ratio: float, resolution_ratio: float, reopened: bool, drop: float
    ) -> int:
        """CSAT 1-5: about 4.7 when served within target, one point less per doubling beyond it."""
        mean = (
            4.7
            - 0.9 * max(0.0, math.log2(reply_ratio))
            - 0.5 * max(0.0, math.log2(resolution_ratio))
            - (0.8 if reopened else 0.0)
            - drop
        )
        return min(5, max(1, round(rng.gauss(mean, 0.7))))


def _calendar_add(at: float, seconds: float) -> float:
    return at + seconds


# --- the simulation -------------------------------------------------------------------------------


# A scheduled event: (when, tie-breaker, model, fields); a tuple, so the heap compares in C.
_Pending = tuple[float, int, type[Event], dict[str, Any]]


class _Simulation:
    def __init__(
        self, directory: Directory, start: datetime, duration: timedelta, seed: int, scenario: Scenario
    ) -> None:
        self.organisation = _Organisation(directory)
        self.scenario = scenario
        self.start = start.timestamp()
        self.end = self.start + duration.total_seconds()
        self.seed = seed
        starts = scenario.degradation.starts_at if scenario.degradation else 1.0
        self.lifecycle = _Lifecycle(
            self.organisation, scenario, self.start + starts * (self.end - self.start)
        )
        # Ids: unique per run, stable for the same arguments, distinct for another window or seed.
        tag_rng = random.Random(f"{seed}/{start.isoformat()}/{duration.total_seconds()}/{scenario.name}")
        self.tag = f"{tag_rng.getrandbits(24):06x}"
        self._shape_ceiling = _SHAPE_MAX * max(
            1.0, scenario.degradation.volume_factor if scenario.degradation else 1.0
        )
        self._pending: list[_Pending] = []
        self._sequence = itertools.count()
        self.requests = 0

    def accepts(self, rng: random.Random, at: float, pair: _Pair) -> bool:
        """Thinning: a candidate arrival becomes a request with the customer's opening shape."""
        shape = self.organisation.clocks[pair.customer].opening_shape(at)
        degradation = self.scenario.degradation
        if degradation and degradation.applies(
            pair.provider, pair.customer, at, self.lifecycle.degradation_starts
        ):
            shape *= degradation.volume_factor
        return rng.random() * self._shape_ceiling < shape

    def candidate_rate(self, rate_per_s: float) -> float:
        """Candidates per second so that the window holds ``rate_per_s`` request events per second.

        A pilot run (own generator, same model) measures how many in-window events a candidate
        yields: about 6 over a month, about 1 in a one-minute window where lifecycles are cut off.
        """
        rng = random.Random(f"pilot/{self.seed}")
        in_window = 0
        for _ in range(_PILOT_CANDIDATES):
            at = self.start + rng.random() * (self.end - self.start)
            pair = self.organisation.choose_pair(rng)
            if self.accepts(rng, at, pair):
                _, planned = self.lifecycle.plan(rng, at, pair)
                in_window += sum(1 for when, _, _ in planned if when < self.end)
        per_candidate = max(in_window, 1) / _PILOT_CANDIDATES
        return rate_per_s / per_candidate

    def run(self, rate_per_s: float) -> Iterator[Event]:
        rng = random.Random(self.seed)
        candidates_per_s = self.candidate_rate(rate_per_s)
        waves = self._survey_waves()
        next_wave = next(waves, None)
        at = self.start
        while True:
            at += rng.expovariate(candidates_per_s)
            if at >= self.end:
                break
            while next_wave is not None and next_wave[1] <= at:
                self._launch_survey(rng, *next_wave)
                next_wave = next(waves, None)
            yield from self._due(at)
            pair = self.organisation.choose_pair(rng)
            if self.accepts(rng, at, pair):
                self._open(rng, at, pair)
        while next_wave is not None:
            self._launch_survey(rng, *next_wave)
            next_wave = next(waves, None)
        yield from self._due(self.end, inclusive=False)

    def _due(self, until: float, inclusive: bool = True) -> Iterator[Event]:
        pending = self._pending
        while pending and (pending[0][0] <= until if inclusive else pending[0][0] < until):
            at, _, model, fields = heapq.heappop(pending)
            yield model(occurred_at=_utc(at), **fields)

    def _open(self, rng: random.Random, at: float, pair: _Pair) -> None:
        self.requests += 1
        request_id = f"{self.organisation.prefixes[pair.provider]}-{self.tag}-{self.requests}"
        common, planned = self.lifecycle.plan(rng, at, pair)
        for index, (when, model, extra) in enumerate(planned):
            if when >= self.end:
                continue
            fields = {
                **common,
                **extra,
                "event_type": _EVENT_TYPE[model],
                "request_id": request_id,
                "event_id": f"{request_id}.{index}",
            }
            heapq.heappush(self._pending, (when, next(self._sequence), model, fields))

    def _survey_waves(self) -> Iterator[tuple[int, float]]:
        """Pulse-survey launches (wave number, instant), Mondays 10:00 in the HR calendar's zone.

        Waves that began up to a week before the window still send answers into it.
        """
        every = self.scenario.survey_every_days
        clock = self.organisation.clocks.get("hr") or next(iter(self.organisation.clocks.values()))
        first_day = datetime.fromtimestamp(self.start - 7 * DAY, clock.zone).date()
        wave = max(0, math.ceil((first_day - _SURVEY_ANCHOR).days / every))
        while True:
            day = _SURVEY_ANCHOR + timedelta(days=wave * every)
            launch = datetime.combine(day, _SURVEY_LAUNCH, clock.zone).timestamp()
            if launch >= self.end:
                return
            yield wave, launch
            wave += 1

    def _launch_survey(self, rng: random.Random, wave: int, launch: float) -> None:
        organisation = self.organisation
        degradation = self.scenario.degradation
        providers = [p for p in SURVEYED_PROVIDERS if organisation.directory.has_department(p)]
        providers = providers or [d.id for d in organisation.directory.departments if d.services]
        low, high = self.scenario.survey_respondents
        answer = 0
        for provider in providers:
            for customer in organisation.directory.department_ids():
                if customer == provider:
                    continue
                degraded = degradation is not None and degradation.applies(
                    provider, customer, launch, self.lifecycle.degradation_starts
                )
                mean = 8.3 - (degradation.survey_drop if degradation and degraded else 0.0)
                for _ in range(rng.randint(low, high)):
                    answer += 1
                    when = organisation.clocks[customer].add(launch, rng.uniform(0, _SURVEY_ANSWER_SPAN))
                    score = min(10, max(0, round(rng.gauss(mean, 1.6))))
                    if when < self.start or when >= self.end:
                        continue
                    fields: dict[str, Any] = {
                        "schema_version": 1,
                        "event_type": "survey.answered",
                        "event_id": f"survey-{self.tag}-w{wave}-{answer}",
                        "source": SURVEY_SOURCE,
                        "provider_department": provider,
                        "customer_department": customer,
                        "score": score,
                        "attributes": {"survey": f"pulse-w{wave}"},
                    }
                    if score <= 4 and rng.random() < 0.4:
                        fields["comment"] = rng.choice(LOW_SCORE_COMMENTS)
                    heapq.heappush(self._pending, (when, next(self._sequence), SurveyAnswered, fields))


_EVENT_TYPE: Final[dict[type[Event], str]] = {
    RequestOpened: "request.opened",
    RequestResponded: "request.responded",
    RequestStatusChanged: "request.status_changed",
    RequestResolved: "request.resolved",
    RequestReopened: "request.reopened",
    RequestClosed: "request.closed",
    FeedbackSubmitted: "feedback.submitted",
}


def _utc(at: float) -> datetime:
    # Whole milliseconds: what ticketing systems export, and stable across float round trips.
    return datetime.fromtimestamp(round(at, 3), UTC)


# --- public API -----------------------------------------------------------------------------------


def scenario_named(name: str) -> Scenario:
    """The scenario called ``name``; KeyError lists the known ones."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


def simulate(
    directory: Directory,
    start: datetime,
    duration: timedelta,
    rate_per_s: float,
    seed: int = 0,
    scenario: str | Scenario = "steady",
) -> Iterator[Event]:
    """Events with ``start <= occurred_at < start + duration``, in event-time order, never sleeping.

    ``rate_per_s`` is the average number of request events per second of event time (pulse
    surveys come on top, on their own calendar). The same arguments give the same events.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if rate_per_s <= 0 or duration <= timedelta(0):
        raise ValueError("rate_per_s and duration must be positive")
    chosen = scenario if isinstance(scenario, Scenario) else scenario_named(scenario)
    return _Simulation(directory, start, duration, seed, chosen).run(rate_per_s)


def history(
    directory: Directory,
    end: datetime,
    days: int = 30,
    rate_per_s: float = 0.05,
    seed: int = 0,
    scenario: str | Scenario = "steady",
) -> Iterator[Event]:
    """``days`` of history up to ``end``: the demo's month (about 130,000 events at the default rate)."""
    return simulate(directory, end - timedelta(days=days), timedelta(days=days), rate_per_s, seed, scenario)


def live(
    events: Iterable[_E],
    rate_per_s: float,
    *,
    wall_clock: Callable[[], float] = _wall_time,
    sleep: Callable[[float], None] = _sleep,
) -> Iterator[_E]:
    """Pace events to wall time: at most ``rate_per_s`` a second, none before its ``occurred_at``."""
    if rate_per_s <= 0:
        raise ValueError("rate_per_s must be positive")
    began = wall_clock()
    for index, event in enumerate(events):
        due = max(began + index / rate_per_s, event.occurred_at.timestamp())
        delay = due - wall_clock()
        if delay > 0:
            sleep(delay)
        yield event
