"""deploy/clickhouse/roles.sql: parsed by ClickHouse, about the tables that exist, filtering the right rows.

Embedded chdb cannot run the script: it has no writable access storage, so CREATE ROLE, CREATE
USER and CREATE ROW POLICY are refused (the first test pins that, and fails when chdb changes).
What it can check, it does: every statement goes through ClickHouse's own parser
(``formatQuery``), every table named exists after the migrations, and every row policy's
condition, run as a WHERE on the migrated tables, keeps exactly its department's rows. Roles
being honoured by a server is not tested here (docs/security.md says so).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from deptpulse.settings import EXAMPLE_DIRECTORY, REPO_ROOT
from schemas.directory import load_directory
from schemas.observability.access import (
    ALL_ROWS_POLICY,
    COMMENTS_ROLE,
    DEPARTMENT_READER_ROLE,
    DEPARTMENT_TABLES,
    GRAFANA_ROLE,
    clickhouse_access_sql,
    department_role,
)
from stream_processors.storage import migrate, split_statements

pytestmark = pytest.mark.integration

ROLES_SQL = REPO_ROOT / "deploy" / "clickhouse" / "roles.sql"
DIRECTORY = load_directory(EXAMPLE_DIRECTORY)
DEPARTMENTS = [department.id for department in DIRECTORY.departments]
NOW = datetime.now(UTC)
# Per table, what makes the test rows distinct (so that no replacing merge collapses them) and
# keeps them alive (a TTL drops rows dated 1970, the default).
DISTINCT_COLUMNS: dict[str, Callable[[int], dict[str, Any]]] = {
    "minute_buckets": lambda index: {"sink_partition": index},
    "raw_events": lambda index: {"sink_offset": index, "occurred_at": NOW},
    "request_facts": lambda index: {"request_id": f"request-{index}", "last_event_at": NOW},
    "comments": lambda index: {"event_id": f"event-{index}", "occurred_at": NOW},
}
PAIRS = [("it", "hr"), ("hr", "it"), ("it", "it"), ("finance", "legal"), ("", "")]  # "": offset rows

CREATE_ROLE = re.compile(r"CREATE ROLE IF NOT EXISTS (?P<role>\S+)")
GRANT_SELECT = re.compile(r"GRANT SELECT ON (?P<database>\w+)\.(?P<table>\w+) TO (?P<grantee>\S+)")
GRANT_ROLE = re.compile(r"GRANT (?P<role>\S+) TO (?P<grantee>\S+)")
ROW_POLICY = re.compile(
    r"CREATE ROW POLICY OR REPLACE (?P<name>\S+) ON (?P<tables>.+?) AS PERMISSIVE FOR SELECT "
    r"USING (?P<condition>.+) TO (?P<to>.+)"
)


def formatted_statements(client: Client, sql: str) -> list[str]:
    """Each statement as ClickHouse's parser prints it back (one line); a syntax error raises."""
    return [
        client.query(
            "SELECT formatQuery({statement:String})", parameters={"statement": statement}
        ).result_rows[0][0]
        for statement in split_statements(sql)
    ]


def parsed(client: Client, sql: str) -> dict[str, list[dict[str, str]]]:
    """The script's statements by kind, each as its named parts; anything else fails the test."""
    kinds: dict[str, list[dict[str, str]]] = defaultdict(list)
    for statement in formatted_statements(client, sql):
        for kind, pattern in (
            ("role", CREATE_ROLE),
            ("grant", GRANT_SELECT),
            ("role grant", GRANT_ROLE),
            ("policy", ROW_POLICY),
        ):
            match = pattern.fullmatch(statement)
            if match:
                kinds[kind].append({name: value.strip("`") for name, value in match.groupdict().items()})
                break
        else:
            pytest.fail(f"unexpected statement in roles.sql: {statement}")
    return kinds


@pytest.fixture
def script(clickhouse_client: Client) -> dict[str, list[dict[str, str]]]:
    return parsed(clickhouse_client, ROLES_SQL.read_text(encoding="utf-8"))


def test_chdb_cannot_apply_access_control(clickhouse_client: Client) -> None:
    """Why the roles are parsed and not applied here: chdb has no writable access storage."""
    with pytest.raises(DatabaseError, match=r"ACCESS_DENIED|ACCESS_STORAGE_FOR_INSERTION_NOT_FOUND"):
        clickhouse_client.command("CREATE ROLE IF NOT EXISTS deptpulse_probe")


def test_roles_sql_is_generated_from_the_example_directory() -> None:
    source = str(EXAMPLE_DIRECTORY.relative_to(REPO_ROOT))

    assert ROLES_SQL.read_text(encoding="utf-8") == clickhouse_access_sql(DEPARTMENTS, source=source), (
        f"regenerate: python -m schemas.observability.access {source} > {ROLES_SQL.relative_to(REPO_ROOT)}"
    )


def test_grants_name_existing_tables_and_grafana_gets_all_but_comments(
    clickhouse_client: Client, script: dict[str, list[dict[str, str]]]
) -> None:
    migrate(clickhouse_client)
    existing = {name for (name,) in clickhouse_client.query("SHOW TABLES").result_rows}
    granted = defaultdict(set)
    for grant in script["grant"]:
        assert grant["database"] == "deptpulse"
        granted[grant["grantee"]].add(grant["table"])
    policed = {
        table.split(".", 1)[1] for policy in script["policy"] for table in policy["tables"].split(", ")
    }

    assert set().union(*granted.values()) | policed <= existing
    # A table added by a later migration fails here until someone decides who may read it.
    assert granted[GRAFANA_ROLE] == existing - {"comments", "schema_migrations"}
    assert {grantee for grantee, tables in granted.items() if "comments" in tables} == {COMMENTS_ROLE}
    assert granted[DEPARTMENT_READER_ROLE] == {"minute_buckets", "minute_aggregates", "request_facts"}
    # Every table with department columns has the policies: a grant added later shows no other rows.
    with_department_columns = {
        table
        for (table,) in clickhouse_client.query(
            "SELECT table FROM system.columns WHERE database = currentDatabase() AND name = 'customer_department'"
            " AND table IN (SELECT name FROM system.tables WHERE database = currentDatabase() AND engine != 'View')"
        ).result_rows
    }
    assert policed == with_department_columns == set(DEPARTMENT_TABLES)


def test_each_department_role_holds_the_reader_role_and_its_own_policy(
    script: dict[str, list[dict[str, str]]],
) -> None:
    roles = {role["role"] for role in script["role"]}
    role_grants = {(grant["role"], grant["grantee"]) for grant in script["role grant"]}
    policies = {policy["name"]: policy for policy in script["policy"]}
    all_tables = ", ".join(f"deptpulse.{table}" for table in DEPARTMENT_TABLES)

    assert roles == {GRAFANA_ROLE, COMMENTS_ROLE, DEPARTMENT_READER_ROLE} | {
        department_role(department) for department in DEPARTMENTS
    }
    assert role_grants == {
        (DEPARTMENT_READER_ROLE, department_role(department)) for department in DEPARTMENTS
    }
    assert policies.pop(ALL_ROWS_POLICY) == {
        "name": ALL_ROWS_POLICY,
        "tables": all_tables,
        "condition": "1",
        "to": f"ALL EXCEPT {DEPARTMENT_READER_ROLE}",
    }
    assert {name: (policy["tables"], policy["to"]) for name, policy in policies.items()} == {
        department_role(department): (all_tables, department_role(department)) for department in DEPARTMENTS
    }


@pytest.mark.parametrize("table", DEPARTMENT_TABLES)
def test_a_department_policy_keeps_exactly_the_rows_its_department_serves_or_is_served_by(
    clickhouse_client: Client, script: dict[str, list[dict[str, str]]], table: str
) -> None:
    migrate(clickhouse_client)
    rows_in = [
        {"provider_department": provider, "customer_department": customer} | DISTINCT_COLUMNS[table](index)
        for index, (provider, customer) in enumerate(PAIRS)
    ]
    clickhouse_client.insert(table, [list(row.values()) for row in rows_in], column_names=list(rows_in[0]))
    policies = {policy["name"]: policy["condition"] for policy in script["policy"]}

    def rows(condition: str) -> set[tuple[str, str]]:
        query = f"SELECT provider_department, customer_department FROM {table} WHERE {condition}"
        return {(str(provider), str(customer)) for provider, customer in clickhouse_client.query(query).result_rows}

    assert rows(policies[department_role("it")]) == {("it", "hr"), ("hr", "it"), ("it", "it")}
    assert rows(policies[department_role("finance")]) == {("finance", "legal")}
    assert rows(policies[department_role("sales")]) == set()
    assert rows(policies[ALL_ROWS_POLICY]) == set(PAIRS)


def test_the_generator_quotes_hyphenated_ids_and_refuses_what_is_not_a_department_id(
    clickhouse_client: Client,
) -> None:
    sql = clickhouse_access_sql(["field-ops"], database="analytics")
    script = parsed(clickhouse_client, sql)

    assert "CREATE ROLE IF NOT EXISTS `deptpulse_department_field-ops`;" in sql
    assert {policy["to"] for policy in script["policy"]} == {
        f"ALL EXCEPT {DEPARTMENT_READER_ROLE}",
        "deptpulse_department_field-ops",
    }
    assert {grant["database"] for grant in script["grant"]} == {"analytics"}
    for bad in ["it' OR 1 = 1 OR '", "IT", "", "x" * 65]:
        with pytest.raises(ValueError):
            clickhouse_access_sql([bad])
    with pytest.raises(ValueError, match="invalid ClickHouse database name"):
        clickhouse_access_sql(DEPARTMENTS, database="deptpulse; DROP DATABASE deptpulse")
