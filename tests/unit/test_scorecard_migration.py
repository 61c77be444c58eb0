"""The rollup projections the queries rely on are the ones the migrations create."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream_processors.scorecard.queries import ROLLUP_PROJECTIONS_DDL
from stream_processors.storage import split_statements

pytestmark = pytest.mark.unit
# The latest migration that (re)builds the projections: 005 created them, 008 rebuilt them with the
# first-response and resolution verdict columns.
MIGRATION = Path(__file__).resolve().parents[2] / "schemas" / "clickhouse" / "008_sla_verdicts.sql"


def _without_comments(statement: str) -> str:
    return "\n".join(line for line in statement.splitlines() if not line.startswith("--")).strip()


def test_the_rollup_migration_matches_the_projections_the_queries_use() -> None:
    statements = [_without_comments(s) for s in split_statements(MIGRATION.read_text(encoding="utf-8"))]

    statements = [s for s in statements if s]
    assert statements[-len(ROLLUP_PROJECTIONS_DDL) :] == [s.strip() for s in ROLLUP_PROJECTIONS_DDL]
