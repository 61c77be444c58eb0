"""The ClickHouse sink's pure parts: redaction, rows, the batch token, delta merging."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stream_processors.core import AGGREGATE_COLUMNS, BucketKey, MinuteAggregate
from stream_processors.core.redaction import redact
from stream_processors.sinks.clickhouse import (
    BUCKET_COLUMNS,
    EPOCH,
    SinkBatch,
    aggregate_from_row,
    merge_deltas,
)

pytestmark = pytest.mark.unit

MINUTE = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to ada.park@example.com please", "write to [email] please"),
        ("Ada <ADA_PARK+it@mail.example.co.uk>", "Ada <[email]>"),
        ("call +49 170 1234567 now", "call [phone] now"),
        ("call (030) 123-4567", "call [phone]"),
        ("电话13800138000谢谢", "电话[phone]谢谢"),
        ("138 0013 8000", "[phone]"),
        ("ticket INC0012345 is still open", "ticket [id] is still open"),
        ("on 2026-03-02 at 09:15", "on 2026-03-02 at 09:15"),
        ("waited 45 minutes, room 1204", "waited 45 minutes, room 1204"),
        ("version 1.2.3", "version 1.2.3"),
        ("", ""),
        ("很好，谢谢", "很好，谢谢"),
    ],
)
def test_redact_removes_emails_phone_numbers_and_ids_only(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_is_idempotent() -> None:
    once = redact("a@b.example or +1 212 555 0100")
    assert redact(once) == once == "[email] or [phone]"


def aggregate(**values: object) -> MinuteAggregate:
    return MinuteAggregate(**values)  # type: ignore[arg-type]


def test_bucket_and_offset_rows_follow_the_table_columns() -> None:
    key = BucketKey("it", "hr", "", MINUTE)
    batch = SinkBatch("events", deltas=[(key, aggregate(requests_opened=2, first_response_hist={3: 1}))])
    batch.add_offsets(4, 10, 20)
    batch.add_offsets(1, 5, 6)

    bucket, offset_1, offset_4 = batch.bucket_rows()

    assert len(bucket) == len(BUCKET_COLUMNS) == 8 + len(AGGREGATE_COLUMNS)
    named = dict(zip(BUCKET_COLUMNS, bucket, strict=True))
    assert named["row_kind"] == "bucket" and named["requests_opened"] == 2
    assert named["first_response_hist"] == {3: 1}
    assert (named["sink_topic"], named["sink_partition"]) == ("", -1)
    named = dict(zip(BUCKET_COLUMNS, offset_4, strict=True))
    assert (named["row_kind"], named["sink_partition"], named["applied_offset"]) == ("offset", 4, 20)
    assert named["bucket_start"] == EPOCH and named["requests_opened"] == 0
    assert offset_1[6:8] == [1, 6]


def test_the_dedup_token_names_the_messages_of_the_batch() -> None:
    batch = SinkBatch("events")
    batch.add_offsets(3, 100, 199)
    batch.add_offsets(0, 7, 9)
    batch.add_offsets(3, 100, 250)  # a later range of the same partition extends it

    assert batch.dedup_token == "events|0:7-9,3:100-250"


def test_merge_deltas_sums_equal_keys_and_drops_cancelled_ones() -> None:
    a, b = BucketKey("it", "hr", "", MINUTE), BucketKey("it", "sales", "", MINUTE)
    merged = dict(
        merge_deltas(
            [
                (a, aggregate(requests_opened=1, first_response_hist={2: 1})),
                (b, aggregate(sla_met=1)),
                (a, aggregate(requests_opened=1, first_response_hist={2: 1, 5: 1})),
                (b, aggregate(sla_met=-1)),
            ]
        )
    )

    assert list(merged) == [a]
    assert merged[a].requests_opened == 2 and merged[a].first_response_hist == {2: 2, 5: 1}


def test_merge_deltas_sums_three_or_more_and_leaves_the_inputs_alone() -> None:
    key = BucketKey("it", "hr", "", MINUTE)
    inputs = [aggregate(requests_opened=1, first_response_hist={2: 1}) for _ in range(4)]

    [(merged_key, total)] = merge_deltas([(key, delta) for delta in inputs])

    assert merged_key == key and total.requests_opened == 4 and total.first_response_hist == {2: 4}
    assert all(delta.requests_opened == 1 and delta.first_response_hist == {2: 1} for delta in inputs)


def test_aggregate_from_row_reads_what_clickhouse_returns() -> None:
    values: list[object] = [0] * len(AGGREGATE_COLUMNS)
    names = list(AGGREGATE_COLUMNS)
    values[names.index("first_response_hist")] = {"3": 2, "4": 0}
    values[names.index("resolution_hist")] = {}
    values[names.index("csat_5")] = 3

    result = aggregate_from_row(values)

    assert result.first_response_hist == {3: 2} and result.csat_5 == 3
