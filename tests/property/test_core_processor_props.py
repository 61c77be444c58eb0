"""PartitionProcessor laws: arrival order, batch boundaries, duplicates and rebuilds do not change
what is counted (within the grace period)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import RequestEvent, RequestOpened
from stream_processors.core.aggregates import BucketKey, MinuteAggregate, merge_into
from stream_processors.core.calendar import BusinessCalendar
from stream_processors.core.lifecycle import RequestFact
from stream_processors.core.processor import BatchResult, PartitionProcessor, ProcessorConfig
from tests.unit.test_core_builders import Event, example_directory, make_event, numbered

NOW = datetime(2027, 1, 1, tzinfo=UTC)
BASES = [
    datetime(2026, 3, 2, 8, tzinfo=UTC),  # Monday morning in Berlin
    datetime(2026, 3, 6, 15, tzinfo=UTC),  # Friday afternoon: the weekend follows
    datetime(2026, 3, 28, 20, tzinfo=UTC),  # Berlin's spring-forward night
    datetime(2026, 10, 31, 20, tzinfo=UTC),  # New York's fall-back night
]
# (provider, service, priority): business and calendar clocks, no SLA, another timezone.
OFFERINGS = [
    ("it", "it.access", "P2"),
    ("it", "it.outage", "P1"),
    ("hr", "hr.payroll", "P2"),
    ("facilities", None, "P3"),
    ("sales", "sales.quotes", None),
]
KINDS = [
    "request.responded",
    "request.status_changed",
    "request.resolved",
    "request.reopened",
    "request.closed",
    "feedback.submitted",
]
STATUSES = ["waiting_on_customer", "in_progress", "escalated"]
# partitions(): events span under 40 h, inside the 48 h grace; held events never expire there.
PATIENT = ProcessorConfig()


@st.composite
def request_events(
    draw: st.DrawFn,
    request_id: str,
    base: datetime,
    spread: timedelta = timedelta(hours=12),
    skew_s: int = 600,
) -> list[Event]:
    """A request opened within ``spread`` of ``base``; its other events up to ``skew_s`` before the
    open (a source's clock) and up to 26 h after it."""
    provider, service, priority = draw(st.sampled_from(OFFERINGS))
    customer = draw(st.sampled_from(["hr", "finance", "legal"]))
    common: dict[str, Any] = {"provider": provider, "customer": customer, "service": service, "priority": priority}
    opened = base + timedelta(minutes=draw(st.integers(0, int(spread.total_seconds()) // 60)))
    events = [make_event("request.opened", opened, request_id, event_id=f"{request_id}-open", **common)]
    if draw(st.integers(0, 9)) == 0:  # a source that sent the open twice
        again = opened + timedelta(minutes=draw(st.integers(-30, 30)))
        events.append(
            make_event("request.opened", again, request_id, event_id=f"{request_id}-open2", **common)
        )
    for index in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(KINDS))
        at = opened + timedelta(seconds=draw(st.integers(-skew_s, 26 * 3600)))
        fields: dict[str, Any] = {}
        if kind == "request.status_changed":
            fields["status"] = draw(st.sampled_from(STATUSES))
        elif kind == "feedback.submitted":
            fields["csat"] = draw(st.integers(1, 5))
        events.append(make_event(kind, at, request_id, event_id=f"{request_id}-{index}", **common, **fields))
    return events


@st.composite
def partitions(draw: st.DrawFn) -> list[Event]:
    """Events of a few requests and surveys, in the order a well-behaved source would send them."""
    base = draw(st.sampled_from(BASES))
    events: list[Event] = []
    for number in range(draw(st.integers(1, 4))):
        events.extend(draw(request_events(f"r{number}", base)))
    for number in range(draw(st.integers(0, 3))):
        at = base + timedelta(minutes=draw(st.integers(0, 36 * 60)))
        events.append(
            make_event(
                "survey.answered", at, event_id=f"s{number}", service=None, score=draw(st.integers(0, 10))
            )
        )
    return events


def in_batches(
    events: Sequence[Event], cuts: Sequence[int], processor: PartitionProcessor
) -> list[BatchResult]:
    items = numbered(list(events))
    bounds = [0, *sorted(cut % (len(items) + 1) for cut in cuts), len(items)]
    return [processor.process_batch(items[start:end], NOW) for start, end in pairwise(bounds)]


def totals(results: Sequence[BatchResult]) -> dict[BucketKey, MinuteAggregate]:
    total: dict[BucketKey, MinuteAggregate] = {}
    for result in results:
        for key, delta in result.deltas.items():
            merge_into(total.setdefault(key, MinuteAggregate()), delta)
    return {key: aggregate for key, aggregate in total.items() if not aggregate.is_zero()}


def final_facts(results: Sequence[BatchResult]) -> dict[str, RequestFact]:
    return {fact.request_id: fact for result in results for fact in result.facts}


def reference(events: list[Event]) -> list[BatchResult]:
    return [PartitionProcessor(example_directory(), PATIENT).process_batch(numbered(events), NOW)]


CUTS = st.lists(st.integers(0, 1000), max_size=6)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_arrival_order_and_batch_boundaries_do_not_change_totals_or_facts(data: st.DataObject) -> None:
    events = data.draw(partitions())
    shuffled = data.draw(st.permutations(events))
    results = in_batches(shuffled, data.draw(CUTS), PartitionProcessor(example_directory(), PATIENT))
    expected = reference(events)
    assert totals(results) == totals(expected)
    assert final_facts(results) == final_facts(expected)
    assert all(result.dead_letters == [] and result.duplicates == 0 for result in results)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_batch_boundaries_alone_do_not_change_deltas(data: st.DataObject) -> None:
    events = data.draw(partitions())
    results = in_batches(events, data.draw(CUTS), PartitionProcessor(example_directory(), PATIENT))
    assert totals(results) == totals(reference(events))
    assert sum(len(result.applied_events) for result in results) == len(events)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_duplicates_never_change_totals(data: st.DataObject) -> None:
    events = data.draw(partitions())
    copies = data.draw(st.lists(st.sampled_from(events), max_size=10))
    with_copies = data.draw(st.permutations(events + copies))
    results = in_batches(with_copies, data.draw(CUTS), PartitionProcessor(example_directory(), PATIENT))
    assert totals(results) == totals(reference(events))
    assert final_facts(results) == final_facts(reference(events))
    assert sum(result.duplicates for result in results) == len(copies)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_rebuild_of_a_prefix_then_the_suffix_equals_the_uninterrupted_run(data: st.DataObject) -> None:
    events = data.draw(st.permutations(data.draw(partitions())))
    events += data.draw(st.lists(st.sampled_from(events), max_size=3))  # and duplicates
    split = data.draw(st.integers(0, len(events)))
    prefix, suffix = numbered(events[:split]), numbered(events, 0)[split:]

    uninterrupted = PartitionProcessor(example_directory())
    before_crash = uninterrupted.process_batch(prefix, NOW)
    size_at_crash = uninterrupted.state_size()
    expected = uninterrupted.process_batch(suffix, NOW)

    restarted = PartitionProcessor(example_directory())
    restarted.rebuild(before_crash.applied_events)
    assert restarted.state_size() == size_at_crash
    assert restarted.process_batch(suffix, NOW) == expected
    assert restarted.state_size() == uninterrupted.state_size()
    assert restarted.watermark == uninterrupted.watermark


# --- delivery orders that hold events for days ---------------------------------------------------

GRACE = ProcessorConfig().grace


@st.composite
def sparse_partitions(draw: st.DrawFn) -> list[Event]:
    """Requests opened over five days (twice the grace period), in creation order. Their events
    are dated at or after their open, as a source with one clock dates them: an event dated before
    its open is held on its own date (see PartitionProcessor._hold)."""
    base = draw(st.sampled_from(BASES))
    events: list[Event] = []
    for number in range(draw(st.integers(1, 6))):
        events.extend(draw(request_events(f"r{number}", base, spread=timedelta(days=5), skew_s=0)))
    for number in range(draw(st.integers(0, 4))):
        at = base + timedelta(minutes=draw(st.integers(0, 6 * 24 * 60)))
        events.append(
            make_event(
                "survey.answered", at, event_id=f"s{number}", service=None, score=draw(st.integers(0, 10))
            )
        )
    return events


@st.composite
def within_grace(draw: st.DrawFn, events: list[Event]) -> list[Event]:
    """Any delivery order in which no event is more than the grace period older than the running
    watermark when it arrives: each next event is any one of those the choice leaves no other
    remaining event late for (dated at most grace after the oldest remaining one)."""
    remaining = list(events)
    delivered: list[Event] = []
    while remaining:
        oldest = min(event.occurred_at for event in remaining)
        eligible = [event for event in remaining if event.occurred_at <= oldest + GRACE]
        chosen = eligible[draw(st.integers(0, len(eligible) - 1))]
        remaining.remove(chosen)
        delivered.append(chosen)
    return delivered


def in_event_time(events: list[Event]) -> list[Event]:
    """In-order delivery; the sort is stable, so an open comes before its same-instant events."""
    return sorted(events, key=lambda event: event.occurred_at)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_delivery_order_within_the_grace_period_counts_as_in_order(data: st.DataObject) -> None:
    events = data.draw(sparse_partitions())
    delivered = data.draw(within_grace(events))
    results = in_batches(delivered, data.draw(CUTS), PartitionProcessor(example_directory()))
    expected = [PartitionProcessor(example_directory()).process_batch(numbered(in_event_time(events)), NOW)]
    assert all(result.dead_letters == [] and result.late == 0 for result in results)
    assert totals(results) == totals(expected)
    assert final_facts(results) == final_facts(expected)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_held_events_survive_a_rebuild_in_any_delivery_order_within_the_grace_period(
    data: st.DataObject,
) -> None:
    events = data.draw(sparse_partitions())
    delivered = numbered(data.draw(within_grace(events)))
    split = data.draw(st.integers(0, len(delivered)))

    before_crash = PartitionProcessor(example_directory()).process_batch(delivered[:split], NOW)
    restarted = PartitionProcessor(example_directory())
    restarted.rebuild(before_crash.applied_events)
    after = restarted.process_batch(delivered[split:], NOW)

    expected = [PartitionProcessor(example_directory()).process_batch(numbered(in_event_time(events)), NOW)]
    assert before_crash.dead_letters == after.dead_letters == []
    assert restarted.state_size().held_events == 0
    assert totals([before_crash, after]) == totals(expected)
    assert final_facts([before_crash, after]) == final_facts(expected)


# --- the first-response and resolution verdicts --------------------------------------------------

# Same-instant events apply in this order (as lifecycle's timeline orders them).
SAME_INSTANT_ORDER = {
    "request.opened": -1,
    "request.responded": 0,
    "request.status_changed": 1,
    "request.resolved": 2,
    "request.closed": 3,
    "request.reopened": 4,
    "feedback.submitted": 5,
}


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_verdicts_agree_with_the_measured_times_and_the_combined_verdict(data: st.DataObject) -> None:
    """Each verdict against what the fact measured (business seconds on the provider's calendar, whole
    seconds here): met exactly when the completion's time is within target; the combined verdict is
    both; an open metric is breached exactly when its clock, brute-forced from the pause history,
    exceeds the target at the watermark; the totals count one verdict per judged fact."""
    events = data.draw(sparse_partitions())
    processor = PartitionProcessor(example_directory())
    results = in_batches(data.draw(within_grace(events)), data.draw(CUTS), processor)
    facts = final_facts(results)
    watermark = processor.watermark
    assert watermark is not None
    counted = {("first_response", True): 0, ("first_response", False): 0, ("resolution", True): 0, ("resolution", False): 0}
    for aggregate in totals(results).values():
        counted["first_response", True] += aggregate.first_response_sla_met
        counted["first_response", False] += aggregate.first_response_sla_breached
        counted["resolution", True] += aggregate.resolution_sla_met
        counted["resolution", False] += aggregate.resolution_sla_breached
    expected = dict.fromkeys(counted, 0)
    by_request = {event.request_id: event for event in events if isinstance(event, RequestEvent)}
    for request_id, fact in facts.items():
        if fact.sla_first_response_target_s is None:
            assert (fact.first_response_sla_met, fact.resolution_sla_met) == (None, None)
            continue
        for metric, met in (("first_response", fact.first_response_sla_met), ("resolution", fact.resolution_sla_met)):
            if met is not None:
                expected[metric, met] += 1
        target = example_directory().sla_target(
            fact.provider_department, fact.service_category or None, fact.priority, fact.customer_department
        )
        assert target is not None
        if target.clock != "business":
            continue
        if fact.first_response_business_s is not None:
            assert fact.first_response_sla_met == (fact.first_response_business_s <= target.first_response)
        else:
            elapsed = _brute_force_elapsed(events, request_id, watermark)
            assert fact.first_response_sla_met == (False if elapsed > target.first_response else None), by_request[request_id]
        if fact.resolved_at is not None and fact.reopen_count == 0:
            assert fact.resolution_sla_met == (fact.resolution_business_s is not None and fact.resolution_business_s <= target.resolution)
            assert fact.sla_met == (fact.first_response_sla_met and fact.resolution_sla_met)
    assert counted == expected


def _brute_force_elapsed(events: list[Event], request_id: str, until: datetime) -> float:
    """Business seconds a request without a reply or resolution has run from its open to ``until``,
    replayed from its status history independently of the lifecycle: working time on the provider's
    calendar (itself checked minute by minute in test_core_calendar_props) outside the intervals a
    pause status or a close stopped the clock."""
    own = sorted(
        (event for event in events if isinstance(event, RequestEvent) and event.request_id == request_id),
        key=lambda event: (event.occurred_at, SAME_INSTANT_ORDER[event.event_type]),
    )
    opens = [event for event in own if isinstance(event, RequestOpened)]
    opened = min(opens, key=lambda event: (event.occurred_at, event.event_id))
    department = example_directory().department(opened.provider_department)
    calendar = BusinessCalendar.from_calendar(department.calendar)
    rule = example_directory().sla_rule(
        opened.provider_department, opened.service_category, opened.priority, opened.customer_department
    )
    assert rule is not None
    changes: list[tuple[datetime, bool]] = []  # (when, paused from then on)
    closed = waiting = False
    for event in own:
        if event.event_type == "request.status_changed":
            waiting = event.status in rule.pause_statuses
        elif event.event_type == "request.closed":
            closed, waiting = True, False
        elif event.event_type == "request.reopened" and closed:
            closed = waiting = False
        else:
            continue
        changes.append((max(event.occurred_at, opened.occurred_at), waiting or closed))
    total, cursor, paused = 0.0, opened.occurred_at, False
    for when, now_paused in [*changes, (until, False)]:
        when = min(when, until)
        if not paused and when > cursor:
            total += calendar.business_seconds(cursor, when)
        cursor, paused = max(cursor, when), now_paused
    return total
