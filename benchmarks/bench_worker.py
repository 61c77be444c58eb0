"""The worker end to end (events already in Kafka -> aggregates in ClickHouse) against two baselines,
and its freshness at a steady 5,000 events/s.

    python -m benchmarks.bench_worker                   # 200,000 events, 3 runs, a throwaway broker
    python -m benchmarks.bench_worker --quick           # 20,000 events, 1 run: a smoke run
    python -m benchmarks.bench_worker --events 200000 --partitions 6 --bootstrap 127.0.0.1:19092

N events from the simulator (scenario it-degradation: every event type in a realistic mix, about
a third opens, a third replies, 14 % resolutions, the rest status changes, feedback, closes,
reopens and surveys; ``occurred_at`` spread over the last seven days, so that requests live out their
lifecycles; the Kafka record timestamp set to it) are published once,
uncompressed, with plain kafka-python into a fresh topic. Then, in every run and one after the
other, each consumer reads the same N events from the beginning in a consumer group of its own:

- **deptpulse**: ``deptpulse worker`` as a subprocess with its own chdb path (empty) and group.
  Progress is ``deptpulse_events_total`` on its ``/metrics``, polled every 0.1 s; the counter
  moves only once a batch is in ClickHouse. Rate = events persisted between the first poll that
  shows any and the poll that shows all N, over that time (the first batch's fetch is not timed).
- **faust-recipe**: :mod:`benchmarks.faust_recipe`, a Faust agent with a tumbling windowed
  table and a write per event. Per-event chdb inserts are too slow for N events (7-12 ms each here),
  so the full-size runs append each updated row to an in-memory list, and one extra run with a
  real chdb ``INSERT`` per event measures a smaller sample (``--chdb-sample``). Rate = N over the
  time from its first event to its Nth, taken inside the agent.
- **ceiling**: a bare aiokafka ``getmany`` + ``orjson.loads`` loop in this process, with the
  worker's fetch settings and no processing. Rate = N over first record to the Nth.

Freshness: a fresh topic, a worker on it, then a kafka-python producer (linger 5 ms, acks=all)
publishing simulated events at a steady ``--rate`` for ``--seconds``. For each event, visibility
is the time from its ``send()`` call to the moment the worker's ClickHouse insert of the batch's
aggregates and offsets (``ClickHouseSink.write_aggregates``, the commit point: once it returns a
query sees the batch) returned, recorded on the worker's ClickHouse thread. That needs a probe in
the worker's process: the freshness worker is ``deptpulse worker`` started through
``python -m benchmarks.bench_worker probed-worker``, which wraps that one method in its own process
to log ``(time, partition -> last offset)``; nothing in the worker is changed. As a check that
needs no probe, the same events are also timed to when the worker's group commit in Kafka
(observed every 50 ms) passed them: the worker commits after the insert, and only once it has
fetched and prepared the next batch, so that figure is an upper bound. Wall clocks of both
processes are the same machine's.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import gc
import itertools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from benchmarks import figure, free_ports, machine, throwaway_kafka, write_json
from deptpulse.kafka_clients import aiokafka_kwargs, kafka_python_kwargs
from deptpulse.settings import EXAMPLE_DIRECTORY, Settings
from deptpulse.stack import create_topics
from producers.simulator import simulate
from schemas.directory import Directory, load_directory
from schemas.events import Event, event_to_json

TARGET_EVENTS_PER_S = 40_000
TARGET_CEILING_SHARE = 0.12  # of the bare aiokafka + orjson loop, same run
FRESHNESS_TARGET_S = 1.0
MEMORY_TARGET_MIB = 600  # VmHWM after the throughput run's events
DEPTPULSE = Path(sys.executable).with_name("deptpulse")
REPO = Path(__file__).resolve().parents[1]
PROBE_COMMAND = "probed-worker"
# Seven days of event time: a shorter window at a higher rate cuts every request off after its
# open (measured: 50 events/s over 50 minutes gave 98 % opens), which is not what a worker sees.
_SIMULATED_WINDOW = timedelta(days=7)
_POLL_S = 0.1
_COMMIT_POLL_S = 0.05
WARMUP_S = 5.0  # freshness is also shown without the events of the worker's first seconds


# --- events ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wire:
    """One event as published: key, canonical JSON, record timestamp (its occurred_at)."""

    key: bytes
    value: bytes
    timestamp_ms: int


def generate(directory: Directory, count: int, end: datetime, seed: int) -> list[Wire]:
    """``count`` simulated events ending about ``end``, in event-time order, in their wire form."""
    window = _SIMULATED_WINDOW
    # Request events per second, with headroom: how many the simulator gives depends on how the
    # window falls on weekdays and working hours (measured: x1.05 gave 198,507 of 200,000 once).
    rate = count / window.total_seconds() * 1.3
    stream = simulate(directory, end - window, window, rate, seed, "it-degradation")
    events: list[Event] = list(itertools.islice(stream, count))
    if len(events) < count:
        raise RuntimeError(f"the simulator gave {len(events)} events, not {count}")
    return [
        Wire(e.partition_key.encode(), event_to_json(e), int(e.occurred_at.timestamp() * 1000))
        for e in events
    ]


def make_topic(settings: Settings, name: str, partitions: int) -> Settings:
    """Settings naming a fresh events topic (and its dead-letter topic), created now."""
    topic_settings = settings.model_copy(
        update={"events_topic": name, "dead_letter_topic": f"{name}.dlq", "events_partitions": partitions}
    )
    create_topics(topic_settings)
    return topic_settings


def publish(settings: Settings, wires: list[Wire]) -> None:
    producer = KafkaProducer(
        **kafka_python_kwargs(settings), acks="all", linger_ms=20, batch_size=256 * 1024
    )
    try:
        for wire in wires:
            producer.send(settings.events_topic, wire.value, key=wire.key, timestamp_ms=wire.timestamp_ms)
        producer.flush()
    finally:
        producer.close()


# --- processes -------------------------------------------------------------------------------------


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmHWM, VmRSS) of ``pid`` in KiB, from /proc/<pid>/status; (0, 0) where unreadable."""
    values = {"VmHWM": 0, "VmRSS": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0])
    except OSError:
        pass
    return values["VmHWM"], values["VmRSS"]


def stop(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """SIGTERM, then SIGKILL after ``timeout``."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Worker:
    """A worker subprocess on one topic, with its own home, chdb path, group and port."""

    settings: Settings
    home: Path
    group: str
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, settings: Settings, home: Path, group: str, probe: Path | None = None) -> Worker:
        home.mkdir(parents=True)
        port = free_ports(1)[0]
        settings = settings.model_copy(update={"worker_port": port})
        env = os.environ | {
            "DEPTPULSE_HOME": str(home),
            "DEPTPULSE_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "DEPTPULSE_EVENTS_TOPIC": settings.events_topic,
            "DEPTPULSE_DEAD_LETTER_TOPIC": settings.dead_letter_topic,
            "DEPTPULSE_EVENTS_PARTITIONS": str(settings.events_partitions),
            "DEPTPULSE_WORKER_PORT": str(port),
            "DEPTPULSE_CLICKHOUSE_PATH": str(home / "clickhouse"),
            "PYTHONPATH": str(REPO),
        }
        arguments = ["worker", "--group", group, "--loglevel", "info"]
        if probe is None:
            command = [str(DEPTPULSE), *arguments]
        else:
            command = [sys.executable, "-m", "benchmarks.bench_worker", PROBE_COMMAND, str(probe), *arguments]
        log = home / "worker.log"
        with log.open("ab") as out:
            process = subprocess.Popen(command, env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT)
        return cls(settings, home, group, process, log)

    def events_done(self) -> float | None:
        """Sum of ``deptpulse_events_total`` (persisted messages), None while /metrics does not answer."""
        url = f"http://127.0.0.1:{self.settings.worker_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return None
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "deptpulse_events_total"
        )

    def alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"the worker exited ({self.process.returncode}); log:\n{log_tail(self.log)}")

    def wait_assigned(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while "assigned [" not in self.log.read_text(errors="replace"):
            self.alive()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the worker got no partitions in {timeout:.0f} s; log:\n{log_tail(self.log)}"
                )
            time.sleep(_POLL_S)


# --- the three consumers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    events: int
    seconds: float
    hwm_kib: int = 0
    rss_kib: int = 0
    startup_s: float | None = None  # process start to the first event (subprocesses only)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def deptpulse_run(settings: Settings, home: Path, events: int, timeout: float = 600) -> Timing:
    """``deptpulse worker`` from the beginning of the topic until N events are in ClickHouse."""
    began = time.monotonic()
    worker = Worker.start(settings, home, f"{home.name}-{uuid.uuid4().hex[:6]}")
    try:
        first: tuple[float, float] | None = None
        while True:
            worker.alive()
            done = worker.events_done()
            now = time.monotonic()
            if done and first is None:
                first = (now, done)
            if done is not None and done >= events:
                break
            if now - began > timeout:
                raise RuntimeError(f"deptpulse worker: {done} of {events} after {timeout:.0f} s")
            time.sleep(_POLL_S)
        assert first is not None
        hwm, rss = memory_kib(worker.process.pid)
        counted = int(done) - int(first[1])
        if counted <= 0:
            raise RuntimeError("deptpulse worker: everything landed in one batch; use more --events")
        return Timing(counted, now - first[0], hwm, rss, first[0] - began)
    finally:
        stop(worker.process)


def faust_run(
    settings: Settings, home: Path, events: int, partitions: int, sink: str, timeout: float = 900
) -> Timing:
    """The Faust recipe from the beginning of the topic until its agent has handled N events."""
    home.mkdir(parents=True)
    result, log = home / "result.json", home / "faust.log"
    began_ns = time.time_ns()
    command = [
        sys.executable, "-m", "benchmarks.faust_recipe",
        "--bootstrap", settings.kafka_bootstrap_servers.split(",")[0],
        "--topic", settings.events_topic,
        "--partitions", str(partitions),
        "--events", str(events),
        "--app-id", f"{settings.events_topic}-{home.name}",
        "--web-port", str(free_ports(1)[0]),
        "--datadir", str(home),
        "--result", str(result),
        "--sink", sink,
    ]  # fmt: skip
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not result.exists():
            if process.poll() is not None:
                raise RuntimeError(f"the Faust recipe exited ({process.returncode}); log:\n{log_tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the Faust recipe ({sink}) did not handle {events} events in {timeout:.0f} s"
                )
            time.sleep(_POLL_S)
        hwm, rss = memory_kib(process.pid)
        report = orjson.loads(result.read_bytes())
        seconds = (report["last_ns"] - report["first_ns"]) / 1e9
        return Timing(report["events"], seconds, hwm, rss, (report["first_ns"] - began_ns) / 1e9)
    finally:
        stop(process, timeout=30)


def ceiling_run(settings: Settings, events: int, timeout: float = 300) -> Timing:
    """A bare aiokafka consume + orjson decode loop (the worker's fetch settings), in this process."""
    from aiokafka import AIOKafkaConsumer

    batch_max = settings.worker_batch_max_events

    async def consume() -> Timing:
        consumer = AIOKafkaConsumer(
            settings.events_topic,
            **aiokafka_kwargs(settings),
            group_id=f"{settings.events_topic}-ceiling-{uuid.uuid4().hex[:6]}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=batch_max,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        await consumer.start()
        try:
            seen, first, deadline = 0, 0.0, time.monotonic() + timeout
            loads = orjson.loads
            while seen < events:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"ceiling: {seen} of {events} after {timeout:.0f} s")
                fetched = await consumer.getmany(timeout_ms=1000, max_records=batch_max)
                if fetched and not first:
                    first = time.perf_counter()
                for records in fetched.values():
                    for record in records:
                        loads(record.value)
                    seen += len(records)
            return Timing(seen, time.perf_counter() - first)
        finally:
            await consumer.stop()

    gc.collect()
    return asyncio.run(consume())


# --- freshness -------------------------------------------------------------------------------------


class CommitWatcher(threading.Thread):
    """Polls a consumer group's committed offsets; keeps, per partition, when each new value was seen."""

    def __init__(self, settings: Settings, group: str) -> None:
        super().__init__(daemon=True)
        self.settings, self.group = settings, group
        self.seen: dict[int, list[tuple[int, int]]] = defaultdict(list)  # partition -> [(committed, ns)]
        self.stopping = threading.Event()

    def run(self) -> None:
        admin = KafkaAdminClient(**kafka_python_kwargs(self.settings))
        try:
            while not self.stopping.is_set():
                try:
                    offsets = admin.list_group_offsets(self.group).get(self.group, {})
                except KafkaError:  # no coordinator yet
                    offsets = {}
                now = time.time_ns()
                for tp, meta in offsets.items():
                    history = self.seen[tp.partition]
                    if tp.topic == self.settings.events_topic and (
                        not history or meta.offset > history[-1][0]
                    ):
                        history.append((meta.offset, now))
                self.stopping.wait(_COMMIT_POLL_S)
        finally:
            admin.close()


@dataclass
class Freshness:
    sent_rate: float
    events: int
    probe_s: list[float] = field(default_factory=list)
    warm_probe_s: list[float] = field(default_factory=list)  # events sent after the first WARMUP_S
    commit_s: list[float] = field(default_factory=list)
    missing: int = 0
    hwm_kib: int = 0
    rss_kib: int = 0


def read_probe(path: Path) -> dict[int, list[tuple[int, int]]]:
    """partition -> [(last offset, ns)] of each persisted batch, in order."""
    persisted: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for line in path.read_text().splitlines():
        at, *ranges = line.split()
        for item in ranges:
            partition, last = item.split(":")
            persisted[int(partition)].append((int(last), int(at)))
    return persisted


def visible_at(history: list[tuple[int, int]], offset: int, inclusive: bool) -> int | None:
    """The time of the first entry covering ``offset`` (last >= offset, or committed > offset)."""
    marks = [mark for mark, _ in history]
    index = bisect.bisect_left(marks, offset) if inclusive else bisect.bisect_right(marks, offset)
    return history[index][1] if index < len(history) else None


def freshness_run(
    settings: Settings, home: Path, directory: Directory, partitions: int, rate: int, seconds: float
) -> Freshness:
    """A worker on a fresh topic fed at a steady ``rate``; per-event send -> visible in ClickHouse."""
    total = int(rate * seconds)
    wires = generate(directory, total, datetime.now(UTC) - timedelta(minutes=10), seed=1)
    topic_settings = make_topic(settings, f"{settings.events_topic}-fresh", partitions)
    probe = home / "probe.log"
    worker = Worker.start(topic_settings, home / "worker", f"{topic_settings.events_topic}-worker", probe)
    watcher = CommitWatcher(topic_settings, worker.group)
    producer = KafkaProducer(**kafka_python_kwargs(settings), acks="all", linger_ms=5)
    try:
        worker.wait_assigned()
        watcher.start()
        futures, sent_ns = [], []
        began = time.monotonic()
        for index, wire in enumerate(wires):
            delay = began + index / rate - time.monotonic()
            if delay > 0.001:
                time.sleep(delay)
            now = time.time_ns()
            futures.append(
                producer.send(
                    topic_settings.events_topic,
                    wire.value,
                    key=wire.key,
                    headers=[("bench-sent-ns", str(now).encode())],
                    timestamp_ms=wire.timestamp_ms,
                )
            )
            sent_ns.append(now)
        producer.flush()
        sent_rate = total / ((sent_ns[-1] - sent_ns[0]) / 1e9)
        placed = [(meta.partition, meta.offset) for meta in (future.get(timeout=30) for future in futures)]
        ends: dict[int, int] = {}
        for partition, offset in placed:
            ends[partition] = max(offset, ends.get(partition, -1))
        deadline = time.monotonic() + 120
        while True:  # until every partition's last event is in ClickHouse (and committed)
            worker.alive()
            persisted = read_probe(probe) if probe.exists() else {}
            done = all(persisted.get(p) and persisted[p][-1][0] >= end for p, end in ends.items())
            committed = all(watcher.seen.get(p) and watcher.seen[p][-1][0] > end for p, end in ends.items())
            if (done and committed) or time.monotonic() > deadline:
                break
            time.sleep(_POLL_S)
        hwm, rss = memory_kib(worker.process.pid)
    finally:
        watcher.stopping.set()
        producer.close()
        stop(worker.process)
    result = Freshness(sent_rate, total, hwm_kib=hwm, rss_kib=rss)
    for (partition, offset), sent in zip(placed, sent_ns, strict=True):
        in_clickhouse = visible_at(persisted.get(partition, []), offset, inclusive=True)
        in_commit = visible_at(watcher.seen.get(partition, []), offset, inclusive=False)
        if in_clickhouse is None:
            result.missing += 1
        else:
            result.probe_s.append((in_clickhouse - sent) / 1e9)
            if sent - sent_ns[0] >= WARMUP_S * 1e9:
                result.warm_probe_s.append((in_clickhouse - sent) / 1e9)
        if in_commit is not None:
            result.commit_s.append((in_commit - sent) / 1e9)
    return result


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


# --- the probed worker (a subprocess of this benchmark) --------------------------------------------


def run_probed_worker(probe: str, arguments: list[str]) -> None:
    """``deptpulse <arguments>`` with ``ClickHouseSink.write_aggregates`` wrapped, in this process
    only, to append ``"<ns> <partition>:<last offset> ..."`` to ``probe`` once each insert returned."""
    from deptpulse import cli
    from stream_processors.sinks.clickhouse import ClickHouseSink, SinkBatch

    out = Path(probe).open("a", buffering=1)  # noqa: SIM115 - open for the life of the process
    write_aggregates = ClickHouseSink.write_aggregates

    def probed(self: ClickHouseSink, batch: SinkBatch) -> int:
        rows = write_aggregates(self, batch)
        ranges = " ".join(f"{p}:{last}" for p, (_, last) in batch.offset_ranges.items())
        out.write(f"{time.time_ns()} {ranges}\n")
        return rows

    ClickHouseSink.write_aggregates = probed  # type: ignore[method-assign]
    cli.main(arguments, prog_name="deptpulse")


# --- report ----------------------------------------------------------------------------------------


def _mib(kib: int) -> str:
    return f"{kib / 1024:,.0f}"


def _row(name: str, timings: list[Timing]) -> str:
    rates = " / ".join(f"{t.events_per_s:,.0f}" for t in timings)
    hwm = max(t.hwm_kib for t in timings)
    memory = _mib(hwm) if hwm else "-"  # the ceiling runs in this process
    return f"{name:<52}{statistics.median(t.events_per_s for t in timings):>10,.0f}{memory:>9}   {rates}"


def delete_topics(settings: Settings, prefix: str) -> None:
    """Remove the topics this run made (also Faust's changelogs) from a broker we did not start."""
    try:
        with KafkaAdminClient(**kafka_python_kwargs(settings)) as admin:
            ours = [name for name in admin.list_topics() if name.startswith(prefix)]
            if ours:
                admin.delete_topics(ours)
    except KafkaError as error:
        print(f"could not delete the benchmark's topics {prefix}*: {error!r}")


def _timed_runs(runs: int, order: list[tuple[str, Callable[[int], Timing]]]) -> dict[str, list[Timing]]:
    results: dict[str, list[Timing]] = {name: [] for name, _ in order}
    for run in range(1, runs + 1):  # one after the other, so a busy moment hurts all paths alike
        line = []
        for name, measure in order:
            results[name].append(measure(run))
            line.append(f"{name} {results[name][-1].events_per_s:>9,.0f}")
        print(f"run {run}: " + "   ".join(line) + " events/s", flush=True)
    return results


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == PROBE_COMMAND:
        run_probed_worker(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_worker", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--events", type=int, default=None, help="events per run (default 200000; 20000 quick)"
    )
    parser.add_argument("--partitions", type=int, default=6, help="partitions of the topic (default 6)")
    parser.add_argument(
        "--bootstrap", default=None, help="an existing broker; default: start a throwaway one"
    )
    parser.add_argument("--runs", type=int, default=None, help="runs of each consumer (default 3; 1 quick)")
    parser.add_argument("--chdb-sample", type=int, default=None, help="events of the per-event chdb run")
    parser.add_argument("--rate", type=int, default=5000, help="freshness: events/s published (default 5000)")
    parser.add_argument(
        "--seconds", type=float, default=None, help="freshness: how long (default 30; 10 quick)"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the figures here (benchmarks.run_all)"
    )
    args = parser.parse_args()
    events = args.events or (20_000 if args.quick else 200_000)
    runs = args.runs or (1 if args.quick else 3)
    sample = args.chdb_sample or (500 if args.quick else 2000)
    seconds = args.seconds or (10.0 if args.quick else 30.0)
    started = machine()
    print(f"{started}; generating {events:,} simulated events ...", flush=True)
    directory = load_directory(EXAMPLE_DIRECTORY)
    wires = generate(directory, events, datetime.now(UTC) - timedelta(hours=1), seed=0)
    megabytes = sum(len(w.value) for w in wires) / 1e6
    prefix = f"bench-worker-{uuid.uuid4().hex[:8]}"

    with (
        tempfile.TemporaryDirectory(prefix="bench-worker-") as temporary,
        throwaway_kafka(args.bootstrap, Path(temporary) / "stack") as broker,
    ):
        home = Path(temporary)
        try:
            settings = make_topic(broker, prefix, args.partitions)
            print(f"publishing {events:,} events ({megabytes:.0f} MB of JSON) to {prefix} ...", flush=True)
            publish(settings, wires)
            del wires
            gc.collect()
            timings = _timed_runs(
                runs,
                [
                    ("deptpulse", lambda run: deptpulse_run(settings, home / f"deptpulse-{run}", events)),
                    (
                        "faust-recipe",
                        lambda run: faust_run(
                            settings, home / f"faust-{run}", events, args.partitions, "memory"
                        ),
                    ),
                    ("ceiling", lambda _run: ceiling_run(settings, events)),
                ],
            )
            print(f"faust recipe with a chdb INSERT per event, {sample:,} events ...", flush=True)
            chdb = faust_run(settings, home / "faust-chdb", sample, args.partitions, "chdb")
            print(f"freshness: {args.rate:,} events/s for {seconds:.0f} s ...", flush=True)
            fresh = freshness_run(
                settings, home / "freshness", directory, args.partitions, args.rate, seconds
            )
        finally:
            if args.bootstrap:
                delete_topics(broker, prefix)
        finished = machine()

    rate = {name: statistics.median(t.events_per_s for t in runs_) for name, runs_ in timings.items()}
    worker_hwm = max(t.hwm_kib for t in timings["deptpulse"])
    print()
    print(f"worker benchmark: {events:,} events, {args.partitions} partitions, {runs} run(s)")
    print(f"at the start: {started}")
    print(f"at the end:   {finished}")
    print(f"{'consumer (Kafka -> persisted)':<52}{'events/s':>10}{'HWM MiB':>9}   runs (events/s)")
    print(_row("deptpulse worker (ClickHouse, effectively once)", timings["deptpulse"]))
    print(_row("faust recipe: windowed table + per-event list append", timings["faust-recipe"]))
    print(_row(f"faust recipe: + per-event chdb INSERT ({sample:,} ev)", [chdb]))
    print(_row("ceiling: bare aiokafka getmany + orjson.loads", timings["ceiling"]))
    print(
        f"{'ratio deptpulse / faust recipe (list append)':<52}{rate['deptpulse'] / rate['faust-recipe']:>10.2f}"
    )
    print(
        f"{'ratio deptpulse / faust recipe (chdb INSERT)':<52}{rate['deptpulse'] / chdb.events_per_s:>10.2f}"
    )
    print(f"{'ratio deptpulse / ceiling':<52}{rate['deptpulse'] / rate['ceiling']:>10.2f}")
    verdict = "met" if rate["deptpulse"] >= TARGET_EVENTS_PER_S else "NOT met"
    print(f"{f'target >= {TARGET_EVENTS_PER_S:,} events/s per worker':<52}{verdict:>10}")
    verdict = "met" if rate["deptpulse"] >= TARGET_CEILING_SHARE * rate["ceiling"] else "NOT met"
    print(f"{f'target >= {TARGET_CEILING_SHARE} of the ceiling':<52}{verdict:>10}")
    startups = [t.startup_s for t in timings["deptpulse"] if t.startup_s is not None]
    print(
        f"deptpulse worker: process start to first batch in ClickHouse, median {statistics.median(startups):.1f} s"
    )
    print()
    p50, p99 = percentile(fresh.probe_s, 0.5), percentile(fresh.probe_s, 0.99)
    c50, c99 = percentile(fresh.commit_s, 0.5), percentile(fresh.commit_s, 0.99)
    print(
        f"freshness: {fresh.events:,} events sent at {fresh.sent_rate:,.0f} events/s, {fresh.missing} never seen"
    )
    print(
        f"  send -> aggregates in ClickHouse (probe): p50 {p50:.2f} s  p90 {percentile(fresh.probe_s, 0.9):.2f} s  "
        f"p99 {p99:.2f} s  max {max(fresh.probe_s, default=float('nan')):.2f} s  (target p99 <= {FRESHNESS_TARGET_S:g} s: "
        f"{'met' if p99 <= FRESHNESS_TARGET_S else 'NOT met'})"
    )
    w50, w99 = percentile(fresh.warm_probe_s, 0.5), percentile(fresh.warm_probe_s, 0.99)
    print(f"  the same, events sent after the first {WARMUP_S:.0f} s: p50 {w50:.2f} s  p99 {w99:.2f} s")
    print(f"  send -> committed in Kafka (upper bound): p50 {c50:.2f} s  p99 {c99:.2f} s")
    print(f"  worker memory at the end: VmHWM {_mib(fresh.hwm_kib)} MiB, VmRSS {_mib(fresh.rss_kib)} MiB")
    print(
        f"deptpulse worker memory after {events:,} events: VmHWM {_mib(worker_hwm)} MiB (max of runs), "
        f"VmRSS {_mib(timings['deptpulse'][-1].rss_kib)} MiB (last run); target VmHWM <= {MEMORY_TARGET_MIB} MiB: "
        f"{'met' if worker_hwm / 1024 <= MEMORY_TARGET_MIB else 'NOT met'}"
    )
    if args.json:
        write_json(
            args.json,
            "worker",
            [
                figure(
                    f"deptpulse worker, Kafka -> ClickHouse, {events:,} events, median of {runs}",
                    rate["deptpulse"],
                    "events/s",
                    better="higher",
                    baseline=rate["faust-recipe"],
                    baseline_name="Faust recipe: windowed table, per-event write to a list",
                    target=f">= {TARGET_EVENTS_PER_S:,} events/s",
                ),
                figure(
                    "deptpulse worker against the ceiling",
                    rate["deptpulse"],
                    "events/s",
                    better="higher",
                    baseline=rate["ceiling"],
                    baseline_name="bare aiokafka getmany + orjson.loads, no processing",
                    target=f">= {TARGET_CEILING_SHARE}× the ceiling",
                ),
                figure(
                    f"Faust recipe with a chdb INSERT per event ({sample:,} events, one run)",
                    chdb.events_per_s,
                    "events/s",
                    better="higher",
                ),
                figure(
                    f"freshness p99 at {args.rate:,} events/s: send -> aggregates in ClickHouse",
                    p99,
                    "s",
                    better="lower",
                    target=f"<= {FRESHNESS_TARGET_S:g} s",
                ),
                figure(f"freshness p50 at {args.rate:,} events/s", p50, "s", better="lower"),
                figure(f"freshness p99 after the first {WARMUP_S:.0f} s", w99, "s", better="lower"),
                figure("freshness p99, send -> committed in Kafka (upper bound)", c99, "s", better="lower"),
                figure(
                    f"deptpulse worker VmHWM after {events:,} events, throughput runs (max)",
                    worker_hwm / 1024,
                    "MiB",
                    better="lower",
                    target=f"<= {MEMORY_TARGET_MIB} MiB",
                ),
                figure("deptpulse worker VmHWM, freshness run", fresh.hwm_kib / 1024, "MiB", better="lower"),
            ],
            events=events,
            runs=runs,
            partitions=args.partitions,
            load_start=started,
            load_end=finished,
        )


if __name__ == "__main__":
    main()
