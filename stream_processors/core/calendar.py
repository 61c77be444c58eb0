"""Business hours of a department: working seconds between two instants, in its local time.

An instant is working time when its local wall-clock time lies in one of the working intervals of
its local weekday and its local date is not a holiday. That one definition settles the DST days:
an hour skipped by spring-forward is never worked, an hour repeated by fall-back is worked twice
when it lies in an interval. The property test checks it minute by minute.

The hot path works on POSIX timestamps (float seconds); the datetime methods wrap it.
:class:`PausableClock` counts wall and business seconds from a start with paused intervals left out.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from functools import cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from schemas.directory import WEEKDAYS, Calendar

_DAY = 86_400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday is 0)


def _seconds_of_day(value: time) -> float:
    return value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6


def _merged(intervals: Iterable[tuple[time, time]]) -> tuple[tuple[float, float], ...]:
    """Sorted, overlap-free intervals in seconds of the day (overlaps would count twice)."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted((_seconds_of_day(s), _seconds_of_day(e)) for s, e in intervals):
        if end <= start:
            raise ValueError(f"working interval ends before it starts: {start}-{end}")
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


class BusinessCalendar:
    """Working hours per weekday (0 = Monday) and holidays, in one IANA timezone."""

    __slots__ = ("_by_weekday", "_holidays", "_works", "_zone", "timezone")

    def __init__(
        self,
        timezone: str,
        working_hours: Mapping[int, Sequence[tuple[time, time]]],
        holidays: Iterable[date] = (),
    ) -> None:
        self.timezone = timezone
        self._zone = ZoneInfo(timezone)
        self._by_weekday = tuple(_merged(working_hours.get(day, ())) for day in range(7))
        self._works = any(self._by_weekday)
        # Holidays as days since the epoch, the unit the day loop counts in.
        self._holidays = frozenset(day.toordinal() - _EPOCH_ORDINAL for day in holidays)

    @classmethod
    def from_calendar(cls, calendar: Calendar) -> BusinessCalendar:
        """Build from a directory department's calendar."""
        hours = {
            WEEKDAYS.index(day): [(interval.start, interval.end) for interval in intervals]
            for day, intervals in calendar.working_hours.items()
        }
        return cls(calendar.timezone, hours, calendar.holidays)

    def business_seconds(self, start: datetime, end: datetime) -> float:
        """Working seconds in [start, end); 0 when end <= start. Both must be timezone-aware."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("business_seconds needs timezone-aware datetimes")
        return self.business_seconds_ts(start.timestamp(), end.timestamp())

    def business_seconds_ts(self, start: float, end: float) -> float:
        """:meth:`business_seconds` on POSIX timestamps."""
        if end <= start or not self._works:
            return 0.0
        # Split [start, end) where the UTC offset changes; within a piece local time is UTC + offset.
        first_year, last_year = _year_of(start), _year_of(end)
        zone_year = _zone_year(self.timezone, first_year)
        total, cursor, offset = 0.0, start, zone_year.offset_at(start)
        for year in range(first_year, last_year + 1):
            if year != first_year:
                zone_year = _zone_year(self.timezone, year)
            for instant, offset_after in zip(zone_year.instants, zone_year.offsets, strict=True):
                if instant <= cursor:
                    continue
                if instant >= end:
                    break
                total += self._local_seconds(cursor + offset, instant + offset)
                cursor, offset = instant, offset_after
        return total + self._local_seconds(cursor + offset, end + offset)

    def deadline_ts(self, start: float, seconds: float, horizon_years: int = 10) -> float | None:
        """The instant after which the working seconds counted from ``start`` exceed ``seconds``:
        ``inf {t : business_seconds_ts(start, t) > seconds}``, so when the count reaches ``seconds``
        at the end of a working interval it is the start of the next one. None when no working time
        follows within ``horizon_years`` (a calendar without working hours)."""
        if not self._works:
            return None
        remaining = max(seconds, 0.0)
        first_year = _year_of(start)
        cursor = start
        for year in range(first_year, first_year + horizon_years + 1):
            zone_year = _zone_year(self.timezone, year)
            offset = zone_year.offset_at(cursor)
            year_end = float(_year_start(year + 1))
            for instant, offset_after in (*zip(zone_year.instants, zone_year.offsets, strict=True), (year_end, None)):
                if instant <= cursor:
                    continue
                found, remaining = self._local_deadline(cursor + offset, instant + offset, remaining)
                if found is not None:
                    return found - offset
                if offset_after is None:
                    break
                cursor, offset = instant, offset_after
            cursor = year_end
        return None

    def _local_deadline(self, local_start: float, local_end: float, remaining: float) -> tuple[float | None, float]:
        """Walk working time in [local_start, local_end): (the local instant where ``remaining``
        working seconds are used up with working time after it, or None; what remains)."""
        for day in range(int(local_start // _DAY), int(local_end // _DAY) + 1):
            intervals = self._by_weekday[(day + _EPOCH_WEEKDAY) % 7]
            if not intervals or day in self._holidays:
                continue
            midnight = day * _DAY
            for interval_start, interval_end in intervals:
                low = max(midnight + interval_start, local_start)
                high = min(midnight + interval_end, local_end)
                if high <= low:
                    continue
                if remaining < high - low:
                    return low + remaining, 0.0
                remaining -= high - low
        return None, remaining

    def _local_seconds(self, local_start: float, local_end: float) -> float:
        """Working seconds between two local wall-clock times (seconds since the local epoch)."""
        total = 0.0
        for day in range(int(local_start // _DAY), int(local_end // _DAY) + 1):
            intervals = self._by_weekday[(day + _EPOCH_WEEKDAY) % 7]
            if not intervals or day in self._holidays:
                continue
            midnight = day * _DAY
            for interval_start, interval_end in intervals:
                low = max(midnight + interval_start, local_start)
                high = min(midnight + interval_end, local_end)
                if high > low:
                    total += high - low
        return total

    def __repr__(self) -> str:
        return f"BusinessCalendar({self.timezone!r})"


# Year boundaries as POSIX seconds, so finding a timestamp's year is a bisect, not a datetime.
_FIRST_YEAR = 1900
_YEAR_STARTS = tuple(int(datetime(year, 1, 1, tzinfo=UTC).timestamp()) for year in range(_FIRST_YEAR, 2201))


def _year_start(year: int) -> int:
    if _FIRST_YEAR <= year < _FIRST_YEAR + len(_YEAR_STARTS):
        return _YEAR_STARTS[year - _FIRST_YEAR]
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp())


def _year_of(timestamp: float) -> int:
    index = bisect_right(_YEAR_STARTS, timestamp) - 1
    if 0 <= index < len(_YEAR_STARTS) - 1:
        return _FIRST_YEAR + index
    return datetime.fromtimestamp(timestamp, UTC).year


class _ZoneYear(NamedTuple):
    """A zone's UTC offsets in one UTC year: the offset at its start and the changes within it."""

    start_offset: float
    instants: tuple[int, ...]  # POSIX second of each change, ascending
    offsets: tuple[float, ...]  # the offset in effect from the matching instant on

    def offset_at(self, timestamp: float) -> float:
        index = bisect_right(self.instants, timestamp) - 1
        return self.offsets[index] if index >= 0 else self.start_offset


def _utc_offset(zone: ZoneInfo, timestamp: float) -> float:
    offset = datetime.fromtimestamp(timestamp, zone).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


@cache
def _zone_year(timezone: str, year: int) -> _ZoneYear:
    """Found once per process: scans the offset day by day and bisects to the second where it
    changes. A zone that changed its offset twice within one day and back would be missed; no zone
    in tzdata does that."""
    zone = ZoneInfo(timezone)
    instants: list[int] = []
    offsets: list[float] = []
    low = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    year_end = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())
    start_offset = low_offset = _utc_offset(zone, low)
    while low < year_end:
        high = min(low + _DAY, year_end)
        high_offset = _utc_offset(zone, high)
        if high_offset != low_offset:
            before, after = low, high  # offset(before) == low_offset != offset(after)
            while after - before > 1:
                middle = (before + after) // 2
                if _utc_offset(zone, middle) == low_offset:
                    before = middle
                else:
                    after = middle
            instants.append(after)
            offsets.append(high_offset)
        low, low_offset = high, high_offset
    return _ZoneYear(start_offset, tuple(instants), tuple(offsets))


class PausableClock:
    """A clock started at one instant that can be paused and resumed (POSIX timestamps).

    :meth:`elapsed` gives wall and business seconds since the start with the paused intervals
    left out; the caller keeps the unpaused wall time (``at - started_at``) if it wants it.
    """

    __slots__ = ("_calendar", "_paused_business", "_paused_since", "_paused_wall", "started_at")

    def __init__(self, calendar: BusinessCalendar, started_at: float) -> None:
        self._calendar = calendar
        self.started_at = started_at
        self._paused_since: float | None = None
        self._paused_wall = 0.0
        self._paused_business = 0.0

    @property
    def paused(self) -> bool:
        return self._paused_since is not None

    def set_paused(self, paused: bool, at: float) -> None:
        """Pause or resume at ``at``; a no-op when already in that state."""
        if paused and self._paused_since is None:
            self._paused_since = at
        elif not paused and self._paused_since is not None:
            self._paused_wall += at - self._paused_since
            self._paused_business += self._calendar.business_seconds_ts(self._paused_since, at)
            self._paused_since = None

    def ended_pauses(self) -> tuple[float, float]:
        """(wall, business) seconds of the pauses that have ended: with the start, all it takes to
        know :meth:`elapsed` at any later instant while the clock runs."""
        return self._paused_wall, self._paused_business

    def deadline(self, at: float, target_s: float, business: bool) -> float | None:
        """The instant after which the clock, running on from ``at`` unchanged, shows more than
        ``target_s`` seconds (business seconds, or wall seconds minus pauses); None while paused."""
        if self._paused_since is not None:
            return None
        wall, business_s = self.elapsed(at)
        if business:
            return self._calendar.deadline_ts(at, target_s - business_s)
        return at + max(target_s - wall, 0.0)

    def elapsed(self, at: float) -> tuple[float, float]:
        """(wall, business) seconds from the start to ``at``, paused intervals excluded."""
        paused_wall, paused_business = self._paused_wall, self._paused_business
        if self._paused_since is not None:
            paused_wall += at - self._paused_since
            paused_business += self._calendar.business_seconds_ts(self._paused_since, at)
        wall = at - self.started_at - paused_wall
        business = self._calendar.business_seconds_ts(self.started_at, at) - paused_business
        return wall, business
