"""stream_processors.core.calendar: business seconds in local time, DST days, holidays, pauses."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from schemas.directory import load_directory
from stream_processors.core.calendar import BusinessCalendar, PausableClock

pytestmark = pytest.mark.unit

HOUR = 3600.0
NINE_TO_FIVE = [(time(9), time(17))]
WEEKDAYS_9_17 = dict.fromkeys(range(5), NINE_TO_FIVE)
BERLIN = ZoneInfo("Europe/Berlin")
EXAMPLE_ORG = Path(__file__).parents[2] / "deploy" / "directory" / "example-org.yaml"


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("start", "end", "expected_hours"),
    [
        pytest.param(berlin(2026, 3, 2, 8), berlin(2026, 3, 2, 18), 8, id="whole-monday"),
        pytest.param(berlin(2026, 3, 2, 10), berlin(2026, 3, 2, 11, 30), 1.5, id="inside-one-day"),
        pytest.param(berlin(2026, 3, 2, 16), berlin(2026, 3, 3, 10), 2, id="overnight"),
        pytest.param(berlin(2026, 3, 6, 16), berlin(2026, 3, 9, 10), 2, id="over-the-weekend"),
        pytest.param(berlin(2026, 3, 7, 10), berlin(2026, 3, 8, 20), 0, id="weekend-only"),
        pytest.param(berlin(2026, 3, 2, 8), berlin(2026, 3, 16, 8), 80, id="two-weeks"),
        pytest.param(berlin(2026, 3, 2, 12), berlin(2026, 3, 2, 12), 0, id="empty"),
        pytest.param(berlin(2026, 3, 2, 12), berlin(2026, 3, 2, 11), 0, id="reversed"),
    ],
)
def test_business_seconds_on_a_nine_to_five_calendar(start: datetime, end: datetime, expected_hours: float) -> None:
    calendar = BusinessCalendar("Europe/Berlin", WEEKDAYS_9_17)
    assert calendar.business_seconds(start, end) == expected_hours * HOUR


def test_holidays_are_not_worked_in_local_dates() -> None:
    # Shanghai is UTC+8: the holiday 2026-10-01 starts at 2026-09-30T16:00Z.
    calendar = BusinessCalendar("Asia/Shanghai", WEEKDAYS_9_17, holidays=[date(2026, 10, 1)])
    start = datetime(2026, 9, 30, 0, tzinfo=UTC)  # Wed 08:00 local
    end = datetime(2026, 10, 2, 2, tzinfo=UTC)  # Fri 10:00 local
    assert calendar.business_seconds(start, end) == (8 + 1) * HOUR


def test_split_intervals_and_overlaps_count_once() -> None:
    lunch_break = {0: [(time(9), time(12)), (time(13, 30), time(18)), (time(10), time(11))]}
    calendar = BusinessCalendar("Asia/Shanghai", lunch_break)
    monday = datetime(2026, 3, 2, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert calendar.business_seconds(monday, monday.replace(hour=23)) == 7.5 * HOUR


def test_spring_forward_skips_the_missing_local_hour() -> None:
    # 2026-03-29 (Sunday) Berlin: 02:00 CET jumps to 03:00 CEST; 01:00-04:00 local is two real hours.
    calendar = BusinessCalendar("Europe/Berlin", {6: [(time(1), time(4))]})
    assert calendar.business_seconds(berlin(2026, 3, 28), berlin(2026, 3, 30)) == 2 * HOUR
    # An interval that starts inside the gap starts at 03:00 CEST.
    gap = BusinessCalendar("Europe/Berlin", {6: [(time(2, 30), time(5))]})
    assert gap.business_seconds(berlin(2026, 3, 28), berlin(2026, 3, 30)) == 2 * HOUR


def test_fall_back_works_the_repeated_local_hour_twice() -> None:
    # 2026-10-25 (Sunday) Berlin: 03:00 CEST falls back to 02:00 CET.
    calendar = BusinessCalendar("Europe/Berlin", {6: [(time(1), time(4))]})
    assert calendar.business_seconds(berlin(2026, 10, 24), berlin(2026, 10, 26)) == 4 * HOUR
    # 01:00-02:30 local: 01:00-02:30 CEST and again 02:00-02:30 CET.
    ends_inside = BusinessCalendar("Europe/Berlin", {6: [(time(1), time(2, 30))]})
    assert ends_inside.business_seconds(berlin(2026, 10, 24), berlin(2026, 10, 26)) == 2 * HOUR
    # Starting the count in the middle of the repeated hour, at 02:15 CET (01:15Z).
    assert ends_inside.business_seconds(
        datetime(2026, 10, 25, 1, 15, tzinfo=UTC), berlin(2026, 10, 26)
    ) == 0.25 * HOUR


def test_new_york_work_week_across_the_march_transition() -> None:
    calendar = BusinessCalendar("America/New_York", WEEKDAYS_9_17)
    friday = datetime(2026, 3, 6, 17, tzinfo=UTC)  # 12:00 EST
    monday = datetime(2026, 3, 9, 14, tzinfo=UTC)  # 10:00 EDT
    assert calendar.business_seconds(friday, monday) == 6 * HOUR


def test_sub_second_instants() -> None:
    calendar = BusinessCalendar("Europe/Berlin", WEEKDAYS_9_17)
    start = berlin(2026, 3, 2, 10).replace(microsecond=250_000)
    end = berlin(2026, 3, 2, 10, 0, 1)
    assert calendar.business_seconds(start, end) == pytest.approx(0.75)


def test_from_directory_calendar() -> None:
    directory = load_directory(EXAMPLE_ORG)
    calendar = BusinessCalendar.from_calendar(directory.department("hr").calendar)
    monday = datetime(2026, 3, 2, tzinfo=UTC)  # 08:00 in Shanghai
    assert calendar.timezone == "Asia/Shanghai"
    assert calendar.business_seconds(monday, monday.replace(day=3)) == 7.5 * HOUR
    new_year = datetime(2025, 12, 31, 16, tzinfo=UTC)  # 2026-01-01 00:00 local, a holiday
    assert calendar.business_seconds(new_year, new_year.replace(year=2026, month=1, day=1, hour=16)) == 0


def test_a_calendar_without_working_hours_never_counts() -> None:
    calendar = BusinessCalendar("UTC", {})
    assert calendar.business_seconds(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)) == 0


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        BusinessCalendar("UTC", WEEKDAYS_9_17).business_seconds(datetime(2026, 3, 2), datetime(2026, 3, 3))


def test_invalid_intervals_are_rejected() -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        BusinessCalendar("UTC", {0: [(time(12), time(9))]})


def test_pausable_clock_leaves_out_paused_intervals() -> None:
    calendar = BusinessCalendar("Europe/Berlin", WEEKDAYS_9_17)
    opened = berlin(2026, 3, 2, 9).timestamp()
    clock = PausableClock(calendar, opened)
    clock.set_paused(True, opened + 1 * HOUR)
    clock.set_paused(True, opened + 1.5 * HOUR)  # already paused: no-op
    assert clock.paused
    # Paused at 10:00; at 12:00 two paused hours are left out of both clocks.
    assert clock.elapsed(opened + 3 * HOUR) == (1 * HOUR, 1 * HOUR)
    clock.set_paused(False, opened + 10 * HOUR)  # resumed at 19:00, after hours
    assert not clock.paused
    # Tuesday 10:00: wall 25 h - 9 h paused; business 8 + 1 h - 7 h paused.
    assert clock.elapsed(opened + 25 * HOUR) == (16 * HOUR, 2 * HOUR)
