"""BusinessCalendar.business_seconds agrees with counting minute by minute, across DST and holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from stream_processors.core.calendar import BusinessCalendar

# The 2026 offset changes of the two zones the directory uses with DST.
TRANSITIONS = {
    "Europe/Berlin": [datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC)],
    "America/New_York": [datetime(2026, 3, 8, 7, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC)],
}
MINUTES_PER_DAY = 1440


@st.composite
def intervals(draw: st.DrawFn) -> list[tuple[time, time]]:
    """0-2 minute-granular intervals; the hours around 02:00 are favoured to hit DST gaps and repeats."""
    result = []
    for _ in range(draw(st.integers(0, 2))):
        start = draw(st.one_of(st.integers(0, MINUTES_PER_DAY - 2), st.integers(50, 200)))
        end = draw(st.integers(start + 1, MINUTES_PER_DAY - 1))
        result.append((time(*divmod(start, 60)), time(*divmod(end, 60))))
    return result


def brute_force(calendar: BusinessCalendar, hours: dict[int, list[tuple[time, time]]],
                holidays: set[date], start: datetime, end: datetime) -> float:
    zone = ZoneInfo(calendar.timezone)
    total = 0.0
    minute = start
    while minute < end:
        local = minute.astimezone(zone)
        if local.date() not in holidays and any(
            s <= local.time().replace(tzinfo=None) < e for s, e in hours.get(local.weekday(), [])
        ):
            total += 60
        minute += timedelta(minutes=1)
    return total


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_business_seconds_match_a_minute_by_minute_count(data: st.DataObject) -> None:
    zone = data.draw(st.sampled_from(sorted(TRANSITIONS)))
    transition = data.draw(st.sampled_from(TRANSITIONS[zone]))
    hours = {weekday: data.draw(intervals()) for weekday in range(7)}
    near = transition.date()
    holidays = data.draw(st.sets(st.sampled_from([near + timedelta(days=d) for d in range(-3, 4)]), max_size=3))
    start = transition + timedelta(minutes=data.draw(st.integers(-2 * MINUTES_PER_DAY, MINUTES_PER_DAY)))
    end = start + timedelta(minutes=data.draw(st.integers(0, 2 * MINUTES_PER_DAY)))
    calendar = BusinessCalendar(zone, hours, holidays)

    assert calendar.business_seconds(start, end) == brute_force(calendar, hours, holidays, start, end)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_business_seconds_add_up_over_adjacent_ranges(data: st.DataObject) -> None:
    zone = data.draw(st.sampled_from(sorted(TRANSITIONS)))
    calendar = BusinessCalendar(zone, {weekday: data.draw(intervals()) for weekday in range(7)})
    base = datetime(2026, 1, 1, tzinfo=UTC)
    a, b, c = sorted(base + timedelta(seconds=data.draw(st.integers(0, 366 * 86400))) for _ in range(3))
    assert calendar.business_seconds(a, b) + calendar.business_seconds(b, c) == calendar.business_seconds(a, c)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_the_deadline_is_where_the_count_first_exceeds_the_target(data: st.DataObject) -> None:
    """deadline_ts(start, s) is inf {t : business seconds from start to t > s}, checked against the
    minute-by-minute count: exactly s business seconds by it, more than s one second after."""
    zone = data.draw(st.sampled_from(sorted(TRANSITIONS)))
    transition = data.draw(st.sampled_from(TRANSITIONS[zone]))
    hours = {weekday: data.draw(intervals()) for weekday in range(7)}
    hours[data.draw(st.integers(0, 6))] = [(time(9), time(17))]  # some working time every week
    near = transition.date()
    holidays = data.draw(st.sets(st.sampled_from([near + timedelta(days=d) for d in range(-3, 4)]), max_size=3))
    start = transition + timedelta(minutes=data.draw(st.integers(-2 * MINUTES_PER_DAY, MINUTES_PER_DAY)))
    target = 60 * data.draw(st.integers(0, 3 * 480))
    calendar = BusinessCalendar(zone, hours, holidays)

    deadline_ts = calendar.deadline_ts(start.timestamp(), target)
    assert deadline_ts is not None
    deadline = datetime.fromtimestamp(deadline_ts, UTC)
    assert brute_force(calendar, hours, holidays, start, deadline) == target
    # Minute-aligned hours: the minute that starts at the deadline is worked.
    assert brute_force(calendar, hours, holidays, start, deadline + timedelta(minutes=1)) == target + 60
    assert calendar.deadline_ts(start.timestamp(), target) == deadline_ts


def test_no_deadline_without_working_hours() -> None:
    assert BusinessCalendar("Europe/Berlin", {}).deadline_ts(0.0, 60) is None
