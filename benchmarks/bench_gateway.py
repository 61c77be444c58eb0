"""Throughput and latency of the ingestion gateway: one gateway process, load from another, loopback only.

    python -m benchmarks.bench_gateway                      # starts a throwaway Kafka broker
    python -m benchmarks.bench_gateway --bootstrap 127.0.0.1:19092 --duration 10

The gateway runs as ``deptpulse gateway`` (uvicorn, one process) with a bearer-token integration;
this process is the load generator: asyncio, raw HTTP/1.1 keep-alive connections (a hand-written
client costs far less CPU per request than httpx, and the generator shares the machine's cores
with the gateway and the broker). Three runs, each after a warm-up:

1. single events, closed loop: ``--connections`` clients each POST one event and wait for the 202;
2. 100-event batches, closed loop: events/s;
3. single events at a fixed ``--rate`` (open loop): latency is measured from each request's
   scheduled start, so a stalled gateway cannot hide its queueing (no coordinated omission).

Every 202 means Kafka acknowledged the events (acks=all). Bounded: every run stops after
``--duration`` seconds or ``--max-requests`` requests, whichever comes first; the gateway and
the throwaway broker are stopped at the end, also on errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import free_ports, throwaway_kafka
from deptpulse.settings import Settings

TOKEN = "bench-token-0123456789abcdef"
TARGETS = {"single_rps": 2000.0, "p99_at_rate_ms": 50.0, "batch_events_per_s": 50_000.0}


@dataclass(frozen=True)
class RunResult:
    name: str
    requests: int
    events: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


# --- request bodies --------------------------------------------------------------------------------


def _event(event_id: str) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": event_id,
        "event_type": "request.opened",
        "occurred_at": "2026-03-02T09:00:00+01:00",
        "source": "hr-survey",
        "provider_department": "it",
        "customer_department": "hr",
        "request_id": f"{event_id}-r",
        "service_category": "it.access",
        "priority": "P2",
    }


class Requests:
    """Pre-rendered HTTP requests; only the id placeholder changes, so every event_id is unique."""

    def __init__(self, host: str, port: int, batch: int) -> None:
        body = _event("@ID@") if batch == 1 else [_event(f"@ID@-{index}") for index in range(batch)]
        self.body = json.dumps(body, separators=(",", ":")).encode()
        self.head = (
            f"POST /v1/events HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.batch = batch
        self._counter = 0

    def next(self, prefix: bytes) -> bytes:
        self._counter += 1
        body = self.body.replace(b"@ID@", prefix + str(self._counter).encode())
        return self.head + str(len(body)).encode() + b"\r\n\r\n" + body


async def _roundtrip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


# --- the runs ----------------------------------------------------------------------------------------


def _percentile(sorted_ms: list[float], share: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, int(share * len(sorted_ms)))]


def _result(name: str, latencies: list[float], errors: int, seconds: float, batch: int) -> RunResult:
    latencies.sort()
    return RunResult(
        name,
        len(latencies),
        len(latencies) * batch,
        errors,
        seconds,
        _percentile(latencies, 0.50),
        _percentile(latencies, 0.99),
        latencies[-1] if latencies else float("nan"),
    )


async def closed_loop(
    name: str,
    host: str,
    port: int,
    batch: int,
    connections: int,
    duration: float,
    max_requests: int,
    warmup: float,
) -> RunResult:
    """``connections`` clients, each sending its next request when the last one was answered."""
    requests = Requests(host, port, batch)
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    measure_from = loop.time() + warmup
    stop_at = measure_from + duration
    budget = [max_requests]

    async def client(number: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        prefix = f"{name}-{number}-".encode()
        try:
            while loop.time() < stop_at and budget[0] > 0:
                started = loop.time()
                status = await _roundtrip(reader, writer, requests.next(prefix))
                if started >= measure_from:
                    budget[0] -= 1
                    if status == 202:
                        latencies.append((loop.time() - started) * 1000)
                    else:
                        errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(client(number) for number in range(connections)))
    return _result(name, latencies, errors, min(duration, loop.time() - measure_from), batch)


async def open_loop(
    name: str, host: str, port: int, rate: float, connections: int, duration: float, warmup: float
) -> RunResult:
    """Requests scheduled at a fixed rate over a pool of keep-alive connections.

    A request waits for a free connection when all are busy; its latency still counts from its
    scheduled time, so queueing in the gateway shows up in the percentiles.
    """
    requests = Requests(host, port, 1)
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection(host, port))
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors = 0
    start = loop.time()
    measure_from = start + warmup
    total = int((warmup + duration) * rate)
    pending: set[asyncio.Task[None]] = set()

    async def one(scheduled: float, number: int) -> None:
        nonlocal errors
        reader, writer = await pool.get()
        try:
            status = await _roundtrip(reader, writer, requests.next(f"{name}-{number}-".encode()))
        finally:
            pool.put_nowait((reader, writer))
        if scheduled >= measure_from:
            if status == 202:
                latencies.append((loop.time() - scheduled) * 1000)
            else:
                errors += 1

    for number in range(total):
        scheduled = start + number / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(scheduled, number))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    while not pool.empty():
        pool.get_nowait()[1].close()
    return _result(name, latencies, errors, duration, 1)


# --- processes ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def gateway_process(settings: Settings, port: int, home: Path) -> Iterator[subprocess.Popen[bytes]]:
    integrations = home / "integrations.yaml"
    integrations.write_text(
        "integrations:\n  - name: bench\n    sources: [hr-survey]\n"
        "    credentials: [{type: bearer, token_env: DEPTPULSE_GW_BENCH_TOKEN}]\n",
        encoding="utf-8",
    )
    env = os.environ | {
        "DEPTPULSE_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "DEPTPULSE_GW_BENCH_TOKEN": TOKEN,
        "DEPTPULSE_HOME": str(home),
    }
    log = (home / "gateway.log").open("wb")
    command = [
        sys.executable,
        "-m",
        "deptpulse.cli",
        "gateway",
        "--port",
        str(port),
        "--integrations",
        str(integrations),
    ]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/readyz", process, home / "gateway.log")
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the gateway exited ({process.returncode}):\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"the gateway was not ready within {timeout} s:\n{log.read_text()[-2000:]}")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), to show who used the cores."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- main ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", help="an existing Kafka (loopback); default: start a throwaway broker")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="closed-loop clients for single events")
    parser.add_argument("--batch-connections", type=int, default=8, help="closed-loop clients for batches")
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="fixed request rate of run 3 (default 1000/s)"
    )
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap per closed-loop run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.bootstrap and args.bootstrap.split(":")[0] not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--bootstrap must be a loopback address")

    host, (port,) = "127.0.0.1", free_ports(1)
    with (
        tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp,
        throwaway_kafka(args.bootstrap, Path(tmp)) as settings,
        gateway_process(settings, port, Path(tmp)) as process,
    ):
        runs: list[tuple[RunResult, float]] = []

        def measured(run: Callable[[], Any]) -> None:
            cpu_before = _cpu_seconds(process.pid)
            result = asyncio.run(run())
            runs.append((result, (_cpu_seconds(process.pid) - cpu_before) / (result.seconds + args.warmup)))
            _print_run(*runs[-1])

        print(
            f"gateway pid {process.pid} on {host}:{port}; {os.cpu_count()} cores shared with the broker and "
            f"this generator; 1-min load average before the runs {os.getloadavg()[0]:.1f}"
        )
        measured(
            lambda: closed_loop(
                "single", host, port, 1, args.connections, args.duration, args.max_requests, args.warmup
            )
        )
        measured(
            lambda: closed_loop(
                "batch100",
                host,
                port,
                100,
                args.batch_connections,
                args.duration,
                args.max_requests,
                args.warmup,
            )
        )
        measured(
            lambda: open_loop(f"rate{int(args.rate)}", host, port, args.rate, 64, args.duration, args.warmup)
        )
    single, batch, fixed = (result for result, _ in runs)
    print()
    print(
        f"single events:   {single.requests_per_s:8.0f} requests/s   (target >= {TARGETS['single_rps']:.0f})"
    )
    print(
        f"at {args.rate:.0f} req/s:    p99 {fixed.p99_ms:6.1f} ms           (target <= {TARGETS['p99_at_rate_ms']:.0f} ms)"
    )
    print(
        f"100-event batch: {batch.events_per_s:8.0f} events/s     (target >= {TARGETS['batch_events_per_s']:.0f})"
    )
    if args.json:
        report = {
            "machine": {
                "cores": os.cpu_count(),
                "python": platform.python_version(),
                "load_average_after": os.getloadavg()[0],
            },
            "runs": [
                asdict(r)
                | {"requests_per_s": r.requests_per_s, "events_per_s": r.events_per_s, "gateway_cores": c}
                for r, c in runs
            ],
            "targets": TARGETS,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


def _print_run(result: RunResult, gateway_cores: float) -> None:
    print(
        f"{result.name:>9}: {result.requests:7d} requests ({result.events} events) in {result.seconds:5.1f} s = "
        f"{result.requests_per_s:7.0f} req/s, {result.events_per_s:8.0f} events/s; "
        f"p50 {result.p50_ms:6.1f} ms, p99 {result.p99_ms:6.1f} ms, max {result.max_ms:6.1f} ms; "
        f"errors {result.errors}; gateway CPU {gateway_cores:.2f} cores "
        f"({gateway_cores * 1e6 / max(1.0, result.events_per_s):.0f} µs/event)",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
