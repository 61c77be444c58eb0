"""The ClickHouse sink against embedded ClickHouse: atomic offsets, retries that do not double count,
idempotent side tables, and the replay used to rebuild a partition."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from schemas.events import parse_event
from stream_processors.core import BucketKey, MinuteAggregate, RequestFact
from stream_processors.sinks.clickhouse import (
    AsyncClickHouseSink,
    ClickHouseSink,
    RetryPolicy,
    SinkBatch,
    comment_row,
    raw_event_row,
)
from stream_processors.storage import migrate

pytestmark = pytest.mark.integration

TOPIC = "deptpulse.events"
# Recent: the tables' TTLs (comments: 180 days) drop older rows as they are inserted.
MINUTE = (datetime.now(UTC) - timedelta(days=1)).replace(second=0, microsecond=0)
INGESTED = MINUTE + timedelta(hours=1)


@pytest.fixture
def sink(clickhouse_client: Client) -> ClickHouseSink:
    migrate(clickhouse_client)
    return ClickHouseSink(clickhouse_client)


def feedback(offset: int, request_id: str, minutes: int = 0) -> Any:
    return parse_event(
        orjson.dumps(
            {
                "schema_version": 1,
                "event_id": f"e{offset}",
                "event_type": "feedback.submitted",
                "occurred_at": (MINUTE + timedelta(minutes=minutes)).isoformat(),
                "source": "jira-sm",
                "provider_department": "it",
                "customer_department": "hr",
                "request_id": request_id,
                "csat": 4,
                "comment": "ring me on +49 170 1234567",
            }
        )
    )


def make_batch(partition: int, first: int, last: int, opened: int = 1) -> SinkBatch:
    batch = SinkBatch(TOPIC)
    for offset in range(first, last + 1):
        event = feedback(offset, f"R{offset}")
        batch.raw_events.append(raw_event_row(TOPIC, partition, offset, event, INGESTED))
        row = comment_row(event)
        assert row is not None
        batch.comments.append(row)
    batch.deltas = [(BucketKey("it", "hr", "", MINUTE), MinuteAggregate(requests_opened=opened, first_response_hist={4: 1}))]
    batch.add_offsets(partition, first, last)
    return batch


def totals(client: Client) -> tuple[int, dict[int, int]]:
    [(opened, histogram)] = client.query(
        "SELECT sum(requests_opened), sumMap(first_response_hist) FROM minute_aggregates"
    ).result_rows
    return int(opened), dict(histogram)


def test_a_batch_lands_with_its_offset_and_reads_back(sink: ClickHouseSink, clickhouse_client: Client) -> None:
    sink.write_side_tables(make_batch(0, 0, 9))
    sink.write_aggregates(make_batch(0, 0, 9))
    sink.write_aggregates(make_batch(3, 40, 41, opened=2))

    assert sink.applied_offsets(TOPIC) == {0: 9, 3: 41}
    assert sink.applied_offsets("another.topic") == {}
    assert totals(clickhouse_client) == (3, {4: 2})
    assert sink.batch_landed(make_batch(0, 5, 9)) and not sink.batch_landed(make_batch(0, 5, 10))
    [(comment,)] = clickhouse_client.query("SELECT DISTINCT comment FROM comments").result_rows
    assert comment == "ring me on [phone]"


def test_retrying_the_same_batch_is_deduplicated_by_its_token(sink: ClickHouseSink, clickhouse_client: Client) -> None:
    batch = make_batch(0, 0, 4)
    for _ in range(3):  # e.g. a timeout after the server had committed the insert
        sink.write_side_tables(batch)
        sink.write_aggregates(batch)

    assert totals(clickhouse_client) == (1, {4: 1})
    assert clickhouse_client.query("SELECT count() FROM raw_events FINAL").result_rows == [(5,)]


def test_a_different_batch_of_the_same_content_is_not_mistaken_for_a_retry(
    sink: ClickHouseSink, clickhouse_client: Client
) -> None:
    sink.write_aggregates(make_batch(0, 0, 4))
    sink.write_aggregates(make_batch(1, 0, 4))  # same deltas, other partition: a real second batch

    assert totals(clickhouse_client) == (2, {4: 2})


def test_replay_returns_stored_events_up_to_the_applied_offset_once_each(sink: ClickHouseSink) -> None:
    sink.write_side_tables(make_batch(2, 0, 5))
    sink.write_side_tables(make_batch(2, 3, 8))  # offsets 3..5 written twice (a re-processed batch)
    sink.write_side_tables(make_batch(1, 0, 3))

    replay = sink.applied_payloads(TOPIC, 2, 6, timedelta(days=1))

    assert [offset for offset, _ in replay] == [0, 1, 2, 3, 4, 5, 6]
    event = parse_event(replay[0][1])
    assert event.event_id == "e0" and getattr(event, "comment", None) is None  # comments are not replayed


def test_replay_keeps_old_events_of_requests_still_in_the_horizon(sink: ClickHouseSink) -> None:
    batch = SinkBatch(TOPIC)
    old = feedback(0, "LONG", minutes=-60 * 24 * 30)
    gone = feedback(1, "OLD", minutes=-60 * 24 * 30)
    recent = feedback(2, "LONG")
    for offset, event in enumerate((old, gone, recent)):
        batch.raw_events.append(raw_event_row(TOPIC, 0, offset, event, INGESTED))
    sink.write_side_tables(batch)

    replay = sink.applied_payloads(TOPIC, 0, 2, timedelta(days=7))

    assert [offset for offset, _ in replay] == [0, 2]


def test_window_aggregates_merge_per_pair(sink: ClickHouseSink) -> None:
    sink.write_aggregates(make_batch(0, 0, 1, opened=2))
    sink.write_aggregates(make_batch(0, 2, 3, opened=3))

    [(provider, customer, aggregate)] = sink.window_aggregates(MINUTE - timedelta(hours=1))

    assert (provider, customer, aggregate.requests_opened, aggregate.first_response_hist) == ("it", "hr", 5, {4: 2})
    assert sink.window_aggregates(MINUTE + timedelta(minutes=1)) == []


class FlakyClient:
    """Wraps a client: the first ``failures`` inserts into minute_buckets raise AFTER landing
    (a timeout on a committed insert) or before it (a refused insert)."""

    def __init__(self, client: Client, failures: int, land_first: bool) -> None:
        self._client, self.failures, self.land_first, self.attempts = client, failures, land_first, 0

    def insert(self, table: str, *args: Any, **kwargs: Any) -> Any:
        if table == "minute_buckets":
            self.attempts += 1
            if self.failures:
                self.failures -= 1
                if self.land_first:
                    self._client.insert(table, *args, **kwargs)
                raise ConnectionError("read timed out")
        return self._client.insert(table, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.mark.parametrize("land_first", [True, False])
def test_the_async_sink_retries_until_the_batch_is_in_exactly_once(clickhouse_client: Client, land_first: bool) -> None:
    migrate(clickhouse_client)
    flaky = FlakyClient(clickhouse_client, failures=2, land_first=land_first)
    errors: list[str] = []
    sink = AsyncClickHouseSink(
        ClickHouseSink(flaky),  # type: ignore[arg-type]
        on_error=lambda step, _exc: errors.append(step),
        policy=RetryPolicy(initial_s=0.01, max_s=0.02),
    )
    sent: list[str] = []

    async def send_dead_letters() -> None:
        sent.append("dead letters")

    async def run() -> dict[str, int]:
        return await sink.write(make_batch(0, 0, 4), lambda: False, before_commit=send_dead_letters)

    written = asyncio.run(run())

    assert totals(clickhouse_client) == (1, {4: 1})
    assert ClickHouseSink(clickhouse_client).applied_offsets(TOPIC) == {0: 4}
    assert sent == ["dead letters"] and errors == ["aggregates"] * (1 if land_first else 2)
    # landed on the first try: the read-back sees it and stops; refused: inserted on the third
    assert flaky.attempts == (1 if land_first else 3)
    assert ("minute_buckets" in written) is (not land_first)


def test_unanswered_requests_are_the_open_ones_without_a_first_response(sink: ClickHouseSink) -> None:
    def fact(request_id: str, first_response: bool, last_event_minutes: int, status: str = "open") -> RequestFact:
        at = MINUTE + timedelta(minutes=last_event_minutes)
        return RequestFact(
            request_id, "it", "finance", "it.access", "P2", MINUTE, at if first_response else None,
            None, None, status, 0, None, None, None, None, 1800.0, 28800.0, None, "running", 0.0, 0.0, at,
        )

    batch = SinkBatch(TOPIC)
    # R1 waits; R2 was answered in a later snapshot (the newest snapshot wins); R3 waits on its customer.
    batch.facts = [fact("R1", False, 0), fact("R2", False, 0), fact("R2", True, 5), fact("R3", False, 1, "waiting_on_customer")]
    sink.write_side_tables(batch)

    unanswered = sorted(sink.unanswered_requests(), key=lambda request: request.status)

    assert [(r.provider_department, r.customer_department, r.status) for r in unanswered] == [
        ("it", "finance", "open"), ("it", "finance", "waiting_on_customer")
    ]
    assert unanswered[0].opened_at == MINUTE  # timezone-aware UTC, as the core needs
