"""Throughput of the publisher SDK (validation on) against a plain KafkaProducer with defaults.

    python -m benchmarks.bench_publisher                        # starts a throwaway Kafka broker
    python -m benchmarks.bench_publisher --events 500000 --bootstrap 127.0.0.1:19092 --runs 3
    python -m benchmarks.bench_publisher --events 100000 --sweep   # also try producer tunings

The same N simulated events go through both paths in every run, each into a fresh 6-partition
topic, and each path's clock stops when the last record is acknowledged (acks=all):

- **sdk**: ``Publisher.send(event)`` per event: validation against the directory, canonical
  JSON, key, headers, metrics, then kafka-python with :class:`ProducerTuning`;
- **baseline**: ``KafkaProducer(bootstrap_servers=...)`` with its defaults (idempotent, acks=all,
  no compression, linger 0, 16 KiB batches) sending the pre-serialised values and keys.

Runs alternate sdk and baseline so that a busy machine hurts both alike; the table shows every
run and the medians. The validation cost (``validate_event`` with the directory, the step the SDK
adds) is measured separately over the same events: median of the passes, µs per event.

Target: the SDK's median events/s >= 1.6x the baseline's. Where the time goes, before and after
the SDK's changes (py-spy profiles): docs/performance.md.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from benchmarks import figure, machine, throwaway_kafka, write_json
from deptpulse.kafka_clients import kafka_python_kwargs
from deptpulse.settings import EXAMPLE_DIRECTORY, Settings
from deptpulse.stack import create_topics
from producers.publisher import ProducerTuning, Publisher, PublisherMetrics
from producers.simulator import simulate
from schemas.directory import Directory, load_directory
from schemas.events import Event, event_to_json, validate_event

TARGET_RATIO = 1.6  # issue 15: the validating SDK at >= 1.6x KafkaProducer defaults, same run
_SIMULATED_RATE = 50.0  # events per second of event time: many requests in flight, as in a busy org


@dataclass(frozen=True)
class Messages:
    events: list[Event]
    keys: list[bytes]
    values: list[bytes]


def generate(directory: Directory, count: int, seed: int = 0) -> Messages:
    """``count`` simulated events (it-degradation: every event type) and their wire form."""
    window = timedelta(seconds=count / _SIMULATED_RATE * 1.5)
    stream = simulate(
        directory, datetime(2026, 3, 2, tzinfo=UTC), window, _SIMULATED_RATE, seed, "it-degradation"
    )
    events = list(itertools.islice(stream, count))
    if len(events) < count:
        raise RuntimeError(f"the simulator gave {len(events)} events, not {count}")
    return Messages(events, [e.partition_key.encode() for e in events], [event_to_json(e) for e in events])


def validation_microseconds(directory: Directory, events: list[Event], passes: int = 5) -> float:
    """Median over ``passes`` of the µs per event that ``validate_event`` (with the directory) costs."""
    timings = []
    for _ in range(passes):
        began = time.perf_counter()
        for event in events:
            validate_event(event, directory)
        timings.append((time.perf_counter() - began) / len(events) * 1e6)
    return statistics.median(timings)


def _fresh_topic(settings: Settings) -> str:
    topic = f"bench-publisher-{uuid.uuid4().hex[:8]}"
    create_topics(settings.model_copy(update={"events_topic": topic}))
    return topic


@dataclass(frozen=True)
class Timing:
    """One path's run: wall time, and the CPU time of this process (caller and I/O thread)."""

    events: int
    wall_s: float
    cpu_s: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_s / self.events * 1e6


def _timed(events: int, run: Callable[[], None]) -> Timing:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return Timing(events, time.perf_counter() - wall, time.process_time() - cpu)


def sdk_run(settings: Settings, directory: Directory, messages: Messages, tuning: ProducerTuning) -> Timing:
    topic = _fresh_topic(settings)
    publisher = Publisher(
        kafka_python_kwargs(settings),
        topic,
        directory,
        tuning=tuning,
        metrics=PublisherMetrics.create(CollectorRegistry()),
    )
    publisher.send(messages.events[0]).get(timeout=30)  # connected, metadata cached: not timed

    def run() -> None:
        for event in messages.events:
            publisher.send(event)
        publisher.flush()

    try:
        return _timed(len(messages.events), run)
    finally:
        publisher.close()


def baseline_run(settings: Settings, messages: Messages) -> Timing:
    topic = _fresh_topic(settings)
    producer = KafkaProducer(bootstrap_servers=kafka_python_kwargs(settings)["bootstrap_servers"])
    producer.send(topic, messages.values[0], key=messages.keys[0]).get(timeout=30)

    def run() -> None:
        for key, value in zip(messages.keys, messages.values, strict=True):
            producer.send(topic, value, key=key)
        producer.flush()

    try:
        return _timed(len(messages.events), run)
    finally:
        producer.close()


SWEEP: dict[str, ProducerTuning] = {
    "default tuning (lz4, linger 20, 256 KiB)": ProducerTuning(),
    "no compression": ProducerTuning(compression_type=None),
    "gzip": ProducerTuning(compression_type="gzip"),
    "linger 5 ms": ProducerTuning(linger_ms=5),
    "linger 100 ms": ProducerTuning(linger_ms=100),
    "batch 64 KiB": ProducerTuning(batch_size=64 * 1024),
    "batch 1 MiB": ProducerTuning(batch_size=1024 * 1024),
    "1 request in flight": ProducerTuning(max_in_flight_requests_per_connection=1),
}


def _row(name: str, timings: list[Timing]) -> str:
    rates = " / ".join(f"{t.events_per_s:,.0f}" for t in timings)
    cpu = statistics.median(t.cpu_us_per_event for t in timings)
    return f"{name:<50}{statistics.median(t.events_per_s for t in timings):>12,.0f}{cpu:>10.1f}   {rates}"


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_publisher", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--events", type=int, default=500_000, help="events per run (default 500000)")
    parser.add_argument(
        "--bootstrap", default=None, help="an existing broker; default: start a throwaway one"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each path (default 3)")
    parser.add_argument("--sweep", action="store_true", help="also time the SDK under other producer tunings")
    parser.add_argument("--compression", default=None, help="override the SDK's codec (none, lz4, gzip)")
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the figures to this file (for benchmarks.run_all)"
    )
    args = parser.parse_args()

    directory = load_directory(EXAMPLE_DIRECTORY)
    tuning = ProducerTuning()
    if args.compression:
        tuning = replace(tuning, compression_type=None if args.compression == "none" else args.compression)
    print(f"generating {args.events:,} simulated events ...", flush=True)
    messages = generate(directory, args.events)
    megabytes = sum(map(len, messages.values)) / 1e6
    print(f"{args.events:,} events, {megabytes:.0f} MB of JSON, mean {megabytes * 1e6 / args.events:.0f} B")
    validation = validation_microseconds(directory, messages.events)

    with (
        tempfile.TemporaryDirectory(prefix="bench-publisher-") as home,
        throwaway_kafka(args.bootstrap, Path(home)) as settings,
    ):
        print(f"broker {settings.kafka_bootstrap_servers}; {machine()}", flush=True)
        sdk: list[Timing] = []
        baseline: list[Timing] = []
        for run in range(1, args.runs + 1):  # alternating, so a busy moment hurts both paths
            sdk.append(sdk_run(settings, directory, messages, tuning))
            baseline.append(baseline_run(settings, messages))
            print(
                f"run {run}: sdk {sdk[-1].events_per_s:>9,.0f} events/s   "
                f"baseline {baseline[-1].events_per_s:>9,.0f} events/s",
                flush=True,
            )
        variants = SWEEP if args.sweep else {}
        sweep = {name: sdk_run(settings, directory, messages, variant) for name, variant in variants.items()}
        finished = machine()

    sdk_rate = statistics.median(t.events_per_s for t in sdk)
    baseline_rate = statistics.median(t.events_per_s for t in baseline)
    print()
    print(f"publisher benchmark: {args.events:,} events x {args.runs} runs; after the runs: {finished}")
    print(f"{'path':<50}{'events/s':>12}{'CPU µs/ev':>10}   runs (events/s)")
    print(_row(f"sdk: validating Publisher ({tuning.compression_type})", sdk))
    print(_row("baseline: KafkaProducer defaults, pre-serialised", baseline))
    print(f"{'ratio sdk / baseline (median events/s)':<50}{sdk_rate / baseline_rate:>12.2f}")
    print(
        f"{'validation: validate_event with the directory':<50}{validation:>12.1f} µs/event, median of 5 passes"
    )
    verdict = "met" if sdk_rate >= TARGET_RATIO * baseline_rate else "NOT met"
    print(f"{f'target >= {TARGET_RATIO}x the baseline, with validation':<50}{verdict:>12}")
    if sweep:
        print()
        print(f"{'SDK tuning variant (one run each)':<50}{'events/s':>12}{'CPU µs/ev':>10}")
        for name, timing in sweep.items():
            print(_row(name, [timing]))
    if args.json:
        baseline_name = "KafkaProducer defaults, pre-serialised"
        write_json(
            args.json,
            "publisher",
            [
                figure(
                    f"validating Publisher ({tuning.compression_type}), median of {args.runs} runs",
                    sdk_rate,
                    "events/s",
                    better="higher",
                    baseline=baseline_rate,
                    baseline_name=baseline_name,
                    target=f">= {TARGET_RATIO}x the baseline",
                ),
                figure(
                    "validating Publisher: CPU per event, median",
                    statistics.median(t.cpu_us_per_event for t in sdk),
                    "µs/event",
                    better="lower",
                    baseline=statistics.median(t.cpu_us_per_event for t in baseline),
                    baseline_name=baseline_name,
                ),
                figure("validate_event with the directory", validation, "µs/event", better="lower"),
                *(
                    figure(f"SDK tuning: {name}", timing.events_per_s, "events/s", better="higher")
                    for name, timing in sweep.items()
                ),
            ],
            events=args.events,
            runs=args.runs,
        )


if __name__ == "__main__":
    main()
