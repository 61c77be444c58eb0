"""What every fault test shares, built on tests/integration/test_worker_e2e.py (imported, not copied).

The e2e module gives the generated mix, the independent expected computation, the worker
subprocess (:class:`Run`), publishing, reading dead letters and ClickHouse. Here: a worker with
fault injection (``sitecustomize.py`` beside this file), bounded polls with clear failures, RSS
sampling, offsets of the published messages, and the end-of-test invariants:

1. ClickHouse totals equal the independent computation (``expected_totals``);
2. the dead-letter topic holds every injected bad message with its reason, and nothing else
   (deduplicated by source partition/offset: dead letters are at-least-once).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from deptpulse.settings import Settings
from stream_processors.core import AGGREGATE_COLUMNS
from tests.integration.conftest import free_ports
from tests.integration.test_worker_e2e import (
    PAIR_QUERY,
    PARTITIONS,
    Message,
    Mix,
    Run,
    committed,
    dead_letters,
    expected_totals,
    generate,
    partition_of,
    publish,
)

__all__ = [
    "PARTITIONS",
    "FaultyRun",
    "Message",
    "Mix",
    "assert_dead_letters_exact",
    "assert_pair_totals",
    "assert_totals",
    "committed",
    "dead_letters",
    "expected_totals",
    "generate",
    "offsets_of",
    "partition_of",
    "publish",
    "wait_until",
]

HERE = Path(__file__).resolve().parent
COLUMNS = [c for c in AGGREGATE_COLUMNS if not c.endswith("_hist")]


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2,
               on_timeout: Callable[[], str] = lambda: "") -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}. {on_timeout()}")
        time.sleep(interval)


@dataclass
class FaultyRun(Run):
    """A ``deptpulse worker`` subprocess whose ClickHouse calls obey files in ``faults``."""

    faults: Path = field(default_factory=lambda: Path("/nonexistent"))

    def env(self) -> dict[str, str]:
        path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
        return super().env() | {"PYTHONPATH": path, "RELIABILITY_FAULTS": str(self.faults)}

    def fault(self, name: str, content: str = "") -> None:
        (self.faults / name).write_text(content)

    def clear_faults(self) -> None:
        for path in self.faults.iterdir():
            path.unlink()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        wanted = [line for line in text if "Timer" not in line]
        return "worker log:\n" + "\n".join(wanted[-lines:])

    def rss_mb(self) -> float:
        """Resident set size of the worker process (VmRSS in /proc/<pid>/status), in MiB."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def progress(self) -> int:
        """Messages whose effects are committed (the worker's Kafka commits, for lag tools)."""
        return sum(committed(self.settings, self.group).values())

    def wait_progress(self, goal: int, timeout: float, what: str = "") -> float:
        """Wait until at least ``goal`` messages are committed; return the seconds it took."""
        started = time.monotonic()

        def reached() -> bool:
            assert self.alive(), f"worker died (exit {self.process and self.process.poll()}). {self.log_tail()}"
            return self.progress() >= goal

        wait_until(reached, timeout, what or f"{goal} messages committed (now {self.progress()})",
                   on_timeout=self.log_tail)
        return time.monotonic() - started

    def wait_done(self, ends: dict[int, int], timeout: float) -> float:
        """Wait until every partition is committed to its end offset; return the seconds it took."""
        started = time.monotonic()

        def done() -> bool:
            assert self.alive(), f"worker died. {self.log_tail()}"
            got = committed(self.settings, self.group)
            return all(got.get(p, 0) >= end for p, end in ends.items())

        wait_until(done, timeout, f"all of {ends} committed (got {committed(self.settings, self.group)})",
                   on_timeout=self.log_tail)
        return time.monotonic() - started

    def wait_in_insert(self, timeout: float = 60) -> None:
        wait_until(lambda: (self.faults / "in_insert").exists(), timeout, "the worker to enter the paused insert",
                   on_timeout=self.log_tail)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)
        self.clear_faults()

    def pair_totals(self) -> dict[tuple[str, str], dict[str, int]]:
        return {(r[0], r[1]): dict(zip(COLUMNS, r[2:], strict=True)) for r in self.query(PAIR_QUERY)}


@pytest.fixture
def make_run(reliability_kafka: Settings, tmp_path: Path) -> Iterator[Callable[..., FaultyRun]]:
    """A factory of fault-injectable workers; runs sharing ``like`` share its topic and group."""
    runs: list[FaultyRun] = []

    def make(name: str, like: FaultyRun | None = None, settings: Settings | None = None) -> FaultyRun:
        home = tmp_path / name
        home.mkdir()
        (home / "faults").mkdir()
        if like is not None:
            base, group = like.settings, like.group
        else:
            topic = f"rel.{name}.{uuid.uuid4().hex[:8]}"
            base = (settings or reliability_kafka).model_copy(
                update={"events_topic": topic, "dead_letter_topic": f"{topic}.dlq", "events_partitions": PARTITIONS})
            group = f"rel-{name}-{uuid.uuid4().hex[:6]}"
        run = FaultyRun(base.model_copy(update={"worker_port": free_ports(1)[0]}), group, home,
                        home / "worker.log", faults=home / "faults")
        runs.append(run)
        return run

    yield make
    for run in runs:
        if run.alive():
            assert run.process is not None
            run.process.kill()
            run.process.wait()


def offsets_of(mix: Mix, already: dict[int, int] | None = None) -> list[tuple[int, int]]:
    """(partition, offset) of each message as :func:`publish` writes them (in order, one in flight)."""
    next_offset = dict(already or {})
    placed = []
    for message in mix.messages:
        offset = next_offset.get(message.partition, 0)
        next_offset[message.partition] = offset + 1
        placed.append((message.partition, offset))
    return placed


def assert_totals(got: dict[tuple[str, str], dict[str, int]], mix: Mix, label: str = "") -> None:
    """Every count and sum of the independent computation, per (provider, customer) pair."""
    assert_pair_totals(got, expected_totals(mix), label)


def assert_pair_totals(got: dict[tuple[str, str], dict[str, int]], expected: dict[tuple[str, str], dict[str, int]],
                       label: str = "") -> None:
    assert set(got) == set(expected), f"{label} pairs differ: got {sorted(got)}, expected {sorted(expected)}"
    wrong = {
        (pair, column): (got[pair][column], value)
        for pair, counts in expected.items()
        for column, value in counts.items()
        if got[pair][column] != value
    }
    assert not wrong, f"{label} (got, expected) per (pair, column): {wrong}"


def assert_dead_letters_exact(settings: Settings, expected: dict[tuple[int, int], str]) -> int:
    """The dead-letter topic holds exactly ``expected`` ((partition, offset) -> reason), each with its
    reason, duplicates allowed (at-least-once); returns how many records were duplicates."""
    letters = dead_letters(settings, timeout=120)
    got: dict[tuple[int, int], str] = {}
    for headers, _ in letters:
        assert headers["source.topic"] == settings.events_topic, headers
        where = (int(headers["source.partition"]), int(headers["source.offset"]))
        assert got.setdefault(where, headers["reason"]) == headers["reason"], f"two reasons for {where}"
    missing = {k: v for k, v in expected.items() if k not in got}
    extra = {k: v for k, v in got.items() if k not in expected}
    wrong = {k: (got[k], v) for k, v in expected.items() if k in got and got[k] != v}
    assert not (missing or extra or wrong), (
        f"dead letters: {len(missing)} missing {dict(list(missing.items())[:10])}; {len(extra)} unexpected "
        f"{dict(list(extra.items())[:10])}; {len(wrong)} with the wrong reason (got, expected) "
        f"{dict(list(wrong.items())[:10])}"
    )
    return len(letters) - len(got)


def expected_dead_letters(mix: Mix, already: dict[int, int] | None = None) -> dict[tuple[int, int], str]:
    return {
        where: message.bad_reason
        for where, message in zip(offsets_of(mix, already), mix.messages, strict=True)
        if message.bad_reason
    }
