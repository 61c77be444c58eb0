"""Benchmarks, run as modules (``python -m benchmarks.bench_publisher``); helpers they share."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from deptpulse.settings import Settings
from deptpulse.stack import LocalStack, create_topics


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports nothing listens on right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:  # bound together, so the kernel hands out distinct ports
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@contextlib.contextmanager
def throwaway_kafka(bootstrap: str | None, home: Path) -> Iterator[Settings]:
    """Settings for ``bootstrap`` when given; else a broker of our own on free ports, stopped after."""
    if bootstrap:
        settings = Settings(home=home, kafka_bootstrap_servers=bootstrap)
        create_topics(settings)
        yield settings
        return
    kafka_port, controller_port = free_ports(2)
    settings = Settings(
        home=home, kafka_bootstrap_servers=f"127.0.0.1:{kafka_port}", kafka_controller_port=controller_port
    )
    stack = LocalStack(settings)
    try:
        print(f"starting a throwaway Kafka broker on 127.0.0.1:{kafka_port} ...", flush=True)
        stack.up(["kafka"])
        create_topics(settings)
        yield settings
    finally:
        stack.down(["kafka"])


def machine() -> str:
    """CPU count and load: benchmark figures mean little without them."""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average {load}"


# --- machine-readable results: what `--json FILE` writes and benchmarks/run_all.py reads ----------


def figure(
    name: str,
    value: float,
    unit: str,
    *,
    better: str,
    baseline: float | None = None,
    baseline_name: str | None = None,
    target: str | None = None,
) -> dict[str, object]:
    """One measured figure; ``better`` is "higher" or "lower"; the baseline is measured in the same run."""
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "better": better,
        "baseline": baseline,
        "baseline_name": baseline_name,
        "target": target,
    }


def write_json(path: Path, benchmark: str, figures: list[dict[str, object]], **extra: object) -> None:
    """``{"benchmark", "figures": [figure(...)], ...extra}`` to ``path``."""
    document = {"benchmark": benchmark, "figures": figures, **extra}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
