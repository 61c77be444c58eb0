"""Run every benchmark and write docs/benchmarks.md: the machine, the versions, and each figure next
to the baseline measured in the same run, with the command that reproduces it.

    python -m benchmarks.run_all                      # what `make bench` runs: the benchmarks' full sizes
    python -m benchmarks.run_all --quick              # tiny sizes: checks the runner; figures mean nothing
    python -m benchmarks.run_all --only queries --out /tmp/benchmarks.md

Every ``benchmarks/bench_<name>.py`` present runs in its own process, one after the other (so they
do not compete for the cores), as ``python -m benchmarks.bench_<name> [sizes] --json FILE``. The
file holds ``{"benchmark", "figures": [...]}`` (see :func:`benchmarks.figure`); the gateway
benchmark's own report shape (``runs``, ``targets``) is read too. A benchmark this runner expects
but that is missing or that fails is named in the output and
in the document, never left out silently. Benchmarks that start Kafka start their own throwaway
broker unless ``--bootstrap`` names one.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import figure
from deptpulse.settings import REPO_ROOT
from deptpulse.stack import KAFKA_POM, _kafka_version

BENCHMARKS_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = REPO_ROOT / "docs" / "benchmarks.md"
# Hand-written pages a benchmark's section links to (they explain, the tables here measure).
NOTES = {
    "worker": "Where the worker's time and memory go, profiled before and after issue 15: "
    "[worker-performance.md](worker-performance.md).",
}
PACKAGES = ("kafka-python", "faust-streaming", "chdb", "clickhouse-connect", "fastapi", "uvicorn", "pydantic")


@dataclass(frozen=True)
class Spec:
    """How the runner calls one benchmark: the arguments of a full and of a smoke run."""

    full: str = ""
    quick: str | None = None  # None: no tiny size known, skipped by --quick
    takes_bootstrap: bool = False


# The benchmarks this runner knows; any other bench_*.py found runs with its defaults.
EXPECTED: dict[str, Spec] = {
    "publisher": Spec(quick="--events 2000 --runs 1", takes_bootstrap=True),
    "queries": Spec(quick="--events 20000 --runs 2"),
    "gateway": Spec(
        quick="--duration 1 --warmup 0.5 --max-requests 300 --rate 50 --connections 4 --batch-connections 2",
        takes_bootstrap=True,
    ),
    "worker": Spec(quick="--quick", takes_bootstrap=True),
}


@dataclass
class Outcome:
    name: str
    command: str
    status: str  # "ok", "missing", "skipped", "failed (exit N)", "timed out"
    seconds: float = 0.0
    figures: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""


# --- the machine and the versions ------------------------------------------------------------------


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes (Linux); empty elsewhere."""
    values: dict[str, int] = {}
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return values
    for line in lines:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return values


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> list[tuple[str, str]]:
    found = [("python", platform.python_version())]
    for package in PACKAGES:
        try:
            found.append((package, importlib.metadata.version(package)))
        except importlib.metadata.PackageNotFoundError:
            found.append((package, "not installed"))
    found.append(("Apache Kafka (broker)", f"{_kafka_version()} ({KAFKA_POM.relative_to(REPO_ROOT)})"))
    return found


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


# --- running ---------------------------------------------------------------------------------------


def discover() -> list[str]:
    """The benchmarks to report: every expected one, then any other bench_*.py present."""
    present = sorted(path.stem.removeprefix("bench_") for path in BENCHMARKS_DIR.glob("bench_*.py"))
    return [*EXPECTED, *(name for name in present if name not in EXPECTED)]


def command_of(name: str, spec: Spec, quick: bool, bootstrap: str | None) -> list[str]:
    arguments = (spec.quick if quick and spec.quick is not None else spec.full).split()
    if bootstrap and spec.takes_bootstrap:
        arguments += ["--bootstrap", bootstrap]
    return ["python", "-m", f"benchmarks.bench_{name}", *arguments]


def run_one(name: str, quick: bool, bootstrap: str | None, timeout: float | None) -> Outcome:
    spec = EXPECTED.get(name, Spec())
    command = command_of(name, spec, quick, bootstrap)
    shown = " ".join(command)
    if not (BENCHMARKS_DIR / f"bench_{name}.py").is_file():
        return Outcome(name, shown, "missing", note=f"benchmarks/bench_{name}.py does not exist yet (planned)")
    if quick and spec.quick is None:
        return Outcome(name, shown, "skipped", note="no tiny size is known for it; run it without --quick")
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as temporary:
        report = Path(temporary) / "report.json"
        print(f"\n=== {shown}", flush=True)
        began = time.monotonic()
        try:
            completed = subprocess.run(
                [sys.executable, *command[1:], "--json", str(report)],
                cwd=REPO_ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Outcome(name, shown, "timed out", time.monotonic() - began, note=f"after {timeout:.0f} s")
        seconds = time.monotonic() - began
        if completed.returncode != 0:
            return Outcome(
                name, shown, f"failed (exit {completed.returncode})", seconds, note="see its output"
            )
        if not report.is_file():
            return Outcome(name, shown, "failed", seconds, note="it wrote no --json report")
        document = json.loads(report.read_text(encoding="utf-8"))
    return Outcome(name, shown, "ok", seconds, figures_of(document))


# The gateway benchmark's report: (run name prefix, what, result key, unit, better, target key, relation).
_GATEWAY_RUNS = (
    ("single", "single events, closed loop", "requests_per_s", "requests/s", "higher", "single_rps", ">="),
    (
        "batch",
        "100-event batches, closed loop",
        "events_per_s",
        "events/s",
        "higher",
        "batch_events_per_s",
        ">=",
    ),
    ("rate", "p99 latency at a fixed rate", "p99_ms", "ms", "lower", "p99_at_rate_ms", "<="),
)


def figures_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures of a report: ``figures`` as written by :func:`benchmarks.write_json`, or the
    gateway benchmark's ``runs`` (it has targets but no baseline)."""
    if "figures" in document:
        return list(document["figures"])
    targets = document.get("targets", {})
    figures = []
    for run in document.get("runs", []):
        for prefix, what, key, unit, better, target_key, relation in _GATEWAY_RUNS:
            if run["name"].startswith(prefix):
                target = targets.get(target_key)
                figures.append(
                    figure(
                        f"{what} ({run['name']}, {run['errors']} errors)",
                        run[key],
                        unit,
                        better=better,
                        target=None if target is None else f"{relation} {target:,.0f} {unit}",
                    )
                )
    return figures


# --- the document ----------------------------------------------------------------------------------


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:,.2f}"


def versus(item: dict[str, Any]) -> str:
    """The figure against its baseline, read the right way round."""
    value, baseline = item["value"], item.get("baseline")
    if baseline is None or not value or not baseline:
        return "—"
    if item.get("better") == "lower":
        factor = baseline / value
        return f"{factor:,.1f}× faster" if factor >= 1 else f"{1 / factor:,.2f}× slower"
    return f"{value / baseline:,.2f}× the baseline"


def render(
    outcomes: Sequence[Outcome], quick: bool, started: datetime, load_start: str, load_end: str
) -> str:
    memory = meminfo()
    gib = 1024**3
    lines = [
        "<!-- Generated by `python -m benchmarks.run_all` (`make bench`). Do not edit by hand: run it again. -->",
        "# Benchmarks",
        "",
        f"Measured {started:%Y-%m-%d %H:%M} UTC by `python -m benchmarks.run_all{' --quick' if quick else ''}`. "
        "Each benchmark ran in its own process, one after the other; each figure stands next to the baseline "
        "measured in the same run, on the same machine, so the ratio holds even where the machine was busy.",
        "",
    ]
    if quick:
        lines += [
            "> **Smoke run** (`--quick`): tiny sizes that only check the runner and the benchmarks' wiring. "
            "These figures say nothing about performance; `make bench` measures at full size.",
            "",
        ]
    lines += [
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        f"| cores (`os.cpu_count()`) | {os.cpu_count()} |",
        f"| CPU | {cpu_model()} |",
        f"| memory (`/proc/meminfo`) | {memory.get('MemTotal', 0) / gib:.1f} GiB total, "
        f"{memory.get('MemAvailable', 0) / gib:.1f} GiB available at the end |",
        f"| load average 1 / 5 / 15 min, at the start | {load_start} |",
        f"| load average 1 / 5 / 15 min, at the end | {load_end} |",
        f"| system | {platform.platform()} |",
        "",
        "## Versions",
        "",
        "| component | version |",
        "| --- | --- |",
        *(f"| {name} | {version} |" for name, version in versions()),
        "",
        "## Results",
        "",
        "Where the time goes in the publisher and the scorecard queries (py-spy profiles, the queries "
        "timed step by step, and what is not done of issue 15): [performance.md](performance.md).",
        "",
    ]
    for outcome in outcomes:
        lines += [f"### {outcome.name}", ""]
        if outcome.status != "ok":
            lines += [f"Not measured: **{outcome.status}**. {outcome.note}.", "", f"`{outcome.command}`", ""]
            continue
        lines += [
            f"`{outcome.command}` ({outcome.seconds:.0f} s)",
            "",
            "| figure | value | baseline, same run | vs baseline | target |",
            "| --- | --- | --- | --- | --- |",
        ]
        for item in outcome.figures:
            baseline = item.get("baseline")
            baseline_text = (
                "none in this benchmark"
                if baseline is None
                else f"{_number(baseline)} {item['unit']}: {item.get('baseline_name') or 'baseline'}"
            )
            lines.append(
                f"| {item['name']} | {_number(item['value'])} {item['unit']} | {baseline_text} | "
                f"{versus(item)} | {item.get('target') or '—'} |"
            )
        lines.append("")
        if outcome.name in NOTES:
            lines += [NOTES[outcome.name], ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run_all",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check that everything runs")
    parser.add_argument("--only", action="append", metavar="NAME", help="only this benchmark (repeatable)")
    parser.add_argument("--bootstrap", help="an existing Kafka for the benchmarks that take one")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per benchmark (default: none)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="the document (default docs/benchmarks.md)"
    )
    args = parser.parse_args(argv)

    names = discover()
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            parser.error(f"unknown benchmark(s) {unknown}; known: {', '.join(names)}")
        names = [name for name in names if name in args.only]
    started = datetime.now(UTC)
    load_start = load_average()
    outcomes = [run_one(name, args.quick, args.bootstrap, args.timeout) for name in names]
    text = render(outcomes, args.quick, started, load_start, load_average())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print()
    for outcome in outcomes:
        print(f"{outcome.name:<10} {outcome.status}{': ' + outcome.note if outcome.note else ''}")
    print(f"wrote {args.out}")
    return 0 if all(outcome.status in ("ok", "missing", "skipped") for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
