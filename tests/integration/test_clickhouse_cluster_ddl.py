"""The migrations' cluster variant (``cluster_ddl``): accepted by ClickHouse's own parser, and changed
only where each migration's header says.

Embedded chdb has no Keeper and no cluster, so the variant cannot be applied here; what can be
checked is: every statement parses (``formatQuery``), each carries ``ON CLUSTER '{cluster}'``,
every MergeTree engine became its ``Replicated`` form with a per-table Keeper path and the
original arguments, and with those three changes undone the statement is exactly the migration
applied to a single server (which tests/integration/test_migrations.py applies to chdb).
"""

from __future__ import annotations

import re

import pytest
from clickhouse_connect.driver.client import Client

from stream_processors.storage import (
    SCHEMA_MIGRATIONS_DDL,
    cluster_ddl,
    cluster_variant,
    load_migrations,
    split_statements,
)

pytestmark = pytest.mark.integration

STATEMENTS = [SCHEMA_MIGRATIONS_DDL] + [s for m in load_migrations() for s in m.statements]
ENGINES = {
    "schema_migrations": "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/schema_migrations', "
    "'{replica}', applied_at)",
    "raw_events": "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/raw_events', '{replica}')",
    "minute_buckets": "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/minute_buckets', "
    "'{replica}')",
    "request_facts": "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/request_facts', "
    "'{replica}', last_event_at)",
    "comments": "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/comments', '{replica}')",
}
REPLICATED = re.compile(r"ENGINE = Replicated(\w+)\('/clickhouse/tables/\{shard\}/\{database\}/\w+', '\{replica\}'(?:, )?")


def formatted(client: Client, statement: str) -> str:
    """The statement as ClickHouse's parser prints it back (one line); a syntax error raises."""
    result: str = client.query(
        "SELECT formatQuerySingleLine({statement:String})", parameters={"statement": statement}
    ).result_rows[0][0]
    return result


def single_server(cluster_text: str) -> str:
    """A formatted cluster statement with ON CLUSTER, the Replicated engine and its window undone."""
    text = cluster_text.replace(" ON CLUSTER `{cluster}`", "")
    text = REPLICATED.sub(lambda engine: f"ENGINE = {engine.group(1)}(", text).replace("()", "")
    return text.replace("replicated_deduplication_window", "non_replicated_deduplication_window")


@pytest.mark.parametrize("statement", STATEMENTS, ids=lambda s: " ".join(split_statements(s)[0].split()[:6])[:60])
def test_each_statement_has_a_cluster_variant_clickhouse_parses(clickhouse_client: Client, statement: str) -> None:
    variant = formatted(clickhouse_client, cluster_variant(statement))

    assert " ON CLUSTER `{cluster}`" in variant
    assert ("ENGINE = " in variant) == ("ENGINE = Replicated" in variant)
    assert single_server(variant) == formatted(clickhouse_client, statement)


def test_every_table_gets_its_replicated_engine(clickhouse_client: Client) -> None:
    engines = {}
    for statement in split_statements(cluster_ddl()):
        text = formatted(clickhouse_client, statement)
        if text.startswith("CREATE TABLE"):
            name = text.split()[5]
            engines[name] = text.split("ENGINE = ", 1)[1].split(" ORDER BY")[0].split(" PARTITION BY")[0]
    assert engines == ENGINES
    assert "replicated_deduplication_window = 10000" in cluster_ddl()
    assert "non_replicated_deduplication_window" not in cluster_ddl()
