"""ClickHouse access for every process: the client factory and the schema migrations.

``connect(settings)`` opens embedded chdb or a server with the same clickhouse-connect code and
makes ``settings.clickhouse_database`` (created when missing) the client's database.
``migrate(client)`` applies ``schemas/clickhouse/NNN_name.sql`` in version order, each once,
recording version, name and checksum in ``schema_migrations``; running it again does nothing.
A migration file edited after it was applied is an error (write a new migration instead).
``cluster_ddl()`` derives the migrations' variant for a replicated cluster (docs/operations.md).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from deptpulse.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "schemas" / "clickhouse"
_FILE_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# The runner's own bookkeeping; created before anything else, so it is not a numbered migration.
SCHEMA_MIGRATIONS_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version
"""


class MigrationError(RuntimeError):
    """A migration set that cannot be applied as it is; the message names the file."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    @property
    def statements(self) -> list[str]:
        return split_statements(self.sql)


def connect(settings: Settings) -> Client:
    """A clickhouse-connect client (chdb or server) whose database is ``settings.clickhouse_database``."""
    database = settings.clickhouse_database
    if not _IDENTIFIER.match(database):
        raise ValueError(f"invalid ClickHouse database name {database!r}")
    client = clickhouse_connect.get_client(**settings.clickhouse_client_kwargs())
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.database = database
    return client


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations of ``directory`` in version order; other files are an error, not ignored."""
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNN_lowercase_name.sql")
        version = int(match.group(1))
        if version in migrations:
            raise MigrationError(f"{path}: version {version} is used twice")
        migrations[version] = Migration(version, match.group(2), path.read_text(encoding="utf-8"))
    return [migrations[version] for version in sorted(migrations)]


def split_statements(sql: str) -> list[str]:
    """Split a script on top-level ``;`` (not inside quotes or comments); comments are kept."""
    statements: list[str] = []
    current: list[str] = []
    i, length = 0, len(sql)
    while i < length:
        char = sql[i]
        if char in ("'", '"', "`"):
            end = i + 1
            while end < length and sql[end] != char:
                end += 2 if sql[end] == "\\" else 1
            current.append(sql[i : end + 1])
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = length if end == -1 else end
            current.append(sql[i:end])
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = length if end == -1 else end + 2
            current.append(sql[i:end])
            i = end
        elif char == ";":
            statements.append("".join(current))
            current = []
            i += 1
        else:
            current.append(char)
            i += 1
    statements.append("".join(current))
    return [statement.strip() for statement in statements if _has_code(statement)]


def _has_code(statement: str) -> bool:
    without_comments = re.sub(r"--[^\n]*|/\*.*?\*/", "", statement, flags=re.DOTALL)
    return bool(without_comments.strip())


# The cluster variant: what each migration's header says changes on a replicated cluster.
CLUSTER_MACRO = "{cluster}"
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_NAMED_OBJECT = re.compile(
    r"^(?P<head>\s*(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:TABLE|VIEW)(?:\s+IF\s+NOT\s+EXISTS)?|ALTER\s+TABLE)\s+)"
    r"(?P<name>\w+)",
    re.IGNORECASE,
)
_MERGE_TREE_ENGINE = re.compile(r"ENGINE\s*=\s*(?P<engine>\w*MergeTree)\b(?:\s*\((?P<arguments>[^)]*)\))?")


def cluster_variant(statement: str, cluster: str = CLUSTER_MACRO) -> str:
    """``statement`` for a replicated cluster: ``ON CLUSTER``, a ``Replicated*MergeTree`` engine
    keeping its arguments, and the replicated deduplication window; comments are dropped."""
    code = "\n".join(line.rstrip() for line in _COMMENTS.sub("", statement).strip().splitlines())
    named = _NAMED_OBJECT.match(code)
    if named is None:
        raise MigrationError(f"no cluster variant for: {code[:80]}")
    table = named.group("name")
    code = f"{named.group('head')}{table} ON CLUSTER '{cluster}'{code[named.end():]}"

    def replicated(engine: re.Match[str]) -> str:
        arguments = [f"'/clickhouse/tables/{{shard}}/{{database}}/{table}'", "'{replica}'"]
        if engine.group("arguments"):
            arguments.append(engine.group("arguments").strip())
        return f"ENGINE = Replicated{engine.group('engine')}({', '.join(arguments)})"

    code = _MERGE_TREE_ENGINE.sub(replicated, code)
    return code.replace("non_replicated_deduplication_window", "replicated_deduplication_window")


def cluster_ddl(migrations: list[Migration] | None = None, cluster: str = CLUSTER_MACRO) -> str:
    """Every migration (and ``schema_migrations``) as cluster DDL, for ``clickhouse-client --multiquery``."""
    migrations = load_migrations() if migrations is None else migrations
    parts = [
        "-- Generated from schemas/clickhouse/ by stream_processors.storage.cluster_ddl(); apply it once,",
        "-- then run `deptpulse db migrate` to record the versions (docs/operations.md).",
        cluster_variant(SCHEMA_MIGRATIONS_DDL, cluster) + ";",
    ]
    for migration in migrations:
        parts.append(f"\n-- {migration.version:03d}_{migration.name}.sql")
        parts.extend(cluster_variant(statement, cluster) + ";" for statement in migration.statements)
    return "\n".join(parts) + "\n"


def applied_migrations(client: Client) -> dict[int, str]:
    """version -> checksum of what ``schema_migrations`` records as applied."""
    client.command(SCHEMA_MIGRATIONS_DDL)
    rows = client.query(
        "SELECT version, argMax(checksum, applied_at) FROM schema_migrations GROUP BY version"
    ).result_rows
    return {int(version): str(checksum) for version, checksum in rows}


def migrate(client: Client, migrations: list[Migration] | None = None) -> list[Migration]:
    """Apply the pending migrations in order; return those applied (empty when up to date).

    Every statement is written to be re-runnable (IF NOT EXISTS), so a migration interrupted
    between two statements is simply applied again.
    """
    migrations = load_migrations() if migrations is None else migrations
    applied = applied_migrations(client)
    done: list[Migration] = []
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is not None:
            if recorded != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version:03d}_{migration.name}.sql changed after it was applied; "
                    "add a new migration instead of editing an applied one"
                )
            continue
        for statement in migration.statements:
            client.command(statement)
        client.insert(
            "schema_migrations",
            [[migration.version, migration.name, migration.checksum, datetime.now(UTC)]],
            column_names=["version", "name", "checksum", "applied_at"],
        )
        done.append(migration)
    return done
