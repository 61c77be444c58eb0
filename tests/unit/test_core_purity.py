"""The core stays pure: no module in stream_processors/core imports an I/O framework or reads the clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

CORE = Path(__file__).parents[2] / "stream_processors" / "core"
BANNED = {"faust", "kafka", "aiokafka", "clickhouse_connect", "prometheus_client"}
CLOCK_READS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}


def modules() -> list[Path]:
    found = sorted(CORE.glob("*.py"))
    assert found, f"no modules under {CORE}"
    return found


def imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", modules(), ids=lambda path: path.name)
def test_no_io_framework_imports(path: Path) -> None:
    assert not imported_roots(ast.parse(path.read_text(encoding="utf-8"))) & BANNED


@pytest.mark.parametrize("path", modules(), ids=lambda path: path.name)
def test_no_clock_reads(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert not calls & CLOCK_READS
    assert "time" not in imported_roots(tree)


def test_the_check_sees_a_banned_import() -> None:
    assert imported_roots(ast.parse("import kafka.errors\nfrom faust import App")) & BANNED == {"faust", "kafka"}
