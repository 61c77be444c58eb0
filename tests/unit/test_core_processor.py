"""stream_processors.core.processor: dedup, orphans, late and future events, batches, rebuild."""

from __future__ import annotations

import gc
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest

from stream_processors.core.aggregates import BucketKey, MinuteAggregate, merge_into
from stream_processors.core.processor import (
    ORPHAN_HELD_LIMIT,
    ORPHAN_NO_OPEN,
    BatchResult,
    PartitionProcessor,
    ProcessorConfig,
)
from tests.unit.test_core_builders import (
    HOUR,
    MINUTE,
    MONDAY_9,
    Event,
    example_directory,
    make_event,
    numbered,
)

pytestmark = pytest.mark.unit

NOW = MONDAY_9 + 30 * 24 * HOUR  # far after every test event: "future" only where a test wants it


def process(
    events: list[Event], processor: PartitionProcessor | None = None, now: datetime = NOW
) -> BatchResult:
    processor = processor or PartitionProcessor(example_directory())
    return processor.process_batch(numbered(events), now)


def key(when: datetime, provider: str = "it", customer: str = "hr", service: str = "it.access") -> BucketKey:
    return BucketKey(provider, customer, service, when.replace(second=0, microsecond=0))


def test_a_request_becomes_deltas_per_minute_and_one_fact() -> None:
    result = process(
        [
            make_event("request.opened", MONDAY_9),
            make_event("request.responded", MONDAY_9 + 10 * MINUTE),
            make_event("request.resolved", MONDAY_9 + HOUR),
            make_event("feedback.submitted", MONDAY_9 + HOUR + 30 * timedelta(seconds=1), csat=4),
        ]
    )
    assert set(result.deltas) == {key(MONDAY_9), key(MONDAY_9 + 10 * MINUTE), key(MONDAY_9 + HOUR)}
    assert result.deltas[key(MONDAY_9)].requests_opened == 1
    assert result.deltas[key(MONDAY_9 + 10 * MINUTE)].first_response_count == 1
    last_minute = result.deltas[key(MONDAY_9 + HOUR)]
    assert (last_minute.requests_resolved, last_minute.sla_met, last_minute.csat_4) == (1, 1, 1)
    assert [fact.request_id for fact in result.facts] == ["r1"]
    assert (result.duplicates, result.late, result.dead_letters, result.last_offset) == (0, 0, [], 3)
    assert len(result.applied_events) == 4
    assert all(k.bucket_start.tzinfo is UTC for k in result.deltas)


def test_many_requests_in_one_minute_update_one_key() -> None:
    result = process(
        [make_event("request.opened", MONDAY_9 + i * timedelta(seconds=1), f"r{i}") for i in range(50)]
    )
    assert list(result.deltas) == [key(MONDAY_9)]
    assert result.deltas[key(MONDAY_9)].requests_opened == 50
    assert len(result.facts) == 50


def test_duplicates_are_counted_and_ignored() -> None:
    opened = make_event("request.opened", MONDAY_9)
    processor = PartitionProcessor(example_directory())
    first = process([opened, opened], processor)
    again = process([opened], processor)
    assert first.duplicates == 1 and first.deltas[key(MONDAY_9)].requests_opened == 1
    assert (again.duplicates, again.deltas, again.facts, again.applied_events) == (1, {}, [], [])


def test_dedup_forgets_after_its_horizon_and_beyond_its_cap() -> None:
    config = ProcessorConfig(dedup_max_entries=2)
    survey = make_event("survey.answered", MONDAY_9, score=10)
    others = [make_event("survey.answered", MONDAY_9, event_id=f"s{i}", score=10) for i in range(2)]
    result = process([survey, *others, survey], PartitionProcessor(example_directory(), config))
    assert result.duplicates == 0 and result.deltas[key(MONDAY_9)].nps_promoters == 4

    processor = PartitionProcessor(
        example_directory(), ProcessorConfig(dedup_horizon=timedelta(hours=1), grace=timedelta(minutes=30))
    )
    later = make_event("survey.answered", MONDAY_9 + 2 * HOUR, score=0)
    repeat = make_event("survey.answered", MONDAY_9 + 2 * HOUR - MINUTE, event_id=survey.event_id, score=10)
    result = process([survey, later, repeat], processor)
    assert result.duplicates == 0 and processor.state_size().remembered_event_ids == 2


def test_events_before_their_open_wait_for_it() -> None:
    result = process(
        [
            make_event("request.resolved", MONDAY_9 + HOUR),
            make_event("feedback.submitted", MONDAY_9 + HOUR, csat=2),
            make_event("request.responded", MONDAY_9 + 10 * MINUTE),
            make_event("request.opened", MONDAY_9),
        ]
    )
    assert result.dead_letters == []
    fact = result.facts[0]
    assert (fact.first_response_wall_s, fact.resolution_wall_s, fact.status) == (600.0, 3600.0, "resolved")
    assert result.deltas[key(MONDAY_9 + HOUR)].csat_2 == 1


def totals(results: list[BatchResult]) -> dict[BucketKey, MinuteAggregate]:
    """The deltas of several batches merged per bucket key (all-zero buckets left out)."""
    total: dict[BucketKey, MinuteAggregate] = {}
    for result in results:
        for bucket, delta in result.deltas.items():
            merge_into(total.setdefault(bucket, MinuteAggregate()), delta)
    return {bucket: aggregate for bucket, aggregate in total.items() if not aggregate.is_zero()}


def survey_at(when: datetime, number: int) -> Event:
    """Another department's traffic: moves the partition's watermark, touches no request."""
    return make_event(
        "survey.answered", when, event_id=f"traffic-{number}", provider="hr", service=None, score=8
    )


def test_a_reply_that_arrives_40_hours_of_event_time_before_its_open_is_measured() -> None:
    lifecycle = [
        make_event("request.opened", MONDAY_9),
        make_event("request.responded", MONDAY_9 + 10 * MINUTE),
        make_event("request.resolved", MONDAY_9 + HOUR),
        make_event("feedback.submitted", MONDAY_9 + 2 * HOUR, csat=4),
    ]
    traffic = [survey_at(MONDAY_9 + 40 * HOUR, 1)]
    in_order = process(lifecycle + traffic)

    processor = PartitionProcessor(example_directory())
    early = [process(lifecycle[1:] + traffic, processor)]  # sparse traffic: 40 h pass, no open
    assert processor.state_size().held_events == 3 and early[0].dead_letters == []
    early.append(process(lifecycle[:1], processor))
    assert early[1].dead_letters == [] and processor.state_size().held_events == 0
    [fact] = early[1].facts
    assert fact == in_order.facts[0]
    assert (fact.first_response_wall_s, fact.resolution_wall_s, fact.sla_met) == (600.0, 3600.0, True)
    assert totals(early) == totals([in_order])


def test_a_held_event_is_released_whenever_its_open_is_not_late() -> None:
    # The reply waits on its own occurred_at: while the open (dated before it) is within the grace
    # period, so is the reply. At watermark = open + 48 h exactly, neither is late.
    processor = PartitionProcessor(example_directory())
    process(
        [make_event("request.responded", MONDAY_9 + 10 * MINUTE), survey_at(MONDAY_9 + 48 * HOUR, 1)],
        processor,
    )
    result = process([make_event("request.opened", MONDAY_9)], processor)
    assert result.dead_letters == [] and result.facts[0].first_response_wall_s == 600.0


def test_orphans_become_dead_letters_when_they_fall_out_of_the_grace_period() -> None:
    processor = PartitionProcessor(example_directory())
    held = process(
        [
            make_event("request.responded", MONDAY_9, "ghost"),
            make_event("feedback.submitted", MONDAY_9 + MINUTE, "ghost", csat=1),
        ],
        processor,
    )
    assert (held.dead_letters, held.deltas, held.facts) == ([], {}, [])
    # Other requests' events move the watermark; the ghost's events wait out the grace period.
    on_time = process([survey_at(MONDAY_9 + 48 * HOUR, 1)], processor)
    assert on_time.dead_letters == [] and processor.state_size().held_events == 2
    expired = process([survey_at(MONDAY_9 + 48 * HOUR + timedelta(seconds=1), 2)], processor)
    assert [
        (dead.offset, dead.reason, dead.detail, dead.event.event_type) for dead in expired.dead_letters
    ] == [(0, "orphan", ORPHAN_NO_OPEN, "request.responded")]
    expired = process([survey_at(MONDAY_9 + 49 * HOUR, 3)], processor)
    assert [(dead.offset, dead.detail) for dead in expired.dead_letters] == [(1, ORPHAN_NO_OPEN)]
    assert processor.state_size().held_events == 0
    # An open dated no later than its events is now late itself.
    late_open = process([make_event("request.opened", MONDAY_9, "ghost")], processor)
    assert [dead.reason for dead in late_open.dead_letters] == ["late"]


def test_held_events_are_bounded_and_the_oldest_go_first() -> None:
    processor = PartitionProcessor(example_directory(), ProcessorConfig(max_held=2))
    arrivals = [MONDAY_9 + 2 * MINUTE, MONDAY_9, MONDAY_9 + MINUTE]  # the oldest arrives second
    result = process(
        [make_event("request.responded", at, f"g{i}") for i, at in enumerate(arrivals)], processor
    )
    assert [(dead.offset, dead.reason, dead.detail) for dead in result.dead_letters] == [
        (1, "orphan", ORPHAN_HELD_LIMIT)
    ]
    assert processor.state_size().held_events == 2


def test_released_events_do_not_pile_up_in_the_expiry_queue() -> None:
    # Every reply overtakes its open: each is held, then released. The queue of held events must
    # not keep their entries for the whole grace period.
    processor = PartitionProcessor(example_directory())
    events = []
    for number in range(3_000):
        at = MONDAY_9 + number * timedelta(seconds=1)
        events += [
            make_event("request.responded", at, f"r{number}"),
            make_event("request.opened", at, f"r{number}"),
        ]
    process(events, processor)
    assert processor.state_size().held_events == 0
    assert len(processor._held_order) <= 1024 + 1  # compacted: 2 x held + 1,024 at most


def test_a_held_event_costs_about_a_kilobyte() -> None:
    # docs/operations.md ("Events waiting for their open") has the measurement over 100,000.
    count = 5_000
    events = numbered(
        [
            make_event("request.responded", MONDAY_9 + i * timedelta(seconds=1), f"REQ-{i:08d}")
            for i in range(count)
        ]
    )
    processor = PartitionProcessor(example_directory())
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = processor.process_batch(events, NOW)
        del result
        gc.collect()
        per_event = (tracemalloc.get_traced_memory()[0] - before) / count
    finally:
        tracemalloc.stop()
    assert processor.state_size().held_events == count
    assert per_event < 1500, per_event  # measured 1,081 B (100,000 events, with its dedup entry)


def test_late_events_are_dead_letters() -> None:
    processor = PartitionProcessor(example_directory())
    result = process(
        [
            make_event("request.opened", MONDAY_9 + 49 * HOUR, "r2"),
            make_event("request.opened", MONDAY_9, "r1"),  # 49 h behind the watermark, grace 48 h
            make_event("request.opened", MONDAY_9 + 2 * HOUR, "r3"),  # 47 h: in grace
        ],
        processor,
    )
    assert result.late == 1
    assert [(dead.offset, dead.reason) for dead in result.dead_letters] == [(1, "late")]
    assert "watermark" in result.dead_letters[0].detail
    assert {fact.request_id for fact in result.facts} == {"r2", "r3"}
    assert processor.watermark == MONDAY_9 + 49 * HOUR
    # A late event is not remembered: sent again, it is late again, not a duplicate.
    assert process([make_event("request.opened", MONDAY_9, "r1")], processor).late == 1


def test_far_future_events_are_dead_letters_and_do_not_move_the_watermark() -> None:
    processor = PartitionProcessor(example_directory())
    now = MONDAY_9
    result = process(
        [
            make_event("request.opened", now + 5 * MINUTE, "r1"),  # within tolerance
            make_event("request.opened", now + 6 * MINUTE, "r2"),
        ],
        processor,
        now=now,
    )
    assert [(dead.offset, dead.reason) for dead in result.dead_letters] == [(1, "future")]
    assert processor.watermark == now + 5 * MINUTE


def test_unknown_departments_are_dead_letters() -> None:
    result = process([make_event("request.opened", MONDAY_9, provider="marketing", service=None)])
    assert [(dead.reason, dead.event.provider_department) for dead in result.dead_letters] == [
        ("unknown_department", "marketing")
    ]


def test_surveys_count_nps_in_their_minute() -> None:
    result = process(
        [
            make_event(
                "survey.answered",
                MONDAY_9 + i * timedelta(seconds=1),
                event_id=f"s{i}",
                service=None,
                score=score,
            )
            for i, score in enumerate([10, 9, 8, 0])
        ]
    )
    minute = result.deltas[key(MONDAY_9, service="")]
    assert (minute.nps_promoters, minute.nps_passives, minute.nps_detractors) == (2, 1, 1)
    assert result.facts == []


def test_closed_requests_are_forgotten_after_their_retention() -> None:
    processor = PartitionProcessor(example_directory())
    process(
        [
            make_event("request.opened", MONDAY_9),
            make_event("request.resolved", MONDAY_9 + HOUR),
            make_event("request.closed", MONDAY_9 + 2 * HOUR),
            make_event("request.opened", MONDAY_9 + 2 * HOUR, "still-open"),
        ],
        processor,
    )
    assert processor.state_size().requests == 2
    process([make_event("survey.answered", MONDAY_9 + 15 * 24 * HOUR, score=7)], processor)
    assert processor.state_size().requests == 1


def test_a_request_forgotten_in_the_batch_that_touched_it_still_reports_its_fact() -> None:
    processor = PartitionProcessor(example_directory())
    result = process(
        [
            make_event("request.opened", MONDAY_9),
            make_event("request.closed", MONDAY_9 + HOUR),
            make_event("survey.answered", MONDAY_9 + 15 * 24 * HOUR, score=7),
        ],
        processor,
    )
    assert [(fact.request_id, fact.status) for fact in result.facts] == [("r1", "closed")]


def test_rebuild_from_applied_events_restores_the_state() -> None:
    events = [
        make_event("request.opened", MONDAY_9),
        make_event("request.responded", MONDAY_9 + 10 * MINUTE),
        make_event("request.resolved", MONDAY_9 + 30 * MINUTE, "r2"),  # held: its open comes later
        make_event("request.opened", MONDAY_9 + 3 * HOUR, "r3"),
    ]
    rest = [
        make_event("request.opened", MONDAY_9 + 20 * MINUTE, "r2"),
        make_event("request.resolved", MONDAY_9 + 4 * HOUR),
    ]
    original = PartitionProcessor(example_directory())
    applied = process(events, original).applied_events
    restarted = PartitionProcessor(example_directory())
    restarted.rebuild(applied)
    assert restarted.state_size() == original.state_size() and restarted.watermark == original.watermark
    assert process(rest, restarted) == process(rest, original)


def test_held_events_survive_a_rebuild_and_count_when_their_open_arrives() -> None:
    lifecycle = [
        make_event("request.opened", MONDAY_9),
        make_event("request.responded", MONDAY_9 + 10 * MINUTE),
        make_event("request.status_changed", MONDAY_9 + 20 * MINUTE, status="waiting_on_customer"),
        make_event("request.resolved", MONDAY_9 + 3 * HOUR),
        make_event("feedback.submitted", MONDAY_9 + 4 * HOUR, csat=2),
    ]
    traffic = [survey_at(MONDAY_9 + 30 * HOUR, 1), survey_at(MONDAY_9 + 47 * HOUR, 2)]
    in_order = [process(lifecycle + traffic)]

    before_crash = process(lifecycle[1:] + traffic, PartitionProcessor(example_directory()))
    restarted = PartitionProcessor(example_directory())
    restarted.rebuild(before_crash.applied_events)  # what raw_events holds: the held events too
    assert restarted.state_size().held_events == 4
    after = process(lifecycle[:1], restarted)
    assert after.dead_letters == []
    assert after.facts == in_order[0].facts and after.facts[0].sla_met is not None
    assert totals([before_crash, after]) == totals(in_order)


@pytest.mark.parametrize("horizon", ["dedup_horizon", "closed_retention", "idle_retention"])
def test_config_rejects_memory_shorter_than_grace(horizon: str) -> None:
    with pytest.raises(ValueError, match="grace"):
        ProcessorConfig(**{horizon: timedelta(hours=24)})  # type: ignore[arg-type]  # one field by name


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        PartitionProcessor(example_directory()).process_batch([], datetime(2026, 3, 2))
