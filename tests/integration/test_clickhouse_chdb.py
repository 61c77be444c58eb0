"""clickhouse-connect on embedded chdb: the round trip every sink relies on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from clickhouse_connect.driver.client import Client

pytestmark = pytest.mark.integration

CREATED_AT = datetime(2024, 3, 1, 9, 30, 15, 250_000, tzinfo=UTC)


@pytest.fixture
def events_table(clickhouse_client: Client) -> str:
    clickhouse_client.command(
        "CREATE TABLE events (event_id String, created_at DateTime64(3, 'UTC')) "
        "ENGINE = MergeTree ORDER BY created_at"
    )
    return "events"


def test_a_row_with_a_utc_datetime64_round_trips(clickhouse_client: Client, events_table: str) -> None:
    clickhouse_client.insert(events_table, [["evt-1", CREATED_AT]], column_names=["event_id", "created_at"])

    rows = clickhouse_client.query(f"SELECT event_id, created_at FROM {events_table}").result_rows

    # clickhouse-connect returns naive UTC by default (tz_mode="naive_utc"); the instant is exact.
    [(event_id, created_at)] = rows
    assert event_id == "evt-1"
    assert created_at.replace(tzinfo=UTC) == CREATED_AT


def test_aware_mode_returns_timezone_aware_datetimes(clickhouse_client: Client, events_table: str) -> None:
    clickhouse_client.insert(events_table, [["evt-1", CREATED_AT]], column_names=["event_id", "created_at"])

    result = clickhouse_client.query(f"SELECT created_at FROM {events_table}", tz_mode="aware")

    assert result.result_rows == [(CREATED_AT,)]


def test_datetime64_rejects_float_timestamps(clickhouse_client: Client, events_table: str) -> None:
    # A sink must convert epoch seconds to datetimes itself: clickhouse-connect will not.
    with pytest.raises(AttributeError):
        clickhouse_client.insert(
            events_table, [["evt-1", CREATED_AT.timestamp()]], column_names=["event_id", "created_at"]
        )


def test_each_test_gets_its_own_empty_database(clickhouse_client: Client) -> None:
    database = clickhouse_client.query("SELECT currentDatabase()").result_rows[0][0]

    assert database.startswith("test_test_each_test_gets")
    assert clickhouse_client.query("SHOW TABLES").result_rows == []
