"""ClickHouse access control generated from the department directory: roles, grants, row policies.

Pure: :func:`clickhouse_access_sql` returns the script; ``deploy/clickhouse/roles.sql`` is its
output for the example directory (a test fails when they differ). For your own directory::

    python -m schemas.observability.access deploy/directory/your-org.yaml > roles.sql

How the roles fit together (the script's header says the same to whoever applies it):

* ``deptpulse_grafana_ro``: SELECT on the aggregates, request facts and raw events, never on
  ``comments`` (free text, even redacted, is for the people granted ``deptpulse_comments_reader``).
* ``deptpulse_department_<id>``, one per department, holds ``deptpulse_department_reader``
  (SELECT on the aggregates and request facts) and a row policy on every table with department
  columns: ``provider_department = '<id>' OR customer_department = '<id>'``.
* ``deptpulse_all_rows``: once a table has any row policy, ClickHouse hides every row from users
  no policy lets in, the worker included. This policy lets everyone in EXCEPT the holders of
  ``deptpulse_department_reader``, who see only what their department's policy allows.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence

from pydantic import TypeAdapter

from schemas.ids import DepartmentId

GRAFANA_ROLE = "deptpulse_grafana_ro"
COMMENTS_ROLE = "deptpulse_comments_reader"
DEPARTMENT_READER_ROLE = "deptpulse_department_reader"
ALL_ROWS_POLICY = "deptpulse_all_rows"
COMMENTS_TABLE = "comments"
# Every table with provider_department and customer_department columns gets the row policies,
# also those a department role is not granted: a later grant then cannot show other rows.
DEPARTMENT_TABLES = ("minute_buckets", "request_facts", "raw_events", COMMENTS_TABLE)
# minute_aggregates and sink_offsets are views over minute_buckets (SQL SECURITY INVOKER, the default
# for plain views): reading them needs SELECT on both, and minute_buckets' row policies apply.
GRAFANA_OBJECTS = ("minute_buckets", "minute_aggregates", "sink_offsets", "request_facts", "raw_events")
DEPARTMENT_OBJECTS = ("minute_buckets", "minute_aggregates", "request_facts")

_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DEPARTMENT_ID: TypeAdapter[str] = TypeAdapter(DepartmentId)


def department_role(department_id: str) -> str:
    """The role (and row-policy name) of one department."""
    return f"deptpulse_department_{department_id}"


def department_condition(department_id: str) -> str:
    """The rows a department's role sees: those where it is the provider or the customer."""
    return f"provider_department = '{department_id}' OR customer_department = '{department_id}'"


def clickhouse_access_sql(
    department_ids: Sequence[str], *, database: str = "deptpulse", source: str = ""
) -> str:
    """The access-control script for ``database``, one role and row policy per department id.

    Raises ValueError for an id that is not a directory department id (the ids go into SQL).
    """
    for department_id in department_ids:
        _DEPARTMENT_ID.validate_python(department_id)  # ValidationError is a ValueError
    if not _PLAIN_IDENTIFIER.fullmatch(database):
        raise ValueError(f"invalid ClickHouse database name {database!r}")
    department_tables = ", ".join(f"{database}.{table}" for table in DEPARTMENT_TABLES)
    lines = [
        *_header(source, database),
        "",
        "-- Roles shared by every department.",
        f"CREATE ROLE IF NOT EXISTS {GRAFANA_ROLE};",
        f"CREATE ROLE IF NOT EXISTS {COMMENTS_ROLE};",
        f"CREATE ROLE IF NOT EXISTS {DEPARTMENT_READER_ROLE};",
        *(f"GRANT SELECT ON {database}.{table} TO {GRAFANA_ROLE};" for table in GRAFANA_OBJECTS),
        f"GRANT SELECT ON {database}.{COMMENTS_TABLE} TO {COMMENTS_ROLE};",
        *(f"GRANT SELECT ON {database}.{table} TO {DEPARTMENT_READER_ROLE};" for table in DEPARTMENT_OBJECTS),
        "",
        "-- Everyone but the department readers sees every row (without it, nobody else would see any).",
        f"CREATE ROW POLICY OR REPLACE {ALL_ROWS_POLICY} ON {department_tables}",
        f"    AS PERMISSIVE FOR SELECT USING 1 TO ALL EXCEPT {DEPARTMENT_READER_ROLE};",
    ]
    for department_id in department_ids:
        role = _quoted(department_role(department_id))
        lines += [
            "",
            f"-- Department {department_id}.",
            f"CREATE ROLE IF NOT EXISTS {role};",
            f"GRANT {DEPARTMENT_READER_ROLE} TO {role};",
            f"CREATE ROW POLICY OR REPLACE {role} ON {department_tables}",
            f"    AS PERMISSIVE FOR SELECT USING {department_condition(department_id)} TO {role};",
        ]
    return "\n".join(lines) + "\n"


def _quoted(identifier: str) -> str:
    """Backquoted unless plain: department ids may hold '-'."""
    return identifier if _PLAIN_IDENTIFIER.fullmatch(identifier) else f"`{identifier}`"


def _header(source: str, database: str) -> list[str]:
    origin = f" from {source}" if source else ""
    return [
        f"-- deptpulse: ClickHouse access control for the {database} database. Generated by",
        f"-- schemas/observability/access.py{origin}; do not edit by hand, regenerate:",
        "--     python -m schemas.observability.access deploy/directory/<org>.yaml > deploy/clickhouse/roles.sql",
        "--",
        "-- Apply it as a user with access management (a ClickHouse server; embedded chdb has no",
        "-- writable access storage), after the migrations, and again whenever departments change:",
        "--     clickhouse-client --user admin --ask-password --multiquery < deploy/clickhouse/roles.sql",
        "-- Re-running it is safe: roles IF NOT EXISTS, grants are idempotent, row policies OR REPLACE.",
        "-- A department removed from the directory keeps its role and policy until you drop them:",
        "--     DROP ROW POLICY IF EXISTS deptpulse_department_<id> ON <the tables below>; DROP ROLE deptpulse_department_<id>;",
        "-- Cluster: add ON CLUSTER '{cluster}' to every statement, or use replicated access storage.",
        "--",
        f"-- {GRAFANA_ROLE}: SELECT on {', '.join(GRAFANA_OBJECTS)}.",
        f"--     Not {COMMENTS_TABLE}: its free text (redacted by the worker) needs {COMMENTS_ROLE} as well.",
        f"-- {COMMENTS_ROLE}: SELECT on {COMMENTS_TABLE}; granted on its own, to the few who read comments.",
        f"-- {DEPARTMENT_READER_ROLE}: SELECT on {', '.join(DEPARTMENT_OBJECTS)}; never granted to a user",
        "--     directly, only through deptpulse_department_<id>, whose row policy shows the rows where <id>",
        "--     is the provider or the customer department, on every table with department columns.",
        "--",
        "-- Users are yours to create (passwords, LDAP or certificates stay out of this file), e.g.:",
        "--     CREATE USER grafana IDENTIFIED WITH sha256_password BY '...' DEFAULT ROLE ALL;",
        f"--     GRANT {GRAFANA_ROLE} TO grafana;",
        "--     CREATE USER ada_park IDENTIFIED WITH sha256_password BY '...' DEFAULT ROLE ALL;",
        "--     GRANT deptpulse_department_it TO ada_park;   -- and, to read IT's comments: GRANT "
        f"{COMMENTS_ROLE} TO ada_park;",
        "-- Give a department head nothing but department roles (and the comments role): any holder of",
        f"-- {DEPARTMENT_READER_ROLE} sees only rows of its departments' policies, in every table, and a",
        "-- head of two departments holds both roles and sees both. Everyone else (the worker, Grafana,",
        f"-- admins) sees every row through {ALL_ROWS_POLICY}: once a table has a row policy, ClickHouse",
        "-- shows a user only the rows one of its policies allows.",
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """Print the script for the departments of a directory file."""
    from schemas.directory import load_directory

    parser = argparse.ArgumentParser(prog="python -m schemas.observability.access", description=main.__doc__)
    parser.add_argument("directory", help="the department directory YAML")
    parser.add_argument("--database", default="deptpulse")
    arguments = parser.parse_args(argv)
    directory = load_directory(arguments.directory)
    ids = [department.id for department in directory.departments]
    print(clickhouse_access_sql(ids, database=arguments.database, source=arguments.directory), end="")


if __name__ == "__main__":
    main()
