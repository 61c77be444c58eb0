"""Migration files: naming, order, statement splitting; the runner against a recording client."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from stream_processors.storage import (
    MIGRATIONS_DIR,
    Migration,
    MigrationError,
    load_migrations,
    migrate,
    split_statements,
)

pytestmark = pytest.mark.unit
RERUNNABLE = (
    "IF NOT EXISTS", "IF EXISTS", "CREATE OR REPLACE", "MODIFY SETTING", "MATERIALIZE PROJECTION", "MATERIALIZE INDEX"
)


def test_the_shipped_migrations_are_numbered_without_gaps_and_parse() -> None:
    migrations = load_migrations()

    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert [m.name for m in migrations][:4] == ["raw_events", "minute_buckets", "request_facts", "comments"]
    for migration in migrations:
        assert migration.statements, migration.name
        for statement in migration.statements:
            # Re-runnable: guarded creations, or ALTERs whose second run changes nothing.
            assert any(marker in statement for marker in RERUNNABLE), (
                f"{migration.name}: every statement must be re-runnable"
            )


def test_minute_buckets_has_no_partition_key_so_one_insert_is_one_part() -> None:
    [buckets] = [m for m in load_migrations() if m.name == "minute_buckets"]
    table = buckets.statements[0]

    assert "CREATE TABLE IF NOT EXISTS minute_buckets" in table
    assert "PARTITION BY" not in _code(table)


def test_split_statements_ignores_semicolons_in_strings_and_comments() -> None:
    sql = """
    -- a comment; with a semicolon
    CREATE TABLE a (x String DEFAULT 'a;b') ENGINE = Memory; /* block ; comment */
    CREATE VIEW b AS SELECT ';' AS s, "q;" FROM a;
    -- trailing comment only
    """

    statements = split_statements(sql)

    assert len(statements) == 2
    assert statements[0].endswith("ENGINE = Memory")
    assert "SELECT ';' AS s" in statements[1]


def test_load_migrations_rejects_misnamed_and_duplicate_files(tmp_path: Path) -> None:
    (tmp_path / "001_a.sql").write_text("SELECT 1")
    (tmp_path / "002_b.sql").write_text("SELECT 2")
    assert [m.name for m in load_migrations(tmp_path)] == ["a", "b"]

    (tmp_path / "2_c.sql").write_text("SELECT 3")
    with pytest.raises(MigrationError, match="NNN_lowercase_name"):
        load_migrations(tmp_path)
    (tmp_path / "2_c.sql").unlink()
    (tmp_path / "002_d.sql").write_text("SELECT 4")
    with pytest.raises(MigrationError, match="used twice"):
        load_migrations(tmp_path)


class RecordingClient:
    """Enough of clickhouse-connect's Client for the runner: remembers commands and inserts."""

    def __init__(self, applied: dict[int, str] | None = None) -> None:
        self.commands: list[str] = []
        self.applied = applied or {}

    def command(self, sql: str) -> None:
        self.commands.append(" ".join(sql.split()))

    def query(self, sql: str) -> Any:
        return SimpleNamespace(result_rows=list(self.applied.items()))

    def insert(self, table: str, rows: list[list[Any]], column_names: list[str]) -> None:
        assert table == "schema_migrations"
        for version, _name, checksum, _at in rows:
            self.applied[version] = checksum


def test_migrate_applies_pending_migrations_in_order_once() -> None:
    migrations = [
        Migration(1, "a", "CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = Memory;"),
        Migration(2, "b", "CREATE TABLE IF NOT EXISTS b (x UInt8) ENGINE = Memory"),
    ]
    client = RecordingClient()

    assert [m.version for m in migrate(client, migrations)] == [1, 2]  # type: ignore[arg-type]
    assert [c for c in client.commands if "schema_migrations" not in c] == [
        "CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = Memory",
        "CREATE TABLE IF NOT EXISTS b (x UInt8) ENGINE = Memory",
    ]
    assert migrate(client, migrations) == []  # type: ignore[arg-type]


def test_migrate_refuses_a_migration_edited_after_it_was_applied() -> None:
    client = RecordingClient(applied={1: "an older checksum"})

    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(client, [Migration(1, "a", "SELECT 1")])  # type: ignore[arg-type]


def _code(statement: str) -> str:
    return "\n".join(line.split("--")[0] for line in statement.splitlines())


def test_migrations_dir_is_the_packaged_one() -> None:
    assert MIGRATIONS_DIR.name == "clickhouse" and MIGRATIONS_DIR.parent.name == "schemas"
