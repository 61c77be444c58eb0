"""stream_processors.scorecard.windows: named windows ending now, RFC 3339 bounds, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from stream_processors.scorecard.windows import (
    DAY,
    HOUR,
    MAX_LENGTH,
    Window,
    WindowError,
    ceil_to,
    end_of_minute,
    floor_to,
    parse_timestamp,
    resolve_window,
    widened_note,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 18, 9, 30, 15, 250_000, tzinfo=UTC)
END = datetime(2026, 3, 18, 9, 31, tzinfo=UTC)  # the end of NOW's minute


@pytest.mark.parametrize(
    ("name", "length"),
    [
        ("1h", timedelta(hours=1)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("28d", timedelta(days=28)),
        (" 7d ", timedelta(days=7)),
    ],
)
def test_a_named_window_ends_with_the_minute_in_progress(name: str, length: timedelta) -> None:
    assert resolve_window(window=name, now=NOW) == Window(END - length, END)


def test_the_default_window_is_seven_days() -> None:
    assert resolve_window(now=NOW) == Window(END - timedelta(days=7), END)


def test_a_now_on_a_whole_minute_is_kept_and_any_offset_is_utc_after() -> None:
    assert end_of_minute(END) == END
    shanghai = timezone(timedelta(hours=8))
    assert end_of_minute(datetime(2026, 3, 18, 17, 30, 15, tzinfo=shanghai)) == END


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-02T09:00:00Z", datetime(2026, 3, 2, 9, tzinfo=UTC)),
        ("2026-03-02t09:00:00z", datetime(2026, 3, 2, 9, tzinfo=UTC)),
        ("2026-03-02 09:00:00+00:00", datetime(2026, 3, 2, 9, tzinfo=UTC)),
        ("2026-03-02T09:00:00+08:00", datetime(2026, 3, 2, 1, tzinfo=UTC)),
        ("2026-03-02T09:00:00.5-05:00", datetime(2026, 3, 2, 14, 0, 0, 500_000, tzinfo=UTC)),
    ],
)
def test_rfc3339_timestamps_are_normalised_to_utc(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text, "since")
    assert parsed == expected and parsed.tzinfo is UTC


def test_since_and_until_give_the_window_and_its_predecessor() -> None:
    window = resolve_window(since="2026-03-02T00:00:00Z", until="2026-03-09T00:00:00Z", now=NOW)

    assert window == Window(datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC))
    assert window.previous() == Window(datetime(2026, 2, 23, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))


def test_bounds_off_a_whole_minute_are_widened_to_whole_minutes_and_say_so() -> None:
    window = resolve_window(since="2026-12-01T14:46:04Z", until="2026-12-01T15:00:00.5Z", now=NOW)

    # A minute counts when its start lies in the window: 14:46:04-14:46:59 is in, not dropped.
    assert (window.since, window.until) == (
        datetime(2026, 12, 1, 14, 46, tzinfo=UTC),
        datetime(2026, 12, 1, 15, 1, tzinfo=UTC),
    )
    assert window.widened and "widened to whole minutes, 2026-12-01T14:46:00+00:00" in widened_note(window)
    exact = resolve_window(since="2026-12-01T14:46:00Z", until="2026-12-01T15:00:00Z", now=NOW)
    assert not exact.widened and widened_note(exact) == ""


def test_since_alone_runs_until_now() -> None:
    assert resolve_window(since="2026-03-18T08:00:00Z", now=NOW) == Window(
        datetime(2026, 3, 18, 8, tzinfo=UTC), END
    )


@pytest.mark.parametrize(
    ("length", "step", "points"),
    [
        (timedelta(hours=1), timedelta(minutes=5), 12),
        (timedelta(hours=2), timedelta(minutes=5), 24),
        (timedelta(hours=24), timedelta(hours=1), 24),
        (timedelta(hours=48), timedelta(hours=1), 48),
        (timedelta(days=7), timedelta(days=1), 7),
        (timedelta(days=28), timedelta(days=1), 28),
        (timedelta(hours=50), timedelta(days=1), 3),  # the last point is partial
    ],
)
def test_the_time_series_step_follows_the_window_length(
    length: timedelta, step: timedelta, points: int
) -> None:
    end = datetime(2026, 3, 18, 9, tzinfo=UTC)
    window = Window(end - length, end)

    assert window.step() == step
    starts = window.point_starts()
    assert len(starts) == points and starts[0] == window.since and starts[1] - starts[0] == step


def test_hourly_and_daily_points_count_from_the_hour_since_falls_in() -> None:
    window = Window(END - timedelta(days=7), END)  # since and until at 09:31

    starts = window.point_starts()

    assert window.point_origin() == datetime(2026, 3, 11, 9, tzinfo=UTC)
    assert starts[0] == window.since and starts[1] == datetime(2026, 3, 12, 9, tzinfo=UTC)
    assert len(starts) == 8 and starts[-1] == datetime(2026, 3, 18, 9, tzinfo=UTC)  # 31 minutes of a day
    five_minutes = Window(END - timedelta(hours=1), END)
    assert five_minutes.point_origin() == five_minutes.since and len(five_minutes.point_starts()) == 12


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"window": "30d"}, "unknown window '30d': choose one of 1h, 24h, 7d, 28d", id="unknown"),
        pytest.param({"window": ""}, "unknown window ''", id="empty"),
        pytest.param({"window": "7d; DROP TABLE minute_buckets"}, "unknown window", id="sql"),
        pytest.param({"window": "7d", "since": "2026-03-02T00:00:00Z"}, "not both", id="window-and-since"),
        pytest.param({"until": "2026-03-02T00:00:00Z"}, "until needs since", id="until-alone"),
        pytest.param({"since": "2026-03-02T09:00:00"}, "has no UTC offset", id="naive"),
        pytest.param({"since": "2026-03-02"}, "not an RFC 3339 timestamp", id="date-only"),
        pytest.param({"since": "yesterday"}, "not an RFC 3339 timestamp", id="words"),
        pytest.param({"since": "1' OR '1'='1"}, "not an RFC 3339 timestamp", id="sql-since"),
        pytest.param({"since": "2026-13-02T09:00:00Z"}, "not a valid date and time", id="month-13"),
        pytest.param(
            {"since": "2026-03-09T00:00:00Z", "until": "2026-03-02T00:00:00Z"},
            "is not after since",
            id="until-before-since",
        ),
        pytest.param(
            {"since": "2026-03-02T00:00:00Z", "until": "2026-03-02T00:00:00Z"},
            "is not after since",
            id="empty-window",
        ),
        pytest.param(
            {"since": "2025-01-01T00:00:00Z", "until": "2026-03-02T00:00:00Z"},
            f"at most {MAX_LENGTH.days} days",
            id="too-long",
        ),
    ],
)
def test_bad_windows_are_refused_with_a_reason(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(WindowError) as caught:
        resolve_window(now=NOW, **kwargs)
    assert message in str(caught.value)


def test_a_long_hostile_value_is_cut_short_in_the_message() -> None:
    hostile = "7d" + "'; DROP TABLE minute_buckets; --" * 100

    with pytest.raises(WindowError) as caught:
        resolve_window(window=hostile, now=NOW)

    assert len(str(caught.value)) < 150


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(WindowError):
        resolve_window(now=NOW.replace(tzinfo=None))
    with pytest.raises(WindowError):
        Window(datetime(2026, 3, 2), datetime(2026, 3, 3))


@pytest.mark.parametrize(
    ("moment", "floor_hour", "ceil_day"),
    [
        (
            datetime(2026, 3, 18, 9, 31, 5, tzinfo=UTC),
            datetime(2026, 3, 18, 9, tzinfo=UTC),
            datetime(2026, 3, 19, tzinfo=UTC),
        ),
        (
            datetime(2026, 3, 18, tzinfo=UTC),
            datetime(2026, 3, 18, tzinfo=UTC),
            datetime(2026, 3, 18, tzinfo=UTC),
        ),
        (
            datetime(2026, 3, 18, 1, 30, tzinfo=timezone(timedelta(hours=8))),
            datetime(2026, 3, 17, 17, tzinfo=UTC),
            datetime(2026, 3, 18, tzinfo=UTC),
        ),
    ],
)
def test_rounding_to_hours_and_utc_days(moment: datetime, floor_hour: datetime, ceil_day: datetime) -> None:
    assert floor_to(moment, HOUR) == floor_hour and ceil_to(moment, DAY) == ceil_day
