"""`deptpulse db migrate`'s runner against real (embedded) ClickHouse."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from clickhouse_connect.driver.client import Client

from stream_processors.storage import load_migrations, migrate

pytestmark = pytest.mark.integration

MINUTE = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def test_migrations_apply_once_and_a_second_run_changes_nothing(clickhouse_client: Client) -> None:
    first = migrate(clickhouse_client)
    tables = set(clickhouse_client.query("SELECT name FROM system.tables WHERE database = currentDatabase()").result_rows)
    second = migrate(clickhouse_client)

    assert [m.version for m in first] == [m.version for m in load_migrations()]
    assert second == []
    names = {name for (name,) in tables}
    assert {"schema_migrations", "raw_events", "minute_buckets", "minute_aggregates", "sink_offsets",
            "request_facts", "comments"} <= names
    recorded = clickhouse_client.query("SELECT version, name FROM schema_migrations FINAL ORDER BY version").result_rows
    assert recorded == [(m.version, m.name) for m in load_migrations()]


def test_a_half_applied_migration_is_completed_on_the_next_run(clickhouse_client: Client) -> None:
    # a crash after the first statement of 002 and before it was recorded
    migrations = load_migrations()
    migrate(clickhouse_client, migrations[:1])
    clickhouse_client.command(migrations[1].statements[0])

    applied = migrate(clickhouse_client)

    assert [m.version for m in applied] == [m.version for m in migrations[1:]]
    assert clickhouse_client.query("SELECT count() FROM minute_aggregates").result_rows == [(0,)]


def test_the_server_merges_what_the_views_promise(clickhouse_client: Client) -> None:
    migrate(clickhouse_client)
    columns = ["row_kind", "provider_department", "customer_department", "service_category", "bucket_start",
               "sink_topic", "sink_partition", "applied_offset", "requests_opened", "first_response_hist"]
    for opened, hist, offset in ((1, {3: 1}, 5), (2, {3: 1, 7: 2}, 9), (-1, {7: -2}, 7)):
        clickhouse_client.insert(
            "minute_buckets",
            [["bucket", "it", "hr", "", MINUTE, "", -1, 0, opened, hist],
             ["offset", "", "", "", EPOCH, "events", 0, offset, 0, {}]],
            column_names=columns,
        )

    merged = clickhouse_client.query(
        "SELECT requests_opened, first_response_hist FROM minute_aggregates").result_rows
    offsets = clickhouse_client.query("SELECT sink_partition, applied_offset FROM sink_offsets").result_rows

    assert merged == [(2, {3: 2, 7: 0})]  # sumMap on a Map keeps a key that summed to zero; readers drop it
    assert offsets == [(0, 9)]
