"""The scorecard's reads: ClickHouse sums minute buckets, Python derives the figures.

Every query is a fixed SQL text with server-side ``{name:Type}`` placeholders, run as
``client.query(sql, parameters=...)``; user input never becomes SQL text (ids are also checked
against the directory before they get here). The texts differ only by which fixed filter
fragments they include.

They read ``minute_buckets WHERE row_kind = 'bucket'`` directly rather than the
``minute_aggregates`` view: the view groups by minute first and the report groups again; one
GROUP BY over the delta rows gives the same sums for less work (``benchmarks/bench_queries.py``
measures both).

Rollup tiers. A window is split into whole UTC days, whole hours and the minutes at its edges
(:func:`split_range`); each tier is a SELECT summing over ``toStartOfDay(bucket_start)``,
``toStartOfHour(bucket_start)`` or ``bucket_start``, for both windows at once, and one query is
the UNION ALL of the tiers (ClickHouse runs them in parallel). The results are
the same whatever the table holds. With the ``daily``, ``hourly`` and ``minutely`` aggregate
projections of :data:`ROLLUP_PROJECTIONS_DDL` (pairs without the service, time first), each tier
reads a few contiguous ranges of a small sorted copy instead of scanning the table, whose sort key
puts time fifth. Projections live in the same part as the rows they summarise, so the worker's
one-INSERT-one-part atomicity holds. ``sumMap`` merges dominate what is left (about 4 µs per
histogram state on the benchmark machine).

Histograms come back as ``sumMap`` results (bucket index -> count); zero counts (a sample added
and retracted) are dropped before they reach :mod:`stream_processors.core`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal, NamedTuple, Protocol

from clickhouse_connect.driver.client import Client

from stream_processors.core import AGGREGATE_COLUMNS, MinuteAggregate
from stream_processors.core.aggregates import merge_into
from stream_processors.scorecard.questions import QuestionCounts, read_question_counts
from stream_processors.scorecard.windows import DAY, HOUR, Window, ceil_to, floor_to, query_parameters

Tier = Literal["minute", "hour", "day"]
TIERS: Final[tuple[Tier, ...]] = ("minute", "hour", "day")
TIER_EXPRESSION: Final[dict[Tier, str]] = {
    "minute": "bucket_start",
    "hour": "toStartOfHour(bucket_start)",
    "day": "toStartOfDay(bucket_start)",
}
SLOTS: Final = 4  # ranges per tier in one query: two windows, at most two ranges of a tier each
_EMPTY: Final = datetime.fromtimestamp(0, UTC)

HISTOGRAM_COLUMNS: Final = frozenset({"first_response_hist", "resolution_hist"})
# The aggregate of each column; the projections hold exactly these, so the queries match them.
_AGGREGATES: Final = {
    column: f"sumMap({column})" if column in HISTOGRAM_COLUMNS else f"sum({column})"
    for column in AGGREGATE_COLUMNS
}
# Every AGGREGATE_COLUMNS sum as "<aggregate> AS <column>": the select list of any query summing
# minute_buckets (other features' too); aggregate_from_row reads such a row back.
SUMS: Final = ",\n    ".join(f"{aggregate} AS {column}" for column, aggregate in _AGGREGATES.items())
_PROVIDER: Final = "AND provider_department = {provider:String}"
_CUSTOMER: Final = "AND customer_department = {customer:String}"


def _projection(name: str, tier: Tier) -> str:
    expression = TIER_EXPRESSION[tier]
    sums = ", ".join(_AGGREGATES.values())
    # Time first: a tier reads a few contiguous ranges of it, for one provider or for all.
    keys = f"row_kind, {expression}, provider_department, customer_department"
    return (
        f"ALTER TABLE minute_buckets ADD PROJECTION IF NOT EXISTS {name}\n"
        f"(\n    SELECT {keys},\n        {sums}\n    GROUP BY {keys}\n)"
    )


PROJECTIONS: Final[dict[Tier, str]] = {"minute": "minutely", "hour": "hourly", "day": "daily"}
# The migration these queries are written for (schemas/clickhouse/, a new NNN file; statements in
# order). AggregatingMergeTree refuses projections unless merges rebuild them; MATERIALIZE builds
# them for the parts written before.
ROLLUP_PROJECTIONS_DDL: Final = (
    "ALTER TABLE minute_buckets MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild'",
    *(_projection(name, tier) for tier, name in PROJECTIONS.items()),
    *(f"ALTER TABLE minute_buckets MATERIALIZE PROJECTION {name}" for name in PROJECTIONS.values()),
)


def split_range(
    start: datetime, end: datetime, *, days: bool = True
) -> list[tuple[Tier, datetime, datetime]]:
    """``[start, end)`` as consecutive pieces: edge minutes, whole hours, whole UTC days (if
    ``days``), whole hours, edge minutes; empty pieces left out."""
    first_hour, last_hour = ceil_to(start, HOUR), floor_to(end, HOUR)
    if first_hour >= last_hour:
        return [("minute", start, end)] if start < end else []
    pieces: list[tuple[Tier, datetime, datetime]] = [("minute", start, first_hour)]
    first_day, last_day = ceil_to(first_hour, DAY), floor_to(last_hour, DAY)
    if days and first_day < last_day:
        pieces += [
            ("hour", first_hour, first_day),
            ("day", first_day, last_day),
            ("hour", last_day, last_hour),
        ]
    else:
        pieces.append(("hour", first_hour, last_hour))
    pieces.append(("minute", last_hour, end))
    return [piece for piece in pieces if piece[1] < piece[2]]


# Per tier: which projection to read (naming it spares the optimiser weighing every candidate,
# which cost more than the read itself), and no rewriting of toStartOfDay(x) >= t into x >= t'
# (that rewrite hides the projection's key). Both are only preferences: without the projections
# the same queries read the table.
TIER_SETTINGS: Final[dict[Tier, dict[str, Any]]] = {
    tier: {"preferred_optimize_projection_name": name, "optimize_time_filter_with_preimage": 0}
    for tier, name in PROJECTIONS.items()
}


def _ranges(tier: Tier) -> str:
    expression = TIER_EXPRESSION[tier]
    return " OR ".join(
        f"({expression} >= {{{tier}_from_{slot}:DateTime('UTC')}} "
        f"AND {expression} < {{{tier}_to_{slot}:DateTime('UTC')}})"
        for slot in range(SLOTS)
    )


def _settings(tier: Tier) -> str:
    return ", ".join(
        f"{name} = '{value}'" if isinstance(value, str) else f"{name} = {value}"
        for name, value in TIER_SETTINGS[tier].items()
    )


def _pair_sums_sql(tier: Tier, provider_filter: str) -> str:
    return f"""(
SELECT
    provider_department,
    customer_department,
    {TIER_EXPRESSION[tier]} >= {{since:DateTime('UTC')}} AS in_window,
    {SUMS}
FROM minute_buckets
WHERE row_kind = 'bucket'
  AND ({_ranges(tier)})
  {provider_filter}
GROUP BY provider_department, customer_department, in_window
SETTINGS {_settings(tier)}
)"""


def _series_sql(tier: Tier, provider_filter: str, customer_filter: str) -> str:
    return f"""(
SELECT
    intDiv(toInt64(toUInt32({TIER_EXPRESSION[tier]})) - {{origin:Int64}}, {{step:UInt32}}) AS point,
    {SUMS}
FROM minute_buckets
WHERE row_kind = 'bucket'
  AND ({_ranges(tier)})
  {provider_filter}
  {customer_filter}
GROUP BY point
SETTINGS {_settings(tier)}
)"""


# One SELECT per tier (its pieces of both windows in its SLOTS ranges; `in_window` tells the
# windows apart); a query is the UNION ALL of the tiers a window needs, which ClickHouse runs in
# parallel. Every text is built here from these fixed fragments.
PAIR_SUMS_SQL: Final = {tier: _pair_sums_sql(tier, "") for tier in TIERS}
PROVIDER_PAIR_SUMS_SQL: Final = {tier: _pair_sums_sql(tier, _PROVIDER) for tier in TIERS}
SERIES_SQL: Final = {
    (tier, with_provider, with_customer): _series_sql(
        tier, _PROVIDER if with_provider else "", _CUSTOMER if with_customer else ""
    )
    for tier in ("minute", "hour")
    for with_provider in (False, True)
    for with_customer in (False, True)
}


def _service_sums_sql(provider_filter: str, customer_filter: str) -> str:
    # The rollup projections leave the service out, so this reads the table; its sort key
    # (row_kind, provider, customer, service, minute) keeps a provider's rows together.
    return f"""
SELECT
    provider_department,
    service_category,
    bucket_start >= {{since:DateTime('UTC')}} AS in_window,
    {SUMS}
FROM minute_buckets
WHERE row_kind = 'bucket'
  AND bucket_start >= {{previous_since:DateTime('UTC')}}
  AND bucket_start < {{until:DateTime('UTC')}}
  {provider_filter}
  {customer_filter}
GROUP BY provider_department, service_category, in_window
SETTINGS optimize_use_projections = 0
"""


SERVICE_SUMS_SQL: Final = {
    (with_provider, with_customer): _service_sums_sql(
        _PROVIDER if with_provider else "", _CUSTOMER if with_customer else ""
    )
    for with_provider in (False, True)
    for with_customer in (False, True)
}


class Query(NamedTuple):
    sql: str
    parameters: dict[str, Any]


def _union(
    pieces: Iterable[tuple[Tier, datetime, datetime]],
    select_of: Callable[[Tier], str],
    common: dict[str, Any],
) -> Query:
    """The UNION ALL of the tiers that have pieces, each piece in a range slot (unused slots empty)."""
    by_tier: dict[Tier, list[tuple[datetime, datetime]]] = {}
    for tier, start, end in pieces:
        by_tier.setdefault(tier, []).append((start, end))
    if not by_tier:  # an empty window: one SELECT of nothing
        by_tier["minute"] = []
    parameters = dict(common)
    for tier, ranges in by_tier.items():
        if len(ranges) > SLOTS:
            raise ValueError(f"{len(ranges)} {tier} ranges; a query holds {SLOTS}")
        for slot, (start, end) in enumerate(ranges + [(_EMPTY, _EMPTY)] * (SLOTS - len(ranges))):
            parameters[f"{tier}_from_{slot}"], parameters[f"{tier}_to_{slot}"] = start, end
    tiers = [tier for tier in TIERS if tier in by_tier]
    return Query("\nUNION ALL\n".join(select_of(tier) for tier in tiers), parameters)


Pair = tuple[str, str]  # (provider_department, customer_department)
ProviderService = tuple[str, str]  # (provider_department, service_category; '' for none)


class PairSums(NamedTuple):
    """Merged sums per (provider, customer) pair, in the window and in the window before it."""

    current: dict[Pair, MinuteAggregate]
    previous: dict[Pair, MinuteAggregate]


class ServiceSums(NamedTuple):
    """Merged sums per (provider, service), in the window and in the window before it."""

    current: dict[ProviderService, MinuteAggregate]
    previous: dict[ProviderService, MinuteAggregate]


class AggregateReader(Protocol):
    """What the scorecard needs from storage (ClickHouse here; an in-memory fake in tests)."""

    def pair_sums(self, window: Window, provider: str | None = None) -> PairSums: ...

    def series_sums(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> dict[int, MinuteAggregate]: ...

    def service_sums(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> ServiceSums: ...

    def question_counts(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> QuestionCounts: ...


def aggregate_from_row(row: Mapping[str, Any]) -> MinuteAggregate:
    """A :class:`MinuteAggregate` from a result row holding every column of ``AGGREGATE_COLUMNS``."""
    values: dict[str, Any] = {}
    for column in AGGREGATE_COLUMNS:
        value = row[column]
        if column in HISTOGRAM_COLUMNS:
            values[column] = {int(index): int(count) for index, count in value.items() if count}
        elif column.endswith("_s"):
            values[column] = float(value)
        else:
            values[column] = int(value)
    return MinuteAggregate(**values)


def _add(target: dict[Any, MinuteAggregate], key: Any, row: Mapping[str, Any]) -> None:
    """Add a result row to ``target[key]`` (tiers of one query return a row each per key)."""
    aggregate = aggregate_from_row(row)
    if key in target:
        merge_into(target[key], aggregate)
    else:
        target[key] = aggregate


class ClickHouseAggregates:
    """:class:`AggregateReader` over the ``minute_buckets`` table of a clickhouse-connect client."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def _rows(self, query: Query) -> Iterable[dict[str, Any]]:
        return self._client.query(query.sql, parameters=query.parameters).named_results()

    @staticmethod
    def pair_sums_query(window: Window, provider: str | None = None) -> Query:
        """The query of :meth:`pair_sums`: the tiers of both windows."""
        previous = window.previous()
        pieces = split_range(previous.since, previous.until) + split_range(window.since, window.until)
        if provider is None:
            return _union(pieces, PAIR_SUMS_SQL.__getitem__, {"since": window.since})
        return _union(
            pieces, PROVIDER_PAIR_SUMS_SQL.__getitem__, {"since": window.since, "provider": provider}
        )

    @staticmethod
    def service_sums_query(window: Window, provider: str | None = None, customer: str | None = None) -> Query:
        """The query of :meth:`service_sums`: both windows, grouped by provider and service."""
        sql = SERVICE_SUMS_SQL[(provider is not None, customer is not None)]
        return Query(sql, query_parameters(window, provider, customer))

    def question_counts(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> QuestionCounts:
        return read_question_counts(self._client, window, provider, customer)

    def service_sums(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> ServiceSums:
        sums = ServiceSums({}, {})
        for row in self._rows(self.service_sums_query(window, provider, customer)):
            target = sums.current if row["in_window"] else sums.previous
            _add(target, (row["provider_department"], row["service_category"]), row)
        return sums

    def pair_sums(self, window: Window, provider: str | None = None) -> PairSums:
        sums = PairSums({}, {})
        for row in self._rows(self.pair_sums_query(window, provider)):
            target = sums.current if row["in_window"] else sums.previous
            _add(target, (row["provider_department"], row["customer_department"]), row)
        return sums

    @staticmethod
    def series_sums_query(window: Window, provider: str | None = None, customer: str | None = None) -> Query:
        """The query of :meth:`series_sums`: minutes, and whole hours for hourly or daily steps."""
        # Hourly and daily points start on whole hours (Window.point_origin): an hour never straddles two.
        pieces: list[tuple[Tier, datetime, datetime]] = (
            split_range(window.since, window.until, days=False)
            if window.step() >= HOUR
            else [("minute", window.since, window.until)]
        )
        common: dict[str, Any] = {
            "origin": int(window.point_origin().timestamp()),
            "step": int(window.step().total_seconds()),
        }
        if provider is not None:
            common["provider"] = provider
        if customer is not None:
            common["customer"] = customer
        with_provider, with_customer = provider is not None, customer is not None
        return _union(pieces, lambda tier: SERIES_SQL[(tier, with_provider, with_customer)], common)

    def series_sums(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> dict[int, MinuteAggregate]:
        points: dict[int, MinuteAggregate] = {}
        for row in self._rows(self.series_sums_query(window, provider, customer)):
            _add(points, int(row["point"]), row)
        return points
