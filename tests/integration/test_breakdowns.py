"""The reads behind the per-service and improvement-action gauges, against embedded ClickHouse (chdb)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from clickhouse_connect.driver.client import Client
from prometheus_client import CollectorRegistry

from schemas import metric_names
from schemas.events import parse_event
from schemas.observability import names
from stream_processors.actions.measuring import ClickHouseActions
from stream_processors.core import BucketKey, MinuteAggregate
from stream_processors.metrics import ActionGauge, Metrics, window_starts
from stream_processors.sinks.breakdowns import service_aggregates
from stream_processors.sinks.clickhouse import ClickHouseSink, SinkBatch, raw_event_row
from stream_processors.storage import migrate

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(second=0, microsecond=0)


def write_buckets(client: Client, deltas: list[tuple[BucketKey, MinuteAggregate]], offset: int) -> None:
    batch = SinkBatch("deptpulse.events")
    batch.deltas = deltas
    batch.add_offsets(0, offset, offset)
    ClickHouseSink(client).write_aggregates(batch)


def test_service_aggregates_cut_one_scan_into_nested_windows(clickhouse_client: Client) -> None:
    migrate(clickhouse_client)
    ago = {
        name: NOW - length
        for name, length in {
            "30m": timedelta(minutes=30),
            "3h": timedelta(hours=3),
            "3d": timedelta(days=3),
            "20d": timedelta(days=20),
            "40d": timedelta(days=40),
        }.items()
    }
    write_buckets(
        clickhouse_client,
        [
            (BucketKey("hr", "finance", "hr.recruiting", ago["30m"]), MinuteAggregate(csat_1=1)),
            (
                BucketKey("hr", "finance", "hr.recruiting", ago["3h"]),
                MinuteAggregate(csat_2=1, first_response_hist={4: 1}),
            ),
            (
                BucketKey("hr", "finance", "hr.recruiting", ago["3d"]),
                MinuteAggregate(csat_3=1, first_response_hist={4: 2}),
            ),
            (BucketKey("hr", "finance", "", ago["20d"]), MinuteAggregate(sla_met=1)),
            (
                BucketKey("hr", "finance", "hr.recruiting", ago["40d"]),
                MinuteAggregate(csat_5=100),
            ),  # outside 28d
        ],
        offset=0,
    )
    # A second insert of the same key: the read sums unmerged parts.
    write_buckets(
        clickhouse_client,
        [(BucketKey("hr", "finance", "hr.recruiting", ago["30m"]), MinuteAggregate(csat_1=2))],
        offset=1,
    )

    by_window = service_aggregates(clickhouse_client, window_starts(NOW + timedelta(minutes=1)))

    def rows(window: str) -> dict[tuple[str, str, str], tuple[int, int, int, int, dict[int, int]]]:
        return {
            (provider, customer, service): (a.csat_1, a.csat_2, a.csat_3, a.sla_met, a.first_response_hist)
            for provider, customer, service, a in by_window[window]
        }

    assert set(by_window) == {"1h", "24h", "7d", "28d"}
    assert rows("1h") == {("hr", "finance", "hr.recruiting"): (3, 0, 0, 0, {})}
    assert rows("24h") == {("hr", "finance", "hr.recruiting"): (3, 1, 0, 0, {4: 1})}
    assert rows("7d") == {("hr", "finance", "hr.recruiting"): (3, 1, 1, 0, {4: 3})}
    assert rows("28d") == {
        ("hr", "finance", "hr.recruiting"): (3, 1, 1, 0, {4: 3}),
        ("hr", "finance", ""): (0, 0, 0, 1, {}),
    }
    # No window shares an aggregate object with another (the gauges merge into them).
    objects = [id(a) for window in by_window.values() for *_, a in window]
    assert len(objects) == len(set(objects))


def test_service_aggregates_of_an_empty_table(clickhouse_client: Client) -> None:
    migrate(clickhouse_client)
    assert service_aggregates(clickhouse_client, window_starts(NOW)) == {
        "1h": [],
        "24h": [],
        "7d": [],
        "28d": [],
    }
    assert service_aggregates(clickhouse_client, {}) == {}


def test_recorded_actions_become_action_gauges(clickhouse_client: Client) -> None:
    migrate(clickhouse_client)
    started = (NOW - timedelta(days=3)).date()
    action = parse_event(
        orjson.dumps(
            {
                "schema_version": 1,
                "event_id": "action-1",
                "event_type": "action.recorded",
                "occurred_at": NOW.isoformat(),
                "source": "deptpulse-cli",
                "provider_department": "hr",
                "service_category": "hr.recruiting",
                "title": "Recruiting reorganised",
                "started_on": started.isoformat(),
            }
        )
    )
    batch = SinkBatch("deptpulse.events")
    # The same event at two offsets (published twice): one action.
    batch.raw_events = [raw_event_row("deptpulse.events", 0, offset, action, NOW) for offset in (7, 8)]
    ClickHouseSink(clickhouse_client).write_side_tables(batch)
    registry = CollectorRegistry()
    gauge = ActionGauge(Metrics.create(registry))

    gauge.update(ClickHouseActions(clickhouse_client).actions(), NOW)

    labels = {
        "provider_department": "hr",
        names.SERVICE_LABEL: "hr.recruiting",
        "title": "Recruiting reorganised",
        "started_on": started.isoformat(),
    }
    start = datetime(started.year, started.month, started.day, tzinfo=UTC).timestamp()
    assert registry.get_sample_value(metric_names.IMPROVEMENT_ACTION_START, labels) == start
    series = [
        s for family in registry.collect() for s in family.samples if s.name == metric_names.IMPROVEMENT_ACTION_START
    ]
    assert len(series) == 1
