"""stream_processors.scorecard.service and .queries without a database: rows from merged sums, the
directory checks, and SQL that only ever receives user input as server-side parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deptpulse.settings import EXAMPLE_DIRECTORY
from schemas.directory import Directory, load_directory
from stream_processors.core import BucketKey, MinuteAggregate, MinuteAggregator
from stream_processors.core.aggregates import Sample, SampleKind, merge_into
from stream_processors.scorecard.queries import (
    PAIR_SUMS_SQL,
    PROVIDER_PAIR_SUMS_SQL,
    SERIES_SQL,
    ClickHouseAggregates,
    PairSums,
    ServiceSums,
    split_range,
)
from stream_processors.scorecard.questions import QuestionCounts
from stream_processors.scorecard.service import ScorecardService, UnknownDepartment
from stream_processors.scorecard.windows import Window

pytestmark = pytest.mark.unit

SINCE = datetime(2026, 3, 9, tzinfo=UTC)
WINDOW = Window(SINCE, SINCE + timedelta(days=7))


class FakeReader:
    """An AggregateReader over delta rows in memory: the straightforward version of the SQL."""

    def __init__(self, deltas: list[tuple[BucketKey, MinuteAggregate]]) -> None:
        self.deltas = deltas
        self.calls: list[tuple[Any, ...]] = []

    def pair_sums(self, window: Window, provider: str | None = None) -> PairSums:
        self.calls.append(("pair_sums", window, provider))
        sums = PairSums({}, {})
        previous = window.previous()
        for key, aggregate in self.deltas:
            if provider is not None and key.provider_department != provider:
                continue
            pair = (key.provider_department, key.customer_department)
            if window.since <= key.bucket_start < window.until:
                merge_into(sums.current.setdefault(pair, MinuteAggregate()), aggregate)
            elif previous.since <= key.bucket_start < previous.until:
                merge_into(sums.previous.setdefault(pair, MinuteAggregate()), aggregate)
        return sums

    def question_counts(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> QuestionCounts:
        """No survey questions: their counts are read from raw_events (tested against chdb)."""
        self.calls.append(("question_counts", window, provider, customer))
        return QuestionCounts({}, {}, {})

    def service_sums(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> ServiceSums:
        self.calls.append(("service_sums", window, provider, customer))
        sums = ServiceSums({}, {})
        previous = window.previous()
        for key, aggregate in self.deltas:
            if provider is not None and key.provider_department != provider:
                continue
            if customer is not None and key.customer_department != customer:
                continue
            service = (key.provider_department, key.service_category)
            if window.since <= key.bucket_start < window.until:
                merge_into(sums.current.setdefault(service, MinuteAggregate()), aggregate)
            elif previous.since <= key.bucket_start < previous.until:
                merge_into(sums.previous.setdefault(service, MinuteAggregate()), aggregate)
        return sums

    def series_sums(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> dict[int, MinuteAggregate]:
        self.calls.append(("series_sums", window, provider, customer))
        points: dict[int, MinuteAggregate] = {}
        for key, aggregate in self.deltas:
            if provider is not None and key.provider_department != provider:
                continue
            if customer is not None and key.customer_department != customer:
                continue
            if window.since <= key.bucket_start < window.until:
                index = int((key.bucket_start - window.point_origin()) / window.step())
                merge_into(points.setdefault(index, MinuteAggregate()), aggregate)
        return points


def delta(
    provider: str, customer: str, at: datetime, *samples: Sample, service: str = ""
) -> tuple[BucketKey, MinuteAggregate]:
    aggregate = MinuteAggregator.initialize()
    for sample in samples:
        MinuteAggregator.agg(aggregate, sample)
    return BucketKey(provider, customer, service, at), aggregate


OPENED = Sample(SampleKind.OPENED)


def csat(score: int) -> Sample:
    return Sample(SampleKind.CSAT, score=score)


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory(EXAMPLE_DIRECTORY)


@pytest.fixture
def reader() -> FakeReader:
    day = timedelta(days=1)
    return FakeReader(
        [
            delta("it", "finance", SINCE, OPENED, *[csat(5)] * 8),
            delta("it", "finance", SINCE + day, OPENED, csat(1), csat(2)),  # a second delta row
            delta("it", "sales", SINCE + 2 * day, OPENED, OPENED, csat(4)),
            delta("it", "hr", SINCE - day, OPENED),  # previous window only
            delta("hr", "it", SINCE + 3 * day, *[csat(3)] * 12),
            delta("legacy", "it", SINCE, OPENED),  # a department removed from the directory since
            delta("it", "finance", SINCE - 8 * day, OPENED),  # before the previous window: ignored
        ]
    )


def test_a_providers_overall_row_merges_its_customers(reader: FakeReader, directory: Directory) -> None:
    rows = ScorecardService(reader, directory).scorecard(WINDOW, "it")

    assert [(r.provider_department, r.customer_department) for r in rows] == [
        ("it", None),
        ("it", "hr"),  # directory order; hr only had data in the previous window
        ("it", "finance"),
        ("it", "sales"),
    ]
    overall, hr, finance, sales = rows
    assert overall.requests_opened == 4 and overall.requests_opened_change == 4 - 1
    assert overall.csat_count == 11 and overall.csat_avg == pytest.approx((40 + 1 + 2 + 4) / 11)
    assert finance.csat_count == 10 and finance.csat_avg == pytest.approx(4.3)
    assert sales.csat_insufficient and sales.csat_avg is None and sales.csat_count == 1
    assert hr.requests_opened == 0 and hr.requests_opened_change == -1
    assert reader.calls == [("pair_sums", WINDOW, "it")]


def test_every_provider_gets_an_overall_row_even_without_data(
    reader: FakeReader, directory: Directory
) -> None:
    rows = ScorecardService(reader, directory).scorecard(WINDOW)

    overall = [r.provider_department for r in rows if r.customer_department is None]
    assert overall == [*directory.department_ids(), "legacy"]
    assert next(r for r in rows if r.provider_department == "legal").requests_opened == 0


def test_a_customer_filter_keeps_the_overall_row(reader: FakeReader, directory: Directory) -> None:
    rows = ScorecardService(reader, directory).scorecard(WINDOW, "it", "sales")

    assert [(r.customer_department, r.requests_opened) for r in rows] == [(None, 4), ("sales", 2)]


def test_the_matrix_has_a_row_per_pair_with_data(reader: FakeReader, directory: Directory) -> None:
    rows = ScorecardService(reader, directory).matrix(WINDOW)

    assert [(r.provider_department, r.customer_department) for r in rows] == [
        ("it", "hr"),
        ("it", "finance"),
        ("it", "sales"),
        ("hr", "it"),
        ("legacy", "it"),
    ]
    assert next(r for r in rows if r.provider_department == "hr").csat_avg == 3.0


def test_the_time_series_has_every_step_of_the_window(reader: FakeReader, directory: Directory) -> None:
    series = ScorecardService(reader, directory).timeseries(WINDOW, "it", "finance")

    assert series.step_seconds == 86400 and len(series.points) == 7
    assert [p.requests_opened for p in series.points] == [1, 1, 0, 0, 0, 0, 0]
    assert series.points[0].csat_avg == 5.0 and series.points[0].csat_insufficient  # 8 < 10, still drawn
    assert series.points[2].csat_avg is None and series.points[2].start == SINCE + timedelta(days=2)


@pytest.mark.parametrize(
    ("provider", "customer"),
    [
        ("it' OR 1=1 --", None),
        ("it", "finance'); DROP TABLE minute_buckets; --"),
        ("IT", None),
        ("", None),
        ("legacy", None),  # in the data, but not in the directory: not a valid filter
    ],
)
def test_unknown_departments_are_refused_before_any_query(
    reader: FakeReader, directory: Directory, provider: str, customer: str | None
) -> None:
    service = ScorecardService(reader, directory)

    with pytest.raises(UnknownDepartment, match=r"unknown .* department"):
        service.scorecard(WINDOW, provider, customer)
    with pytest.raises(UnknownDepartment):
        service.timeseries(WINDOW, provider, customer)
    assert reader.calls == []


# --- the SQL: fixed texts, user values only as parameters ---------------------------------------


class RecordingClient:
    """Stands in for a clickhouse-connect client: records each query and answers with no rows."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    def query(self, sql: str, parameters: dict[str, Any] | None = None, settings: Any = None) -> Any:
        self.queries.append((sql, dict(parameters or {}), dict(settings or {})))

        class Result:
            @staticmethod
            def named_results() -> list[dict[str, Any]]:
                return []

        return Result()


@pytest.mark.parametrize(
    "hostile", ["it' OR '1'='1", "it}{until:String}", "x\\'; DROP TABLE minute_buckets --"]
)
def test_values_only_ever_travel_as_parameters(hostile: str) -> None:
    client = RecordingClient()
    reader = ClickHouseAggregates(client)  # type: ignore[arg-type]
    ragged = Window(SINCE + timedelta(minutes=31), SINCE + timedelta(days=7, minutes=31))

    reader.pair_sums(ragged, hostile)
    reader.series_sums(ragged, hostile, hostile)

    (pair_sql, pair_parameters, _), (series_sql, series_parameters, _) = client.queries
    # The texts are unions of the fixed per-tier SELECTs: every tier for the pair sums (edge
    # minutes, hours, days), minutes and hours for daily points starting on the hour.
    assert pair_sql == "\nUNION ALL\n".join(
        PROVIDER_PAIR_SUMS_SQL[tier] for tier in ("minute", "hour", "day")
    )
    assert series_sql == "\nUNION ALL\n".join(SERIES_SQL[(tier, True, True)] for tier in ("minute", "hour"))
    assert hostile not in pair_sql + series_sql
    assert (
        pair_parameters["provider"]
        == series_parameters["provider"]
        == series_parameters["customer"]
        == hostile
    )
    for parameters in (pair_parameters, series_parameters):
        assert all(isinstance(v, datetime) for k, v in parameters.items() if "_from_" in k or "_to_" in k)


def test_a_window_on_whole_days_needs_only_the_daily_tier() -> None:
    client = RecordingClient()

    ClickHouseAggregates(client).pair_sums(WINDOW)  # type: ignore[arg-type]

    [(sql, parameters, _)] = client.queries
    assert sql == PAIR_SUMS_SQL["day"] and "preferred_optimize_projection_name = 'daily'" in sql
    assert (parameters["day_from_0"], parameters["day_to_0"]) == (WINDOW.previous().since, WINDOW.since)
    assert (parameters["day_from_1"], parameters["day_to_1"]) == (WINDOW.since, WINDOW.until)
    assert parameters["day_from_2"] == parameters["day_to_3"] == datetime.fromtimestamp(0, UTC)  # unused


def test_every_query_text_reads_bucket_rows_through_typed_placeholders() -> None:
    texts = [*PAIR_SUMS_SQL.values(), *PROVIDER_PAIR_SUMS_SQL.values(), *SERIES_SQL.values()]

    for sql in texts:
        assert "FROM minute_buckets\nWHERE row_kind = 'bucket'" in sql
        assert "_to_3:DateTime('UTC')}" in sql and "%" not in sql and "SETTINGS preferred_optimize" in sql
    assert all("{provider:String}" not in sql for sql in PAIR_SUMS_SQL.values())
    assert all("{provider:String}" in sql for sql in PROVIDER_PAIR_SUMS_SQL.values())
    assert "{customer:String}" in SERIES_SQL[("hour", False, True)]
    assert "{provider:String}" not in SERIES_SQL[("hour", False, True)]
    assert "toStartOfDay(bucket_start) >=" in PAIR_SUMS_SQL["day"]


@pytest.mark.parametrize(
    ("start", "end", "pieces"),
    [
        pytest.param(
            "2026-03-09T00:00",
            "2026-03-16T00:00",
            [("day", "2026-03-09T00:00", "2026-03-16T00:00")],
            id="days",
        ),
        pytest.param(
            "2026-03-08T09:31",
            "2026-03-15T09:31",
            [
                ("minute", "2026-03-08T09:31", "2026-03-08T10:00"),
                ("hour", "2026-03-08T10:00", "2026-03-09T00:00"),
                ("day", "2026-03-09T00:00", "2026-03-15T00:00"),
                ("hour", "2026-03-15T00:00", "2026-03-15T09:00"),
                ("minute", "2026-03-15T09:00", "2026-03-15T09:31"),
            ],
            id="rolling-week",
        ),
        pytest.param(
            "2026-03-15T08:31",
            "2026-03-15T10:31",
            [
                ("minute", "2026-03-15T08:31", "2026-03-15T09:00"),
                ("hour", "2026-03-15T09:00", "2026-03-15T10:00"),
                ("minute", "2026-03-15T10:00", "2026-03-15T10:31"),
            ],
            id="two-hours",
        ),
        pytest.param(
            "2026-03-15T09:05",
            "2026-03-15T09:55",
            [("minute", "2026-03-15T09:05", "2026-03-15T09:55")],
            id="minutes",
        ),
        pytest.param("2026-03-15T09:31", "2026-03-15T09:31", [], id="empty"),
    ],
)
def test_a_range_splits_into_minutes_hours_and_days(
    start: str, end: str, pieces: list[tuple[str, str, str]]
) -> None:
    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    assert split_range(at(start), at(end)) == [(tier, at(a), at(b)) for tier, a, b in pieces]


def test_without_days_the_middle_stays_in_hours() -> None:
    start, end = datetime(2026, 3, 8, 9, 31, tzinfo=UTC), datetime(2026, 3, 10, 9, 31, tzinfo=UTC)

    tiers = [tier for tier, _, _ in split_range(start, end, days=False)]

    assert tiers == ["minute", "hour", "minute"]


def test_rows_by_service_follow_the_directory_and_put_events_without_a_service_last(
    directory: Directory,
) -> None:
    day = timedelta(days=1)
    reader = FakeReader(
        [
            delta("hr", "sales", SINCE, *[csat(2)] * 12, service="hr.recruiting"),
            delta("hr", "finance", SINCE + day, *[csat(3)] * 4, service="hr.recruiting"),
            delta("hr", "sales", SINCE, *[csat(5)] * 20, service="hr.payroll"),
            delta("hr", "it", SINCE + 2 * day, OPENED),  # no service
            delta("hr", "sales", SINCE - day, *[csat(5)] * 10, service="hr.recruiting"),  # previous window
        ]
    )

    rows = ScorecardService(reader, directory).services(WINDOW, "hr")

    listed = [s.id for s in directory.department("hr").services]
    services = [row.service_category for row in rows[1:]]
    assert rows[0].service_category is None and rows[0].customer_department is None
    assert services == [s for s in listed if s in services] + [""]
    recruiting = next(row for row in rows if row.service_category == "hr.recruiting")
    assert (recruiting.csat_count, recruiting.csat_satisfied_share) == (16, 0.0)
    assert recruiting.csat_satisfied_share_change == -1.0  # 10 of 10 satisfied the window before
    assert rows[0].csat_count == 36  # the overall row merges every service

    only_sales = ScorecardService(reader, directory).services(WINDOW, "hr", "sales")
    assert only_sales[0].customer_department == "sales"
    assert next(r for r in only_sales if r.service_category == "hr.recruiting").csat_count == 12


def test_the_weakest_service_carries_most_of_the_shortfall(directory: Directory) -> None:
    from stream_processors.scorecard.rows import shortfall, weakest

    reader = FakeReader(
        [
            delta("hr", "sales", SINCE, *[csat(2)] * 30, *[csat(5)] * 10, service="hr.recruiting"),
            delta("hr", "sales", SINCE, *[csat(2)] * 3, *[csat(5)] * 2, service="hr.payroll"),  # too few
            delta("hr", "sales", SINCE, *[csat(5)] * 40, service="hr.onboarding"),
        ]
    )
    policy = directory.policy_for("hr")
    rows = ScorecardService(reader, directory).services(WINDOW, "hr")[1:]

    weak = weakest(rows, policy)
    assert weak is not None and weak.service_category == "hr.recruiting"
    # 40 answers, 25 % satisfied: short of the target by 40 x (target - 0.25) answers
    assert shortfall(weak, policy) == pytest.approx(40 * (policy.satisfied_share_target - 0.25))
    assert weakest([r for r in rows if r.service_category != "hr.recruiting"], policy) is None
