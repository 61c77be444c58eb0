"""The at-risk watch: time left on the SLA's own clock (business calendar, holidays, pauses, reopen)
read from a request's snapshot, driven through the real lifecycle so the snapshot is the one stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.directory import Directory
from schemas.events import RequestEvent, RequestOpened
from stream_processors.core.at_risk import AtRiskRequest, OpenRequest, at_risk, at_risk_counts
from stream_processors.core.lifecycle import LifecycleRules, RequestFact, RequestTracker
from tests.unit.test_core_builders import HOUR, MINUTE, MONDAY_9, example_directory, make_request_event

pytestmark = pytest.mark.unit

DIRECTORY = example_directory()  # IT: Berlin, Mon-Thu 08-18, Fri 08-16; it.access P2: 30m / 8h business
RESOLUTION = 8 * 3600  # it.access P2
SECOND = timedelta(seconds=1)


def fact_of(events: list[RequestEvent], directory: Directory = DIRECTORY) -> RequestFact:
    opened, *rest = events
    assert isinstance(opened, RequestOpened)
    tracker = RequestTracker(opened, LifecycleRules(directory))
    for event in rest:
        tracker.apply(event)
    return tracker.fact()


def open_request(fact: RequestFact) -> OpenRequest:
    """What the sink reads of a snapshot (stream_processors.sinks.clickhouse.open_requests)."""
    return OpenRequest(
        fact.request_id,
        fact.provider_department,
        fact.customer_department,
        fact.service_category,
        fact.priority,
        fact.opened_at,
        fact.first_response_at is not None,
        fact.sla_clock,
        fact.sla_paused_wall_s,
        fact.sla_paused_business_s,
    )


def risks(events: list[RequestEvent], now: datetime, directory: Directory = DIRECTORY) -> list[AtRiskRequest]:
    return at_risk([open_request(fact_of(events, directory))], directory, now)


def answered_at(opened: datetime, *more: RequestEvent, **fields: str) -> list[RequestEvent]:
    return [
        make_request_event("request.opened", opened, **fields),
        make_request_event("request.responded", opened + 5 * MINUTE, **fields),
        *more,
    ]


def resolution_left(found: list[AtRiskRequest]) -> float | None:
    lefts = [risk.left_s for risk in found if risk.sla == "resolution"]
    assert len(lefts) <= 1
    return lefts[0] if lefts else None


@pytest.mark.parametrize(
    ("share_left", "expected"),
    [(0.21, None), (0.2, 0.2 * RESOLUTION), (0.19, 0.19 * RESOLUTION), (0.0, 0.0), (-1 / RESOLUTION, None)],
)
def test_exact_thresholds_of_the_default_share(share_left: float, expected: float | None) -> None:
    # Monday 09:00 Berlin, all in working hours: business time is wall time.
    now = MONDAY_9 + timedelta(seconds=RESOLUTION * (1 - share_left))
    left = resolution_left(risks(answered_at(MONDAY_9), now))
    assert left == (None if expected is None else pytest.approx(expected))


def test_a_request_with_21_percent_left_is_not_at_risk_and_with_19_percent_is() -> None:
    events = answered_at(MONDAY_9)
    assert risks(events, MONDAY_9 + timedelta(seconds=0.79 * RESOLUTION)) == []
    [risk] = risks(events, MONDAY_9 + timedelta(seconds=0.81 * RESOLUTION))
    assert risk == AtRiskRequest(
        "r1", "it", "hr", "it.access", "resolution", 0.19 * RESOLUTION, RESOLUTION, True
    )


def test_the_weekend_does_not_count_down() -> None:
    friday_9 = datetime(2026, 3, 6, 8, tzinfo=UTC)  # IT works until 16:00 on Fridays: 7 h, 1 h left
    events = answered_at(friday_9)
    for now in (
        datetime(2026, 3, 6, 15, tzinfo=UTC),  # Friday 16:00
        datetime(2026, 3, 7, 12, tzinfo=UTC),  # Saturday
        datetime(2026, 3, 9, 7, tzinfo=UTC),  # Monday 08:00
    ):
        assert resolution_left(risks(events, now)) == 3600, now
    assert resolution_left(risks(events, datetime(2026, 3, 9, 7, 59, tzinfo=UTC))) == 60
    assert risks(events, datetime(2026, 3, 9, 8, 0, 1, tzinfo=UTC)) == []  # breached: no longer a warning


def test_a_request_opened_on_friday_afternoon_is_not_at_risk_over_the_weekend() -> None:
    events = answered_at(datetime(2026, 3, 6, 13, tzinfo=UTC))  # Friday 14:00: 2 h that day, 6 h left
    assert risks(events, datetime(2026, 3, 8, 12, tzinfo=UTC)) == []  # Sunday
    # Monday 08:00 + 4 h 24 min: 6 h 24 min counted, 1 h 36 min (20 %) left.
    assert resolution_left(risks(events, datetime(2026, 3, 9, 11, 24, tzinfo=UTC))) == 0.2 * RESOLUTION


def test_holidays_do_not_count_down() -> None:
    # Thursday 2 April 2026, 12:00 in Berlin (CEST): 6 h until 18:00. Good Friday (3rd) and Easter
    # Monday (6th) are IT holidays: on Tuesday at 08:00, still 2 h (25 %) left.
    events = answered_at(datetime(2026, 4, 2, 10, tzinfo=UTC))
    assert risks(events, datetime(2026, 4, 6, 15, tzinfo=UTC)) == []
    assert risks(events, datetime(2026, 4, 7, 6, tzinfo=UTC)) == []
    assert resolution_left(risks(events, datetime(2026, 4, 7, 6, 24, tzinfo=UTC))) == 0.2 * RESOLUTION


def test_a_pause_stops_the_countdown_and_is_not_counted_afterwards() -> None:
    events = answered_at(
        MONDAY_9,
        # 5 h counted, 3 h left; waiting on the customer until Tuesday 09:00.
        make_request_event("request.status_changed", MONDAY_9 + 5 * HOUR, status="waiting_on_customer"),
        make_request_event("request.status_changed", MONDAY_9 + 24 * HOUR, status="in_progress"),
    )
    # Tuesday 10:30: 5 h + 1 h 30 min counted (Monday's 4 paused hours are not), 1 h 30 min left.
    assert resolution_left(risks(events, MONDAY_9 + 25 * HOUR + 30 * MINUTE)) == 5400
    assert risks(events, MONDAY_9 + 25 * HOUR) == []  # 2 h 30 min (31 %) left


def test_a_paused_request_is_not_at_risk_while_it_waits() -> None:
    events = answered_at(MONDAY_9)
    assert resolution_left(risks(events, MONDAY_9 + 7 * HOUR)) == 3600
    waiting = [
        *events,
        make_request_event("request.status_changed", MONDAY_9 + 7 * HOUR, status="waiting_on_customer"),
    ]
    assert risks(waiting, MONDAY_9 + 7 * HOUR) == []
    assert risks(waiting, MONDAY_9 + 72 * HOUR) == []


def test_resolution_removes_it() -> None:
    events = answered_at(MONDAY_9)
    assert risks(events, MONDAY_9 + 7 * HOUR)
    resolved = [*events, make_request_event("request.resolved", MONDAY_9 + 7 * HOUR)]
    assert risks(resolved, MONDAY_9 + 7 * HOUR) == []
    closed = [*events, make_request_event("request.closed", MONDAY_9 + 7 * HOUR)]
    assert risks(closed, MONDAY_9 + 7 * HOUR) == []


def test_a_reopened_request_counts_from_its_open_without_the_resolved_time() -> None:
    events = answered_at(
        MONDAY_9,
        make_request_event("request.resolved", MONDAY_9 + 2 * HOUR),
        make_request_event("request.reopened", MONDAY_9 + 24 * HOUR),  # Tuesday 09:00
    )
    # Tuesday 14:30: 2 h + 5 h 30 min counted, 30 min left.
    assert resolution_left(risks(events, MONDAY_9 + 29 * HOUR + 30 * MINUTE)) == 1800


def test_the_first_response_target_is_watched_until_the_first_response() -> None:
    opened = [make_request_event("request.opened", MONDAY_9)]
    [risk] = risks(opened, MONDAY_9 + 25 * MINUTE)  # 5 of 30 minutes left; 7 h 35 min to resolve
    assert (risk.sla, risk.left_s, risk.target_s) == ("first_response", 300, 1800)
    assert risks(opened, MONDAY_9 + 23 * MINUTE) == []  # 7 of 30 minutes (23 %) left
    answered = [*opened, make_request_event("request.responded", MONDAY_9 + 24 * MINUTE)]
    assert risks(answered, MONDAY_9 + 25 * MINUTE) == []


def test_a_calendar_clock_counts_the_weekend() -> None:
    saturday = datetime(2026, 3, 7, 9, tzinfo=UTC)
    opened = [
        make_request_event("request.opened", saturday, service="it.outage", priority="P1")
    ]  # 10 m / 4 h calendar
    [risk] = risks(opened, saturday + 9 * MINUTE)
    assert (risk.sla, risk.left_s, risk.business_clock) == ("first_response", 60, False)


def test_the_share_is_the_pairs_alert_policy() -> None:
    raw = DIRECTORY.model_dump(exclude_unset=True)
    it = raw["departments"][0]
    assert it["id"] == "it" and it["customer_agreements"][0]["customer"] == "finance"
    it["alert_policy"] = {"sla_at_risk_share": 0.5}  # IT's own policy ...
    it["customer_agreements"][0]["alert_policy"]["sla_at_risk_share"] = 0.3  # ... and IT -> finance's
    directory = Directory.model_validate(raw)
    now = MONDAY_9 + timedelta(seconds=0.6 * RESOLUTION)  # 40 % left
    for_hr, for_finance = answered_at(MONDAY_9), answered_at(MONDAY_9, customer="finance")

    assert risks(for_hr, now) == [] and risks(for_finance, now) == []  # the default 20 %
    assert resolution_left(risks(for_hr, now, directory)) == 0.4 * RESOLUTION
    assert risks(for_finance, now, directory) == []
    assert resolution_left(risks(for_finance, MONDAY_9 + 0.71 * RESOLUTION * SECOND, directory)) == (
        pytest.approx(0.29 * RESOLUTION)
    )


def test_requests_without_a_target_or_provider_are_skipped() -> None:
    no_priority = [make_request_event("request.opened", MONDAY_9, priority=None)]
    assert risks(no_priority, MONDAY_9 + 7 * HOUR) == []
    unknown = open_request(fact_of(answered_at(MONDAY_9)))._replace(provider_department="marketing")
    assert at_risk([unknown], DIRECTORY, MONDAY_9 + 7 * HOUR) == []


def test_counts_per_pair_and_target_least_time_left_first() -> None:
    requests = [
        open_request(fact_of(answered_at(MONDAY_9 + 10 * MINUTE, request_id="a"))),
        open_request(fact_of(answered_at(MONDAY_9, request_id="b"))),
        open_request(fact_of(answered_at(MONDAY_9, request_id="c", customer="finance"))),
        open_request(
            fact_of([make_request_event("request.opened", MONDAY_9 + 6 * HOUR + 34 * MINUTE, request_id="d")])
        ),
    ]
    found = at_risk(requests, DIRECTORY, MONDAY_9 + 7 * HOUR)
    assert [(risk.request_id, risk.sla) for risk in found] == [
        ("d", "first_response"),
        ("b", "resolution"),
        ("c", "resolution"),
        ("a", "resolution"),
    ]
    assert dict(at_risk_counts(found)) == {
        ("it", "hr", "first_response"): 1,
        ("it", "hr", "resolution"): 2,
        ("it", "finance", "resolution"): 1,
    }


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        at_risk([], DIRECTORY, datetime(2026, 3, 2, 9))
