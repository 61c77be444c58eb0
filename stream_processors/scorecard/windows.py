"""Report windows: a named length ending now (``1h``, ``24h``, ``7d``, ``28d``) or explicit RFC 3339
bounds, the window of the same length just before it, and the time-series step for its length.

A window is ``[since, until)`` in UTC. Data is kept per minute, so a window is always whole minutes:
explicit bounds that are not on a whole minute are WIDENED (``since`` rounded down, ``until`` up),
:attr:`Window.widened` says so and every format reports the effective bounds — a report never
silently leaves out the seconds of a partial minute. ``--window`` windows end at the end of the
current minute (``now`` rounded up), so the minute in progress is included. ``now`` is always an
argument: nothing here reads the clock.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

WINDOWS: Final = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "28d": timedelta(days=28),
}
DEFAULT_WINDOW: Final = "7d"
# Longer windows would outlive the 400-day retention of the tables (and their previous window too).
MAX_LENGTH: Final = timedelta(days=183)
MINUTE: Final = timedelta(minutes=1)
HOUR: Final = timedelta(hours=1)
DAY: Final = timedelta(days=1)

# RFC 3339 date-time; the offset is optional here only so that a missing one gets its own message.
_RFC3339: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?"
)
_SHOWN: Final = 40  # characters of a rejected value echoed back in an error


class WindowError(ValueError):
    """A window the user asked for that cannot be used; the message says what to write instead."""


def shown(value: str) -> str:
    """A user-supplied value for an error message: quoted, and cut short if it is long."""
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "...")


@dataclass(frozen=True, slots=True)
class Window:
    """``[since, until)`` in UTC; a minute bucket belongs to it when its start does."""

    since: datetime
    until: datetime
    # The bounds asked for were not whole minutes and were widened to these (said in every format).
    widened: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise WindowError("window bounds must be timezone-aware")
        if self.until <= self.since:
            raise WindowError(f"until {self.until.isoformat()} must be after since {self.since.isoformat()}")
        if self.until - self.since > MAX_LENGTH:
            raise WindowError(f"a window may span at most {MAX_LENGTH.days} days")

    @property
    def length(self) -> timedelta:
        return self.until - self.since

    def previous(self) -> Window:
        """The window of the same length that ends where this one starts."""
        return Window(self.since - self.length, self.since)

    def step(self) -> timedelta:
        """Time-series resolution: 5-minute points up to 2 h, hourly up to 48 h, daily beyond."""
        if self.length <= timedelta(hours=2):
            return timedelta(minutes=5)
        if self.length <= timedelta(hours=48):
            return timedelta(hours=1)
        return timedelta(days=1)

    def point_origin(self) -> datetime:
        """Where time-series steps are counted from: the hour ``since`` falls in for hourly and daily
        steps (so every whole hour lies in one point: the hourly rollup can serve it), else ``since``."""
        return floor_to(self.since, HOUR) if self.step() >= HOUR else self.since

    def point_starts(self) -> list[datetime]:
        """The start of every time-series point: ``since``, then origin + k * step before ``until``."""
        step, origin = self.step(), self.point_origin()
        count = math.ceil((self.until - origin) / step)
        return [max(self.since, origin + index * step) for index in range(count)]


def floor_to(moment: datetime, unit: timedelta) -> datetime:
    """``moment`` rounded down to a whole ``unit`` (minute, hour, day) counted from the epoch, in UTC."""
    seconds = int(unit.total_seconds())
    return datetime.fromtimestamp(math.floor(moment.timestamp() / seconds) * seconds, UTC)


def ceil_to(moment: datetime, unit: timedelta) -> datetime:
    """``moment`` rounded up to a whole ``unit``, in UTC (unchanged if it is one)."""
    floor = floor_to(moment, unit)
    return floor if floor == moment else floor + unit


def parse_timestamp(value: str, name: str) -> datetime:
    """An RFC 3339 timestamp WITH an offset (``2026-03-02T09:00:00Z``, ``...+08:00``), in UTC."""
    match = _RFC3339.fullmatch(value.strip())
    if match is None:
        raise WindowError(f"{name} {shown(value)} is not an RFC 3339 timestamp, e.g. 2026-03-02T09:00:00Z")
    if match.group("offset") is None:
        raise WindowError(
            f"{name} {shown(value)} has no UTC offset: add Z or e.g. +08:00 (2026-03-02T09:00:00Z)"
        )
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z").replace("t", "T"))
    except ValueError as exc:  # e.g. month 13, hour 25
        raise WindowError(f"{name} {shown(value)} is not a valid date and time: {exc}") from None
    return parsed.astimezone(UTC)


def end_of_minute(now: datetime) -> datetime:
    """``now`` rounded up to a whole minute (unchanged if it is one), in UTC."""
    if now.tzinfo is None:
        raise WindowError("now must be timezone-aware")
    return ceil_to(now, MINUTE)


def resolve_window(
    *, window: str | None = None, since: str | None = None, until: str | None = None, now: datetime
) -> Window:
    """The window a report covers: ``window`` (a name in :data:`WINDOWS`) ending now, or ``since``
    to ``until`` (``until`` defaults to now); the default is :data:`DEFAULT_WINDOW` ending now."""
    if window is not None and (since is not None or until is not None):
        raise WindowError("give either a window (e.g. 7d) or since/until, not both")
    if until is not None and since is None:
        raise WindowError("until needs since")
    end = end_of_minute(now)
    if since is not None:
        start = parse_timestamp(since, "since")
        stop = parse_timestamp(until, "until") if until is not None else end
        if stop <= start:
            raise WindowError(f"until {stop.isoformat()} is not after since {start.isoformat()}")
        whole = Window(floor_to(start, MINUTE), ceil_to(stop, MINUTE))
        return Window(whole.since, whole.until, widened=(whole.since, whole.until) != (start, stop))
    name = DEFAULT_WINDOW if window is None else window.strip()
    length = WINDOWS.get(name)
    if length is None:
        raise WindowError(f"unknown window {shown(name)}: choose one of {', '.join(WINDOWS)}")
    return Window(end - length, end)


def widened_note(window: Window) -> str:
    """What a report says about a window widened to whole minutes; "" for one that was not."""
    if not window.widened:
        return ""
    return (
        f"the window was widened to whole minutes, {window.since.isoformat()} to {window.until.isoformat()}: "
        "data is kept per minute"
    )


def query_parameters(window: Window, provider: str | None = None, customer: str | None = None) -> dict[str, object]:
    """Server-side parameters of a query over ``window`` and the window before it, with the optional
    provider and customer filters (only those given: the SQL text includes their fragments)."""
    parameters: dict[str, object] = {
        "since": window.since,
        "previous_since": window.previous().since,
        "until": window.until,
    }
    if provider is not None:
        parameters["provider"] = provider
    if customer is not None:
        parameters["customer"] = customer
    return parameters
