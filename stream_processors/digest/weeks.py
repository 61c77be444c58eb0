"""Report weeks: Monday 00:00 to the next Monday 00:00 in a department's own timezone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from stream_processors.scorecard.windows import Window

SUNDAY = 6


class WeekError(ValueError):
    """A week the user asked for that cannot be reported; the message says what to give instead."""


@dataclass(frozen=True)
class ReportWeek:
    """The ISO week that ends on ``ending`` (a Sunday), in ``timezone``."""

    ending: date
    timezone: str

    def __post_init__(self) -> None:
        if self.ending.weekday() != SUNDAY:
            before = self.ending - timedelta(days=self.ending.weekday() + 1)
            raise WeekError(
                f"week ending {self.ending.isoformat()} is a {self.ending:%A}: give the Sunday that ends "
                f"the week, e.g. {before.isoformat()} or {(before + timedelta(days=7)).isoformat()}"
            )

    @property
    def starting(self) -> date:
        return self.ending - timedelta(days=6)

    @property
    def label(self) -> str:
        """'2026-W48': the ISO week (its year is the ISO year, which may differ from the date's)."""
        year, week, _ = self.ending.isocalendar()
        return f"{year}-W{week:02d}"

    def window(self) -> Window:
        """The week as a UTC window; its previous window is the week before (7 days, or ±1 h across DST)."""
        zone = ZoneInfo(self.timezone)
        since = datetime.combine(self.starting, time(), zone).astimezone(UTC)
        until = datetime.combine(self.ending + timedelta(days=1), time(), zone).astimezone(UTC)
        return Window(since, until)


def last_full_week(now: datetime, timezone: str) -> ReportWeek:
    """The last week that has ended by ``now`` in ``timezone`` (on a Monday: the one ending yesterday)."""
    if now.tzinfo is None:
        raise WeekError("now must be timezone-aware")
    today = now.astimezone(ZoneInfo(timezone)).date()
    return ReportWeek(today - timedelta(days=today.weekday() + 1), timezone)


def parse_week_ending(value: str) -> date:
    """``--week-ending``: an ISO date (YYYY-MM-DD) that is a Sunday."""
    try:
        parsed = date.fromisoformat(value.strip())
    except ValueError:
        raise WeekError(f"--week-ending {value[:40]!r} is not a date: use YYYY-MM-DD, a Sunday") from None
    ReportWeek(parsed, "UTC")  # the Sunday check, with its message
    return parsed
