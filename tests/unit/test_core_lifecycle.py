"""stream_processors.core.lifecycle: one request's times, SLA, samples and fact."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from schemas.events import RequestEvent, RequestOpened
from stream_processors.core.aggregates import Sample, SampleKind
from stream_processors.core.lifecycle import FACT_COLUMNS, Entry, LifecycleRules, RequestTracker, minute_start
from tests.unit.test_core_builders import HOUR, MINUTE, MONDAY_9, example_directory, make_request_event

pytestmark = pytest.mark.unit

K = SampleKind
RULES = LifecycleRules(example_directory())
SATURDAY_10 = datetime(2026, 3, 7, 9, tzinfo=UTC)  # 10:00 in Berlin: IT does not work


def track(events: list[RequestEvent]) -> tuple[RequestTracker, Counter[Entry]]:
    """Apply events in the order given (the first must be the open); sum what was emitted."""
    opened = events[0]
    assert isinstance(opened, RequestOpened)
    tracker = RequestTracker(opened, RULES)
    emitted: Counter[Entry] = Counter(tracker.entries)
    for event in events[1:]:
        retracted, added = tracker.apply(event)
        emitted.subtract(retracted)
        emitted.update(added)
    assert +emitted == Counter(tracker.entries)  # the deltas always add up to the current samples
    return tracker, +emitted


def samples(emitted: Counter[Entry]) -> list[tuple[datetime, Sample]]:
    return sorted(
        ((datetime.fromtimestamp(bucket[3], UTC), sample) for bucket, sample in emitted.elements()),
        key=lambda pair: (pair[0], pair[1].kind),
    )


def at(when: datetime) -> datetime:
    return datetime.fromtimestamp(minute_start(when.timestamp()), UTC)


def test_in_order_request_within_sla() -> None:
    opened, replied, resolved = MONDAY_9, MONDAY_9 + 20 * MINUTE, MONDAY_9 + 4 * HOUR
    tracker, emitted = track([
        make_request_event("request.opened", opened),
        make_request_event("request.responded", replied),
        make_request_event("request.resolved", resolved),
    ])
    assert samples(emitted) == [
        (opened, Sample(K.OPENED)),
        (replied, Sample(K.FIRST_RESPONSE, 1200.0, 1200.0)),
        (replied, Sample(K.FIRST_RESPONSE_SLA_MET)),
        (resolved, Sample(K.FIRST_RESOLUTION, 14400.0, 14400.0)),
        (resolved, Sample(K.SLA_MET)),
        (resolved, Sample(K.RESOLUTION_SLA_MET)),
    ]
    fact = tracker.fact()
    assert (fact.status, fact.sla_met, fact.reopen_count) == ("resolved", True, 0)
    assert (fact.opened_at, fact.first_response_at, fact.resolved_at, fact.closed_at) == (opened, replied, resolved, None)
    assert (fact.first_response_wall_s, fact.resolution_business_s) == (1200.0, 14400.0)
    assert (fact.sla_first_response_target_s, fact.sla_resolution_target_s) == (1800.0, 28800.0)
    assert (fact.provider_department, fact.customer_department, fact.service_category) == ("it", "hr", "it.access")
    assert len(fact.to_row()) == len(FACT_COLUMNS) and fact.to_row()[0] == "r1"


def test_waiting_on_customer_pauses_business_time_not_wall_time() -> None:
    tracker, emitted = track([
        make_request_event("request.opened", MONDAY_9),
        make_request_event("request.responded", MONDAY_9 + 10 * MINUTE),
        make_request_event("request.status_changed", MONDAY_9 + HOUR, status="waiting_on_customer"),
        make_request_event("request.status_changed", MONDAY_9 + 3 * HOUR, status="in_progress"),
        make_request_event("request.resolved", MONDAY_9 + 5 * HOUR),
    ])
    assert (MONDAY_9 + 5 * HOUR, Sample(K.FIRST_RESOLUTION, 5 * 3600.0, 3 * 3600.0)) in samples(emitted)
    assert tracker.fact().status == "resolved"


def test_any_other_status_resumes_the_clock() -> None:
    tracker, _ = track([
        make_request_event("request.opened", MONDAY_9),
        make_request_event("request.status_changed", MONDAY_9 + HOUR, status="waiting_on_customer"),
        make_request_event("request.status_changed", MONDAY_9 + 2 * HOUR, status="escalated"),
        make_request_event("request.responded", MONDAY_9 + 3 * HOUR),
    ])
    fact = tracker.fact()
    assert (fact.first_response_wall_s, fact.first_response_business_s, fact.status) == (10800.0, 7200.0, "escalated")


def test_business_time_skips_the_night_and_a_late_first_response_breaches() -> None:
    opened = MONDAY_9 + 8 * HOUR  # 17:00 local
    tracker, emitted = track([
        make_request_event("request.opened", opened),
        make_request_event("request.responded", opened + 15 * HOUR + 20 * MINUTE),  # Tue 08:20 local
        make_request_event("request.resolved", opened + 16 * HOUR),  # Tue 09:00 local
    ])
    fact = tracker.fact()
    assert (fact.first_response_wall_s, fact.first_response_business_s) == (55200.0, 4800.0)
    assert (fact.resolution_business_s, fact.sla_met) == (7200.0, False)
    assert Counter(sample.kind for _, sample in samples(emitted))[K.SLA_BREACHED] == 1


def test_resolving_without_a_reply_ends_first_response_too() -> None:
    resolved = MONDAY_9 + 2 * HOUR
    tracker, emitted = track([make_request_event("request.opened", MONDAY_9), make_request_event("request.resolved", resolved)])
    assert (resolved, Sample(K.FIRST_RESPONSE, 7200.0, 7200.0)) in samples(emitted)
    assert tracker.fact().first_response_at == resolved


def test_reopen_and_re_resolution() -> None:
    tracker, emitted = track([
        make_request_event("request.opened", MONDAY_9),
        make_request_event("request.responded", MONDAY_9 + 10 * MINUTE),
        make_request_event("request.resolved", MONDAY_9 + HOUR),
        make_request_event("request.reopened", MONDAY_9 + 2 * HOUR),
        make_request_event("request.resolved", MONDAY_9 + 3 * HOUR),
        make_request_event("request.closed", MONDAY_9 + 4 * HOUR),
    ])
    kinds = Counter(sample.kind for _, sample in samples(emitted))
    assert kinds == {K.OPENED: 1, K.FIRST_RESPONSE: 1, K.FIRST_RESOLUTION: 1, K.RESOLUTION: 1,
                     K.REOPENED: 1, K.SLA_MET: 1, K.FIRST_RESPONSE_SLA_MET: 1, K.RESOLUTION_SLA_MET: 1}
    # Measured from the open; business time leaves out the hour it spent resolved.
    assert (MONDAY_9 + 3 * HOUR, Sample(K.RESOLUTION, 3 * 3600.0, 2 * 3600.0)) in samples(emitted)
    fact = tracker.fact()
    assert (fact.status, fact.reopen_count, fact.sla_met) == ("closed", 1, True)
    assert (fact.resolved_at, fact.closed_at) == (MONDAY_9 + 3 * HOUR, MONDAY_9 + 4 * HOUR)
    assert tracker.closed


def test_reopen_of_an_unresolved_request_is_ignored() -> None:
    tracker, emitted = track([make_request_event("request.opened", MONDAY_9), make_request_event("request.reopened", MONDAY_9 + HOUR)])
    # Only the first-response target (30 min), which the reopen's event time has passed, is judged.
    assert samples(emitted) == [(MONDAY_9, Sample(K.OPENED)), (MONDAY_9 + 30 * MINUTE, Sample(K.FIRST_RESPONSE_SLA_BREACHED))]
    assert (tracker.fact().status, tracker.fact().reopen_count) == ("open", 0)


def test_calendar_clock_sla_counts_wall_time_minus_pauses() -> None:
    # it.outage P1: first response 10 min, resolution 4 h, on the calendar clock; Saturday has no business hours.
    events = [
        make_request_event("request.opened", SATURDAY_10, service="it.outage", priority="P1"),
        make_request_event("request.responded", SATURDAY_10 + 5 * MINUTE, service="it.outage", priority="P1"),
        make_request_event("request.status_changed", SATURDAY_10 + 30 * MINUTE, status="waiting_on_customer"),
        make_request_event("request.status_changed", SATURDAY_10 + 150 * MINUTE, status="in_progress"),
        make_request_event("request.resolved", SATURDAY_10 + 5 * HOUR),
    ]
    fact = track(events)[0].fact()
    assert (fact.resolution_wall_s, fact.resolution_business_s) == (18000.0, 0.0)
    assert fact.sla_met is True  # 5 h wall - 2 h waiting = 3 h <= 4 h


def test_no_sla_without_priority() -> None:
    tracker, emitted = track([
        make_request_event("request.opened", MONDAY_9, priority=None),
        make_request_event("request.resolved", MONDAY_9 + HOUR, priority=None),
    ])
    fact = tracker.fact()
    assert (fact.sla_met, fact.sla_first_response_target_s, fact.sla_resolution_target_s) == (None, None, None)
    assert not {K.SLA_MET, K.SLA_BREACHED} & {sample.kind for _, sample in samples(emitted)}


def test_an_earlier_reply_arriving_late_retracts_the_counted_one() -> None:
    opened = make_request_event("request.opened", MONDAY_9)
    late_reply = make_request_event("request.responded", MONDAY_9 + 30 * MINUTE)
    early_reply = make_request_event("request.responded", MONDAY_9 + 5 * MINUTE)
    resolved = make_request_event("request.resolved", MONDAY_9 + HOUR)
    assert isinstance(opened, RequestOpened)
    tracker = RequestTracker(opened, RULES)
    tracker.apply(late_reply)
    tracker.apply(resolved)
    retracted, added = tracker.apply(early_reply)
    # 30 minutes is exactly the target: met, in the late reply's minute, then in the early one's.
    assert sorted(retracted) == [(("it", "hr", "it.access", minute_start((MONDAY_9 + 30 * MINUTE).timestamp())), sample)
                                 for sample in (Sample(K.FIRST_RESPONSE, 1800.0, 1800.0), Sample(K.FIRST_RESPONSE_SLA_MET))]
    assert sorted(added) == [(("it", "hr", "it.access", minute_start((MONDAY_9 + 5 * MINUTE).timestamp())), sample)
                             for sample in (Sample(K.FIRST_RESPONSE, 300.0, 300.0), Sample(K.FIRST_RESPONSE_SLA_MET))]
    assert track([opened, resolved, early_reply, late_reply])[1] == track([opened, early_reply, late_reply, resolved])[1]


def test_a_pause_arriving_after_the_resolution_corrects_it() -> None:
    events = [
        make_request_event("request.opened", MONDAY_9),
        make_request_event("request.responded", MONDAY_9 + 10 * MINUTE),
        make_request_event("request.status_changed", MONDAY_9 + HOUR, status="waiting_on_customer"),
        make_request_event("request.status_changed", MONDAY_9 + 2 * HOUR, status="in_progress"),
        make_request_event("request.resolved", MONDAY_9 + 3 * HOUR),
    ]
    in_order = track(events)
    shuffled = track([events[0], events[4], events[3], events[1], events[2]])
    assert in_order[1] == shuffled[1]
    assert in_order[0].fact() == shuffled[0].fact()


def test_the_earliest_open_defines_the_request() -> None:
    later = make_request_event("request.opened", MONDAY_9, event_id="b", customer="hr")
    earlier = make_request_event("request.opened", MONDAY_9 - HOUR, event_id="a", customer="finance")
    feedback = make_request_event("feedback.submitted", MONDAY_9 + HOUR, csat=4)
    tracker, emitted = track([later, feedback, earlier])
    assert {bucket[1] for bucket, _ in emitted.elements()} == {"finance"}
    assert tracker.fact().opened_at == MONDAY_9 - HOUR
    assert tracker.apply(later) == ([], [])


def test_feedback_counts_in_its_minute_for_the_request_pair_and_service() -> None:
    feedback_at = MONDAY_9 + 26 * HOUR + 30 * timedelta(seconds=1)
    _, emitted = track([
        make_request_event("request.opened", MONDAY_9),
        make_request_event("feedback.submitted", feedback_at, service="it.hardware", customer="sales", csat=5),
    ])
    csat = [(bucket, sample) for bucket, sample in emitted.elements() if sample.kind == K.CSAT]
    assert csat == [(("it", "hr", "it.access", minute_start(feedback_at.timestamp())), Sample(K.CSAT, score=5))]


def test_events_dated_before_the_open_are_measured_as_at_the_open() -> None:
    replied = MONDAY_9 - 5 * MINUTE  # the source's clocks disagree
    _, emitted = track([make_request_event("request.opened", MONDAY_9), make_request_event("request.responded", replied)])
    assert (at(replied), Sample(K.FIRST_RESPONSE, 0.0, 0.0)) in samples(emitted)


def test_later_replies_change_only_the_last_event_time() -> None:
    tracker, _ = track([make_request_event("request.opened", MONDAY_9), make_request_event("request.responded", MONDAY_9 + MINUTE)])
    assert tracker.apply(make_request_event("request.responded", MONDAY_9 + HOUR)) == ([], [])
    assert tracker.fact().last_event_at == MONDAY_9 + HOUR
    assert tracker.fact().first_response_at == MONDAY_9 + MINUTE


def test_the_providers_pause_statuses_pause_the_clock() -> None:
    # Finance pauses on 'hold' as well as 'waiting_on_customer' (its pause_statuses); IT does not.
    def resolution(provider: str, service: str) -> Sample:
        def event(event_type: str, when: datetime, **fields: str) -> RequestEvent:
            return make_request_event(
                event_type, when, provider=provider, customer="sales", service=service, priority="P3", **fields
            )

        _, emitted = track([
            event("request.opened", MONDAY_9),
            event("request.responded", MONDAY_9 + 10 * MINUTE),
            event("request.status_changed", MONDAY_9 + HOUR, status="hold"),
            event("request.status_changed", MONDAY_9 + 2 * HOUR, status="in_progress"),
            event("request.resolved", MONDAY_9 + 3 * HOUR),
        ])
        return next(sample for _, sample in samples(emitted) if sample.kind == K.FIRST_RESOLUTION)

    assert resolution("finance", "finance.invoices").business_s == 2 * 3600.0
    assert resolution("it", "it.access").business_s == 3 * 3600.0


def verdicts(emitted: Counter[Entry]) -> list[tuple[datetime, SampleKind]]:
    judged = {K.FIRST_RESPONSE_SLA_MET, K.FIRST_RESPONSE_SLA_BREACHED, K.RESOLUTION_SLA_MET, K.RESOLUTION_SLA_BREACHED}
    return [(when, sample.kind) for when, sample in samples(emitted) if sample.kind in judged]


def test_an_unanswered_first_response_is_breached_when_event_time_passes_its_target() -> None:
    # it.access P2: first response 30 business minutes, resolution 8 business hours.
    tracker, _emitted = track([make_request_event("request.opened", MONDAY_9)])
    deadline = (MONDAY_9 + 30 * MINUTE).timestamp()
    assert tracker.next_deadline == deadline
    assert tracker.advance(deadline) == []  # at the deadline the clock shows exactly the target
    breached = tracker.advance(deadline + 1)
    assert breached == [(("it", "hr", "it.access", minute_start(deadline)), Sample(K.FIRST_RESPONSE_SLA_BREACHED))]
    assert tracker.fact().first_response_sla_met is False
    assert tracker.next_deadline == (MONDAY_9 + 8 * HOUR).timestamp()  # the resolution's, still pending
    assert tracker.fact().sla_met is None  # the combined verdict waits for the resolution


def test_a_breach_is_dated_when_the_target_passed_not_when_the_reply_came() -> None:
    friday_1550 = datetime(2026, 3, 6, 14, 50, tzinfo=UTC)  # Berlin; IT works until 16:00 on Fridays
    monday_0820 = datetime(2026, 3, 9, 7, 20, tzinfo=UTC)  # 10 minutes on Friday + 20 on Monday from 08:00
    tracker, emitted = track([
        make_request_event("request.opened", friday_1550),
        make_request_event("request.responded", monday_0820 + HOUR),
        make_request_event("request.resolved", monday_0820 + 2 * HOUR),
    ])
    assert verdicts(emitted) == [
        (monday_0820, K.FIRST_RESPONSE_SLA_BREACHED),
        (monday_0820 + 2 * HOUR, K.RESOLUTION_SLA_MET),
    ]
    fact = tracker.fact()
    assert (fact.first_response_sla_met, fact.resolution_sla_met, fact.sla_met) == (False, True, False)


def test_a_reply_dated_before_a_judged_breach_corrects_it() -> None:
    opened = make_request_event("request.opened", MONDAY_9)
    assert isinstance(opened, RequestOpened)
    tracker = RequestTracker(opened, RULES)
    tracker.advance((MONDAY_9 + 2 * HOUR).timestamp())  # another request's events moved event time on
    retracted, added = tracker.apply(make_request_event("request.responded", MONDAY_9 + 20 * MINUTE))
    assert [sample.kind for _, sample in retracted] == [K.FIRST_RESPONSE_SLA_BREACHED]
    assert sorted(sample.kind for _, sample in added) == [K.FIRST_RESPONSE, K.FIRST_RESPONSE_SLA_MET]


def test_a_pause_stops_the_deadline_and_moves_it() -> None:
    tracker, _emitted = track([
        make_request_event("request.opened", MONDAY_9),
        make_request_event("request.status_changed", MONDAY_9 + 10 * MINUTE, status="waiting_on_customer"),
    ])
    assert tracker.next_deadline is None  # paused: no target can pass
    tracker.apply(make_request_event("request.status_changed", MONDAY_9 + HOUR, status="in_progress"))
    assert tracker.next_deadline == (MONDAY_9 + HOUR + 20 * MINUTE).timestamp()


def test_a_deadline_moved_behind_event_time_is_judged_by_the_next_advance() -> None:
    # Paused while event time moves on; the resume, dated before that event time, sets a deadline
    # already passed. The processor calls advance() with the same watermark again and relies on no
    # pending deadline being left before it (else it schedules the same deadline forever: a hang
    # hypothesis found in the delivery-order property test).
    tracker, _emitted = track([
        make_request_event("request.opened", MONDAY_9),
        make_request_event("request.status_changed", MONDAY_9 + 10 * MINUTE, status="waiting_on_customer"),
    ])
    watermark = (MONDAY_9 + 2 * HOUR).timestamp()
    assert tracker.advance(watermark) == []  # paused: nothing can pass
    tracker.apply(make_request_event("request.status_changed", MONDAY_9 + HOUR, status="in_progress"))
    assert tracker.next_deadline == (MONDAY_9 + HOUR + 20 * MINUTE).timestamp()  # behind the watermark
    breached = tracker.advance(watermark)
    assert [sample.kind for _, sample in breached] == [K.FIRST_RESPONSE_SLA_BREACHED]
    deadline = tracker.next_deadline
    assert deadline is None or deadline >= watermark


def test_a_resolution_never_made_is_breached_when_its_target_passes() -> None:
    tracker, _emitted = track([
        make_request_event("request.opened", MONDAY_9),
        make_request_event("request.responded", MONDAY_9 + 10 * MINUTE),
        make_request_event("feedback.submitted", MONDAY_9 + 3 * 24 * HOUR, csat=1),  # Thursday
    ])
    assert tracker.advance((MONDAY_9 + 3 * 24 * HOUR).timestamp()) == [
        (("it", "hr", "it.access", minute_start((MONDAY_9 + 8 * HOUR).timestamp())), Sample(K.RESOLUTION_SLA_BREACHED))
    ]
