"""producers.simulator: determinism, validity, time order, business hours, scenarios, pacing."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from producers.simulator import SCENARIOS, Event, history, live, scenario_named, simulate
from schemas.directory import Directory, load_directory
from schemas.events import event_to_json, parse_event
from stream_processors.core.calendar import BusinessCalendar

pytestmark = pytest.mark.unit

EXAMPLE_ORG = Path(__file__).parents[2] / "deploy" / "directory" / "example-org.yaml"
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
WEEK = timedelta(days=7)
FORTNIGHT = timedelta(days=14)
RATE = 0.05  # request events per second: about 4,300 a day, the demo's volume


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory(EXAMPLE_ORG)


@pytest.fixture(scope="module")
def steady_week(directory: Directory) -> list[Event]:
    return list(simulate(directory, START, WEEK, RATE, seed=3))


@dataclass
class PairStats:
    """What the processors would compute for one (provider, customer) pair, from the events alone."""

    first_response_business: list[float] = field(default_factory=list)
    first_response_met: list[bool] = field(default_factory=list)
    csat: list[int] = field(default_factory=list)
    survey_scores: list[int] = field(default_factory=list)

    @property
    def attainment(self) -> float:
        return sum(self.first_response_met) / len(self.first_response_met)

    @property
    def satisfied_share(self) -> float:
        return sum(score >= 4 for score in self.csat) / len(self.csat)

    @property
    def nps(self) -> float:
        scores = self.survey_scores
        return 100 * (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / len(scores)


def pair_stats(
    events: list[Event], directory: Directory, since: datetime
) -> dict[tuple[str, str], PairStats]:
    """Per pair, for requests opened (and survey answers given) at or after ``since``.

    Business time comes from the stream processors' own calendar, an independent implementation.
    """
    calendars = {d.id: BusinessCalendar.from_calendar(d.calendar) for d in directory.departments}
    opened: dict[str, Event] = {}
    answered: set[str] = set()
    stats: dict[tuple[str, str], PairStats] = defaultdict(PairStats)
    for event in events:
        pair = (event.provider_department, event.customer_department)
        if event.event_type == "survey.answered":
            if event.occurred_at >= since:
                stats[pair].survey_scores.append(event.score)
            continue
        if event.event_type == "request.opened":
            opened[event.request_id] = event
            continue
        request = opened[event.request_id]
        if request.occurred_at < since:
            continue
        if event.event_type == "request.responded" and event.request_id not in answered:
            answered.add(event.request_id)
            target = directory.sla_target(
                request.provider_department, request.service_category, request.priority
            )
            assert target is not None
            if target.clock == "business":
                calendar = calendars[request.provider_department]
                elapsed = calendar.business_seconds(request.occurred_at, event.occurred_at)
            else:
                elapsed = (event.occurred_at - request.occurred_at).total_seconds()
            stats[pair].first_response_business.append(elapsed)
            stats[pair].first_response_met.append(elapsed <= target.first_response)
        elif event.event_type == "feedback.submitted":
            stats[pair].csat.append(event.csat)
    return stats


# --- determinism, validity, order -----------------------------------------------------------------


def test_the_same_seed_gives_the_same_events(directory: Directory) -> None:
    def run(seed: int) -> list[bytes]:
        return [event_to_json(e) for e in simulate(directory, START, timedelta(days=1), RATE, seed=seed)]

    first = run(11)
    assert first == run(11)
    assert first != run(12)
    assert len(first) > 1000


def test_every_event_is_valid_against_the_directory(directory: Directory, steady_week: list[Event]) -> None:
    for event in steady_week:
        assert parse_event(event_to_json(event), directory) == event
    assert len({event.event_id for event in steady_week}) == len(steady_week)


def test_events_come_in_event_time_order_inside_the_window(steady_week: list[Event]) -> None:
    times = [event.occurred_at for event in steady_week]
    assert times == sorted(times)
    assert times[0] >= START and times[-1] < START + WEEK


def test_requests_interleave_and_each_begins_with_its_opening(steady_week: list[Event]) -> None:
    seen: set[str] = set()
    switches = 0
    previous = None
    for event in steady_week:
        if event.event_type == "survey.answered":
            continue
        if event.event_type == "request.opened":
            assert event.request_id not in seen
            seen.add(event.request_id)
        else:
            assert event.request_id in seen, f"{event.event_type} before its request was opened"
        switches += previous is not None and previous != event.request_id
        previous = event.request_id
    assert switches > len(seen)  # lifecycles overlap, they are not emitted one after another


def test_every_event_type_occurs_and_waiting_is_followed_by_resuming(steady_week: list[Event]) -> None:
    types = Counter(event.event_type for event in steady_week)
    assert set(types) == {
        "request.opened", "request.responded", "request.status_changed", "request.resolved",
        "request.reopened", "request.closed", "feedback.submitted", "survey.answered",
    }  # fmt: skip
    statuses: dict[str, list[str]] = defaultdict(list)
    for event in steady_week:
        if event.event_type == "request.status_changed":
            statuses[event.request_id].append(event.status)
    assert all(s[0] == "waiting_on_customer" and s[1:] in ([], ["in_progress"]) for s in statuses.values())
    assert types["request.status_changed"] > 0.1 * types["request.opened"]
    first_day = {
        e.request_id
        for e in steady_week
        if e.event_type == "request.opened" and e.occurred_at < START + timedelta(days=1)
    }
    rated = {e.request_id for e in steady_week if e.event_type == "feedback.submitted"} & first_day
    assert 0.2 < len(rated) / len(first_day) < 0.4  # Scenario.feedback_share 0.35, less the unresolved


# --- realism: volumes, hours, surveys ----------------------------------------------------------------


def test_rate_is_the_average_of_request_events_per_second(directory: Directory) -> None:
    week_requests = sum(1 for e in simulate(directory, START, WEEK, RATE, seed=5) if e.source != "hr-survey")
    assert week_requests == pytest.approx(RATE * WEEK.total_seconds(), rel=0.1)
    # A short window holds mostly openings, and still about rate x duration of them.
    minute = list(simulate(directory, START + timedelta(hours=9), timedelta(minutes=1), 50.0, seed=5))
    assert len(minute) == pytest.approx(50 * 60, rel=0.15)


def test_it_and_hr_are_asked_most_and_sales_asks_legal(steady_week: list[Event]) -> None:
    opened = [e for e in steady_week if e.event_type == "request.opened"]
    by_provider = Counter(e.provider_department for e in opened)
    assert [provider for provider, _ in by_provider.most_common(2)] == ["it", "hr"]
    legal_customers = Counter(e.customer_department for e in opened if e.provider_department == "legal")
    assert legal_customers.most_common(1)[0][0] == "sales"
    procurement_customers = Counter(
        e.customer_department for e in opened if e.provider_department == "procurement"
    )
    assert procurement_customers.most_common(1)[0][0] == "finance"


def test_requests_are_opened_in_the_customers_working_hours(
    directory: Directory, steady_week: list[Event]
) -> None:
    calendars = {d.id: BusinessCalendar.from_calendar(d.calendar) for d in directory.departments}
    opened = [e for e in steady_week if e.event_type == "request.opened"]
    in_hours = sum(
        calendars[e.customer_department].business_seconds(e.occurred_at - timedelta(seconds=1), e.occurred_at)
        > 0
        for e in opened
    )
    assert in_hours / len(opened) > 0.85
    weekend = sum(e.occurred_at.weekday() >= 5 for e in opened)
    assert weekend / len(opened) < 0.05


def test_replies_land_inside_the_providers_business_hours(
    directory: Directory, steady_week: list[Event]
) -> None:
    calendars = {d.id: BusinessCalendar.from_calendar(d.calendar) for d in directory.departments}
    replies = [e for e in steady_week if e.event_type in ("request.responded", "request.resolved")]
    business_clock = [
        e
        for e in replies
        if (target := directory.sla_target(e.provider_department, e.service_category, e.priority)) is None
        or target.clock == "business"
    ]
    assert len(business_clock) > 0.9 * len(replies)  # it.outage P1/P2 run on calendar time: on call
    for reply in business_clock:
        around = (
            reply.occurred_at - timedelta(milliseconds=10),
            reply.occurred_at + timedelta(milliseconds=10),
        )
        assert calendars[reply.provider_department].business_seconds(*around) > 0


def test_pulse_surveys_come_fortnightly_with_enough_answers_per_pair(directory: Directory) -> None:
    events = list(simulate(directory, START, timedelta(days=28), 0.001, seed=8))  # surveys do not scale
    answers = [e for e in events if e.event_type == "survey.answered"]
    waves = Counter(e.attributes["survey"] for e in answers)
    assert len(waves) == 2
    per_pair_and_wave = Counter(
        (e.attributes["survey"], e.provider_department, e.customer_department) for e in answers
    )
    assert min(per_pair_and_wave.values()) >= directory.alert_policy.nps_min_sample
    assert {e.provider_department for e in answers} == {"it", "hr", "facilities", "finance"}
    assert all(e.source == "hr-survey" and e.customer_department != e.provider_department for e in answers)


def test_steady_service_meets_its_targets(directory: Directory, steady_week: list[Event]) -> None:
    policy = directory.alert_policy
    stats = pair_stats(steady_week, directory, START)
    it_for_finance = stats[("it", "finance")]
    assert it_for_finance.attainment >= policy.sla_attainment_target
    assert it_for_finance.satisfied_share >= policy.satisfied_share_target
    everything = PairStats(
        first_response_met=[m for s in stats.values() for m in s.first_response_met],
        csat=[c for s in stats.values() for c in s.csat],
    )
    assert everything.attainment >= 0.97
    assert statistics.mean(everything.csat) >= policy.csat_target


# --- the it-degradation scenario -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def degraded_and_steady(directory: Directory) -> tuple[dict[tuple[str, str], PairStats], ...]:
    start = START + WEEK  # the pulse survey of Monday 16 March falls in the degraded half
    halfway = start + FORTNIGHT / 2
    return tuple(
        pair_stats(
            list(simulate(directory, start, FORTNIGHT, RATE, seed=21, scenario=name)), directory, halfway
        )
        for name in ("it-degradation", "steady")
    )


def test_it_degradation_slows_it_replies_to_finance(
    directory: Directory, degraded_and_steady: tuple[dict[tuple[str, str], PairStats], ...]
) -> None:
    degraded, steady = (stats[("it", "finance")] for stats in degraded_and_steady)
    policy = directory.policy_for("it")
    assert statistics.median(degraded.first_response_business) > 3 * statistics.median(
        steady.first_response_business
    )
    assert degraded.attainment < 0.5 < policy.sla_attainment_target <= steady.attainment
    assert len(degraded.first_response_met) >= 7 * policy.sla_min_sample  # a week's worth, every day over


def test_it_degradation_lowers_finances_csat_and_survey_scores_for_it(
    directory: Directory, degraded_and_steady: tuple[dict[tuple[str, str], PairStats], ...]
) -> None:
    degraded, steady = (stats[("it", "finance")] for stats in degraded_and_steady)
    policy = directory.policy_for("it")
    assert degraded.satisfied_share < 0.6 < policy.satisfied_share_target <= steady.satisfied_share
    assert statistics.mean(degraded.csat) < policy.csat_target <= statistics.mean(steady.csat)
    assert len(degraded.csat) >= 7 * policy.csat_min_sample
    assert len(degraded.survey_scores) >= policy.nps_min_sample
    assert degraded.nps < policy.nps_target < steady.nps


def test_it_degradation_leaves_other_pairs_alone(
    degraded_and_steady: tuple[dict[tuple[str, str], PairStats], ...],
) -> None:
    degraded, steady = (
        PairStats(
            first_response_met=[
                m for pair, s in stats.items() if pair != ("it", "finance") for m in s.first_response_met
            ],
            csat=[c for pair, s in stats.items() if pair != ("it", "finance") for c in s.csat],
        )
        for stats in degraded_and_steady
    )
    assert degraded.attainment >= 0.97
    assert degraded.satisfied_share == pytest.approx(steady.satisfied_share, abs=0.03)


def test_history_is_the_window_that_ends_at_end(directory: Directory) -> None:
    end = START + timedelta(days=3)
    events = list(history(directory, end, days=2, rate_per_s=0.005, seed=1))
    assert events == list(simulate(directory, START + timedelta(days=1), timedelta(days=2), 0.005, seed=1))
    assert events[0].occurred_at >= end - timedelta(days=2) and events[-1].occurred_at < end


def test_scenarios_are_looked_up_by_name() -> None:
    assert set(SCENARIOS) >= {"steady", "it-degradation"}
    with pytest.raises(KeyError, match="unknown scenario 'nope'; known: steady"):
        scenario_named("nope")


def test_simulate_refuses_a_naive_start(directory: Directory) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next(simulate(directory, datetime(2026, 3, 2), WEEK, RATE))


# --- live pacing ------------------------------------------------------------------------------------------


class FakeWallClock:
    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_live_paces_to_the_rate_and_never_runs_ahead_of_event_time(steady_week: list[Event]) -> None:
    first = steady_week[0].occurred_at.timestamp()
    clock = FakeWallClock(first)
    emitted = []
    for event in live(steady_week[:50], rate_per_s=10, wall_clock=clock, sleep=clock.sleep):
        emitted.append(clock.now)
        assert clock.now >= event.occurred_at.timestamp() - 1e-6
    assert all(later - earlier >= 0.1 - 1e-9 for earlier, later in itertools.pairwise(emitted))


def test_live_does_not_sleep_for_events_already_due(steady_week: list[Event]) -> None:
    clock = FakeWallClock(steady_week[-1].occurred_at.timestamp() + 3600)
    assert len(list(live(steady_week[:100], rate_per_s=1e9, wall_clock=clock, sleep=clock.sleep))) == 100
    assert sum(clock.slept) < 1e-3
