"""The shell blocks of README.md and docs/*.md run as written.

A block runs when its fence says so — ```sh test — from the repository root, with the running
interpreter's bin directory (the project's .venv) first on PATH, in ``bash -euo pipefail``, with
every DEPTPULSE_ variable cleared and DEPTPULSE_HOME and TMPDIR in a fresh temporary directory
(blocks write their files under ``$(mktemp -d)``). It must exit 0. ``requires=cmd1,cmd2`` in the
fence skips the block, saying so, when a command is missing (promtool and amtool come from the
Debian packages ``make test`` installs).

Every other shell block is skipped BY DESIGN and reported as a skipped test with its reason,
found by the first pattern of SKIPPED_BY_DESIGN its lines match:

- ``make demo`` / ``make test`` / ``make bench``: the whole stack, the whole suite (which runs this
  test), or the full benchmarks;
- ``deptpulse stack up|down|status``, ``deptpulse worker``, ``deptpulse gateway``,
  ``deptpulse wecom-relay``: start, stop or
  need the long-running services;
- ``docker compose``: Docker does not run on the machines this project is developed on;
- ``curl`` to a local gateway, Prometheus or Alertmanager: needs it running;
- ``kcat``, ``kafka-topics.sh``: need a running Kafka (cluster);
- ``clickhouse-client``: needs a ClickHouse server;
- ``deptpulse report``, ``deptpulse db migrate``, ``deptpulse surveys``, ``deptpulse actions list``:
  read or change ClickHouse data; ``deptpulse actions add``: publishes to Kafka;
- ``deptpulse publish`` without ``--dry-run``, ``deptpulse simulate`` without ``--out``: publish
  to Kafka;
- ``deptpulse rules generate`` / ``deptpulse config reference`` without ``--check``: rewrite
  committed files;
- ``python -m benchmarks...``: minutes of load on a shared machine;
- ``deptpulse digest``: reads ClickHouse data and sends mail; ``systemctl``, ``journalctl``: a
  deployment's schedule on its own machine.

A shell block that is neither marked ``test`` nor matched by one of these fails the test, so no
block is skipped silently: mark it ``sh test`` if it is safe, or add its reason here. The
Python blocks are compiled (not run: they need Kafka).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from deptpulse.settings import REPO_ROOT

pytestmark = pytest.mark.unit

DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "console"})
_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<info>.*)$")

# (pattern matched against each line of a block, why such a block is not run here)
SKIPPED_BY_DESIGN: tuple[tuple[str, str], ...] = (
    (r"\bmake (demo|test|bench|soak)\b", "make: the whole stack, the whole suite or the full benchmarks"),
    (r"\bdeptpulse stack (up|down|status)\b", "starts, stops or asks the local services"),
    (r"\bdeptpulse (worker|gateway|wecom-relay)\b", "runs a long-lived service"),
    (r"\bdocker compose\b", "needs Docker, which does not run on the development machines"),
    (r"\bcurl\b.*127\.0\.0\.1:\d+", "talks to a running gateway, Prometheus or Alertmanager"),
    (r"\b(kcat|kafka-topics\.sh)\b", "needs a running Kafka"),
    (r"\bclickhouse-client\b", "needs a ClickHouse server"),
    (r"\bdeptpulse (report|db migrate|surveys|actions list)\b", "reads or changes ClickHouse data"),
    (r"\bdeptpulse actions add\b", "publishes to Kafka"),
    (r"\bdeptpulse publish\b(?!.*--dry-run)", "publishes to Kafka"),
    (r"\bdeptpulse simulate\b(?!.*--out)", "publishes to Kafka"),
    (r"\bdeptpulse (rules generate|config reference)\b(?!.*--check)", "rewrites committed files"),
    (r"\bpython -m benchmarks\b", "minutes of load on a shared machine"),
    (r"\bdeptpulse digest\b", "reads ClickHouse data and sends mail"),
    (r"\b(systemctl|journalctl)\b", "installs or asks the machine's services (a deployment's schedule)"),
)


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    flags: tuple[str, ...]
    code: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(REPO_ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        return "test" in self.flags

    @property
    def requires(self) -> list[str]:
        return [
            command
            for flag in self.flags
            if flag.startswith("requires=")
            for command in flag.removeprefix("requires=").split(",")
            if command
        ]


def code_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, with their fence info string split into words."""
    blocks: list[Block] = []
    opened: tuple[int, str, list[str]] | None = None
    lines: list[str] = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fence = _FENCE.match(text)
        if opened is None:
            if fence:
                opened, lines = (number, fence["indent"], fence["info"].split()), []
        elif fence and not fence["info"].strip():
            start, indent, info = opened
            code = "\n".join(line.removeprefix(indent) for line in lines) + "\n"
            blocks.append(Block(path, start, info[0] if info else "", tuple(info[1:]), code))
            opened = None
        else:
            lines.append(text)
    assert opened is None, f"{path}:{opened[0]}: code block never closed"
    return blocks


ALL_BLOCKS = [block for path in DOCUMENTS for block in code_blocks(path)]
SHELL_BLOCKS = [block for block in ALL_BLOCKS if block.language in SHELL_LANGUAGES]
PYTHON_BLOCKS = [block for block in ALL_BLOCKS if block.language == "python"]


def skip_reason(block: Block) -> str | None:
    for line in block.code.splitlines():
        for pattern, reason in SKIPPED_BY_DESIGN:
            if re.search(pattern, line):
                return reason
    return None


def environment(tmp_path: Path) -> dict[str, str]:
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("DEPTPULSE_") and key != "KAFKA_HOME"
    }
    binaries = [str(Path(sys.executable).parent), str(REPO_ROOT / ".venv" / "bin")]
    return clean | {
        "PATH": os.pathsep.join([*binaries, clean.get("PATH", "")]),
        "DEPTPULSE_HOME": str(tmp_path / "home"),
        "TMPDIR": str(tmp_path),
    }


@pytest.mark.parametrize("block", [b for b in SHELL_BLOCKS if b.runs], ids=lambda block: block.name)
def test_marked_block_runs(block: Block, tmp_path: Path) -> None:
    missing = [command for command in block.requires if shutil.which(command) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian packages `make test` installs)")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.code],
        cwd=REPO_ROOT,
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (
        f"{block.name} exited {result.returncode}\n--- block\n{block.code}"
        f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
    )


@pytest.mark.parametrize("block", [b for b in SHELL_BLOCKS if not b.runs], ids=lambda block: block.name)
def test_unmarked_block_is_skipped_by_design(block: Block) -> None:
    reason = skip_reason(block)
    assert reason is not None, (
        f"{block.name}: a shell block that is neither marked ```sh test nor skipped by design; mark it "
        f"`sh test` if it is safe to run here, or add its reason to SKIPPED_BY_DESIGN:\n{block.code}"
    )
    pytest.skip(f"by design: {reason}")


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda block: block.name)
def test_python_block_compiles(block: Block) -> None:
    compile(block.code, block.name, "exec")


def test_the_documents_have_blocks_that_run() -> None:
    """Guards the parser: if it found nothing, every test above would pass vacuously."""
    names = {block.path.name for block in SHELL_BLOCKS if block.runs}
    assert {"integrations.md", "operations.md"} <= names, names
