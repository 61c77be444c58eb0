"""The first-response backlog: elapsed time on the SLA's own clock, pauses respected."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from deptpulse.settings import EXAMPLE_DIRECTORY
from schemas.directory import load_directory
from stream_processors.core.backlog import UnansweredRequest, past_first_response_target

pytestmark = pytest.mark.unit
DIRECTORY = load_directory(EXAMPLE_DIRECTORY)  # IT: Europe/Berlin, Mon-Thu 08-18, Fri 08-16


def request(
    opened_at: datetime,
    service: str = "it.access",
    priority: str | None = "P2",
    status: str = "open",
    customer: str = "finance",
) -> UnansweredRequest:
    return UnansweredRequest("it", customer, service, priority, opened_at, status)


@pytest.mark.parametrize(
    ("case", "unanswered", "now", "expected"),
    [
        # it.access P2: 30 business minutes. Friday 15:50 Berlin -> 10 business minutes by Saturday.
        (
            "weekend does not count",
            request(datetime(2026, 11, 27, 14, 50, tzinfo=UTC)),
            datetime(2026, 11, 28, 10, 0, tzinfo=UTC),
            0,
        ),
        (
            "an hour into Thursday",
            request(datetime(2026, 11, 26, 8, 0, tzinfo=UTC)),
            datetime(2026, 11, 26, 9, 0, tzinfo=UTC),
            1,
        ),
        (
            "inside the target",
            request(datetime(2026, 11, 26, 8, 0, tzinfo=UTC)),
            datetime(2026, 11, 26, 8, 20, tzinfo=UTC),
            0,
        ),
        # it.outage P1: 10 calendar minutes, so Saturday counts.
        (
            "calendar clock",
            request(datetime(2026, 11, 28, 10, 0, tzinfo=UTC), "it.outage", "P1"),
            datetime(2026, 11, 28, 10, 15, tzinfo=UTC),
            1,
        ),
        (
            "paused on the customer",
            request(datetime(2026, 11, 26, 8, 0, tzinfo=UTC), status="waiting_on_customer"),
            datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
            0,
        ),
        (
            "no priority, no target",
            request(datetime(2026, 11, 26, 8, 0, tzinfo=UTC), priority=None),
            datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
            0,
        ),
    ],
)
def test_past_first_response_target(
    case: str, unanswered: UnansweredRequest, now: datetime, expected: int
) -> None:
    backlog = past_first_response_target([unanswered], DIRECTORY, now)

    assert backlog[("it", "finance")] == expected, case


def test_counts_are_per_pair() -> None:
    opened = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    late = [request(opened), request(opened), request(opened, customer="hr")]

    backlog = past_first_response_target(late, DIRECTORY, datetime(2026, 11, 26, 12, 0, tzinfo=UTC))

    assert dict(backlog) == {("it", "finance"): 2, ("it", "hr"): 1}


def test_the_pair_target_and_the_providers_pause_statuses_apply() -> None:
    # it.hardware P2: 1 business hour, but 30 minutes for Finance (IT's agreement with Finance).
    opened = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    forty_minutes_later = datetime(2026, 11, 26, 8, 40, tzinfo=UTC)
    late = [request(opened, "it.hardware"), request(opened, "it.hardware", customer="hr")]

    assert dict(past_first_response_target(late, DIRECTORY, forty_minutes_later)) == {("it", "finance"): 1}
    # 'hold' pauses Finance's clocks (its pause_statuses), not IT's.
    on_hold = [
        UnansweredRequest(p, c, "", "P2", opened, "hold") for p, c in (("it", "hr"), ("finance", "it"))
    ]
    assert dict(
        past_first_response_target(on_hold, DIRECTORY, datetime(2026, 11, 26, 18, 0, tzinfo=UTC))
    ) == {("it", "hr"): 1}
