"""PartitionProcessor laws: arrival order, batch boundaries, duplicates and rebuilds do not change
what is counted (within the grace period and the orphan horizon)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from stream_processors.core.aggregates import BucketKey, MinuteAggregate, merge_into
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
KINDS = ["request.responded", "request.status_changed", "request.resolved", "request.reopened",
         "request.closed", "feedback.submitted"]
STATUSES = ["waiting_on_customer", "in_progress", "escalated"]
# Events span under 40 h, inside the 48 h grace; held events never expire here.
PATIENT = ProcessorConfig(orphan_horizon=timedelta(days=3))


@st.composite
def request_events(draw: st.DrawFn, request_id: str, base: datetime) -> list[Event]:
    provider, service, priority = draw(st.sampled_from(OFFERINGS))
    customer = draw(st.sampled_from(["hr", "finance", "legal"]))
    common = {"provider": provider, "customer": customer, "service": service, "priority": priority}
    opened = base + timedelta(minutes=draw(st.integers(0, 12 * 60)))
    events = [make_event("request.opened", opened, request_id, event_id=f"{request_id}-open", **common)]
    if draw(st.integers(0, 9)) == 0:  # a source that sent the open twice
        again = opened + timedelta(minutes=draw(st.integers(-30, 30)))
        events.append(make_event("request.opened", again, request_id, event_id=f"{request_id}-open2", **common))
    for index in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(KINDS))
        at = opened + timedelta(seconds=draw(st.integers(-600, 26 * 3600)))
        fields: dict[str, object] = {}
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
        events.append(make_event("survey.answered", at, event_id=f"s{number}", service=None,
                                 score=draw(st.integers(0, 10))))
    return events


def in_batches(events: Sequence[Event], cuts: Sequence[int], processor: PartitionProcessor) -> list[BatchResult]:
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
    # Default config: events wait only an hour for their open, so held and expired orphans are in play.
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
