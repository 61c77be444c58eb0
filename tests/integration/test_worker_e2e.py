"""`deptpulse worker` end to end: a real broker, the worker in a subprocess, embedded ClickHouse.

A generated mix (valid lifecycles and surveys, exact duplicates, replies sent before their open,
late, far-future and orphaned events, undecodable and invalid bytes, an unknown department) is
published; the aggregates in ClickHouse must equal a straightforward computation over the valid
events, the dead-letter topic must hold exactly the injected bad messages with their reasons, and
a run killed with SIGKILL twice and restarted must end with exactly the same minute aggregates
as an uninterrupted one.

chdb allows one process per data path, so ClickHouse is read after the worker stopped, in a
subprocess (this test process may hold another chdb path already).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from deptpulse.kafka_clients import kafka_python_kwargs
from deptpulse.settings import Settings
from deptpulse.stack import create_topics
from stream_processors.core import AGGREGATE_COLUMNS
from stream_processors.deadletter import read_dead_letter

pytestmark = pytest.mark.integration

PARTITIONS = 3
REPO = Path(__file__).resolve().parents[2]
DEPTPULSE = Path(sys.executable).with_name("deptpulse")
PAIRS = [("it", "finance", "it.access", "P2"), ("it", "hr", "it.hardware", "P3"), ("hr", "sales", "hr.payroll", "P3"),
         ("finance", "legal", None, "P2"), ("legal", "it", "legal.contracts", None)]


# --- the generated mix ----------------------------------------------------------------------------


@dataclass
class Message:
    partition: int
    key: bytes
    value: bytes
    bad_reason: str | None = None  # the dead-letter reason the worker must give, None for good ones


@dataclass
class Mix:
    messages: list[Message] = field(default_factory=list)
    valid: list[dict[str, Any]] = field(default_factory=list)  # distinct events that must be counted


def partition_of(key: str) -> int:
    return zlib.crc32(key.encode()) % PARTITIONS


def generate(seed: int, requests: int, start: datetime) -> Mix:
    rnd = random.Random(seed)
    mix = Mix()

    def body(event_type: str, request_id: str | None, at: datetime, pair: tuple[str, str, str | None, str | None],
             **extra: Any) -> dict[str, Any]:
        provider, customer, service, priority = pair
        event: dict[str, Any] = {
            "schema_version": 1, "event_id": uuid.UUID(int=rnd.getrandbits(128)).hex, "event_type": event_type,
            "occurred_at": at.isoformat(), "source": rnd.choice(["jira-sm", "zendesk"]),
            "provider_department": provider, "customer_department": customer,
        }
        if service:
            event["service_category"] = service
        if priority:
            event["priority"] = priority
        if request_id:
            event["request_id"] = request_id
        return event | extra

    def send(event: dict[str, Any], key: str, bad_reason: str | None = None) -> None:
        mix.messages.append(Message(partition_of(key), key.encode(), orjson.dumps(event), bad_reason))

    span_s = 6 * 3600
    for number in range(requests):
        request_id = f"R{seed}-{number}"
        pair = PAIRS[number % len(PAIRS)]
        opened_at = start + timedelta(seconds=rnd.randrange(span_s))
        lifecycle = [body("request.opened", request_id, opened_at, pair)]
        responded_at = opened_at + timedelta(seconds=rnd.randint(30, 5400))
        lifecycle.append(body("request.responded", request_id, responded_at, pair))
        if rnd.random() < 0.8:
            waiting = responded_at + timedelta(seconds=rnd.randint(10, 600))
            lifecycle.append(body("request.status_changed", request_id, waiting, pair, status="waiting_on_customer"))
            lifecycle.append(body("request.status_changed", request_id, waiting + timedelta(seconds=rnd.randint(10, 900)),
                                  pair, status="in_progress"))
            resolved_at = waiting + timedelta(seconds=rnd.randint(1000, 9000))
            lifecycle.append(body("request.resolved", request_id, resolved_at, pair))
            if rnd.random() < 0.7:
                comment = rnd.choice(["great, thanks", "call me on +49 170 1234567", "mail a.b@example.com", None])
                extra = {"csat": rnd.randint(1, 5)} | ({"comment": comment} if comment else {})
                lifecycle.append(body("feedback.submitted", request_id, resolved_at + timedelta(minutes=5), pair, **extra))
        if rnd.random() < 0.1:  # the reply overtakes its open on the wire
            lifecycle[0], lifecycle[1] = lifecycle[1], lifecycle[0]
        for event in lifecycle:
            send(event, request_id)
            mix.valid.append(event)
            if rnd.random() < 0.05:  # an exact re-send: one count
                send(event, request_id)
        if number % 7 == 0:
            survey_pair = PAIRS[rnd.randrange(len(PAIRS))]
            survey = body("survey.answered", None, opened_at, survey_pair, score=rnd.randint(0, 10))
            send(survey, survey_pair[0])
            mix.valid.append(survey)
    # Interleave as sources would: by time, roughly (offsets still follow the list order).
    mix.messages.sort(key=lambda m: orjson.loads(m.value)["occurred_at"])

    # The bad ones, each once, appended at the end so every partition's watermark is well ahead.
    pair = PAIRS[0]
    # A reply whose open never comes, first of all (no watermark yet: not late). It waits while it is
    # within the 48 h grace period of its partition's watermark, i.e. until the traffic passes
    # start + 2 h, and is then dead-lettered.
    orphan_at = start - timedelta(hours=46)
    send(body("request.responded", f"ORPHAN-{seed}", orphan_at, pair), f"ORPHAN-{seed}", "orphan")
    mix.messages.insert(0, mix.messages.pop())
    for index in range(PARTITIONS * 2):
        late_id = f"LATE-{seed}-{index}"
        send(body("request.opened", late_id, start - timedelta(days=3), pair), late_id, "late")
    future_id = f"FUTURE-{seed}"
    send(body("request.opened", future_id, datetime.now(UTC) + timedelta(days=2), pair), future_id, "future")
    unknown = body("request.opened", "UNKNOWN", start, pair) | {"provider_department": "marketing"}
    send(unknown, "UNKNOWN", "unknown_department")
    send(body("request.opened", "SCHEMA", start, pair) | {"priority": "P9"}, "SCHEMA", "schema")
    mix.messages.append(Message(partition_of("GARBAGE"), b"GARBAGE", b"\xff\xfe not json at all", "decode"))
    mix.messages.append(Message(partition_of("ARRAY"), b"ARRAY", b"[1, 2, 3]", "schema"))
    return mix


def expected_totals(mix: Mix) -> dict[tuple[str, str], dict[str, int]]:
    """Per (provider, customer): counts and wall-time sums, computed straight from the valid events."""
    totals: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    requests: dict[str, dict[str, datetime]] = defaultdict(dict)
    pair_of: dict[str, tuple[str, str]] = {}
    for event in mix.valid:
        pair = (event["provider_department"], event["customer_department"])
        at = datetime.fromisoformat(event["occurred_at"])
        kind = event["event_type"]
        if kind == "survey.answered":
            score = event["score"]
            totals[pair]["nps_promoters" if score >= 9 else "nps_passives" if score >= 7 else "nps_detractors"] += 1
            continue
        pair_of[event["request_id"]] = pair
        requests[event["request_id"]].setdefault(kind, at)
        if kind == "feedback.submitted":
            totals[pair][f"csat_{event['csat']}"] += 1
    for request_id, times in requests.items():
        counts = totals[pair_of[request_id]]
        opened = times["request.opened"]
        counts["requests_opened"] += 1
        counts["first_response_count"] += 1
        counts["first_response_wall_sum_s"] += int((times["request.responded"] - opened).total_seconds())
        if "request.resolved" in times:
            counts["requests_resolved"] += 1
            counts["resolution_count"] += 1
            counts["resolution_wall_sum_s"] += int((times["request.resolved"] - opened).total_seconds())
    return {pair: dict(counts) for pair, counts in totals.items()}


# --- running things -------------------------------------------------------------------------------


@dataclass
class Run:
    settings: Settings
    group: str
    home: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        s = self.settings
        return os.environ | {
            "DEPTPULSE_HOME": str(self.home),
            "DEPTPULSE_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
            "DEPTPULSE_EVENTS_TOPIC": s.events_topic,
            "DEPTPULSE_DEAD_LETTER_TOPIC": s.dead_letter_topic,
            "DEPTPULSE_EVENTS_PARTITIONS": str(PARTITIONS),
            "DEPTPULSE_WORKER_PORT": str(s.worker_port),
            "DEPTPULSE_CLICKHOUSE_PATH": str(self.home / "clickhouse"),
            "DEPTPULSE_CLICKHOUSE_DATABASE": "deptpulse",
        }

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(DEPTPULSE), "worker", "--group", self.group, "--loglevel", "info"],
                env=self.env(), cwd=self.home, stdout=log, stderr=subprocess.STDOUT,
            )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"worker did not stop on {sig!r}; log:\n{self.log.read_text()[-3000:]}") from None

    def query(self, sql: str) -> list[list[Any]]:
        """Rows of a query against the worker's chdb path, read in a subprocess."""
        script = (
            "import json,sys\nfrom deptpulse.settings import load_settings\n"
            "from stream_processors.storage import connect\n"
            "rows = connect(load_settings()).query(sys.argv[1]).result_rows\n"
            "print(json.dumps(rows, default=str))\n"
        )
        result = subprocess.run([sys.executable, "-c", script, sql], env=self.env(), capture_output=True, timeout=120,
                                check=False)
        assert result.returncode == 0, result.stderr.decode()[-3000:]
        rows: list[list[Any]] = json.loads(result.stdout)
        return rows


def publish(settings: Settings, mix: Mix) -> dict[int, int]:
    """Publish in order; returns partition -> end offset."""
    create_topics(settings)
    # lz4, as the Publisher writes: the worker must be able to read it (aiokafka needs cramjam).
    producer = KafkaProducer(**kafka_python_kwargs(settings), acks="all", linger_ms=10,
                             max_in_flight_requests_per_connection=1, compression_type="lz4")
    for message in mix.messages:
        producer.send(settings.events_topic, value=message.value, key=message.key, partition=message.partition)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(**kafka_python_kwargs(settings))
    ends = consumer.end_offsets([TopicPartition(settings.events_topic, p) for p in range(PARTITIONS)])
    consumer.close()
    return {tp.partition: offset for tp, offset in ends.items()}


def committed(settings: Settings, group: str) -> dict[int, int]:
    try:
        with KafkaAdminClient(**kafka_python_kwargs(settings)) as admin:
            offsets = admin.list_group_offsets(group).get(group, {})
    except KafkaError:  # the group's coordinator is not there yet
        return {}
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == settings.events_topic}


def wait_for_progress(run: Run, ends: dict[int, int], share: float, timeout: float = 240) -> None:
    goal = sum(ends.values()) * share
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert run.process is not None and run.process.poll() is None, run.log.read_text()[-3000:]
        done = committed(run.settings, run.group)
        if sum(done.values()) >= goal and (share < 1 or all(done.get(p, 0) >= end for p, end in ends.items())):
            return
        time.sleep(0.2)
    interesting = [line for line in run.log.read_text().splitlines() if "] [" in line and "Timer" not in line]
    raise AssertionError(
        f"worker made no progress to {share:.0%}: committed {committed(run.settings, run.group)}, ends {ends}; "
        "log:\n" + "\n".join(interesting[-40:])
    )


def scrape_until(run: Run, sample: str, timeout: float = 45) -> dict[str, float]:
    """The worker's /metrics as {name{sorted labels}: value}, once ``sample`` is there (gauges
    are refreshed from ClickHouse on a timer)."""
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{run.settings.worker_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        metrics: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                metrics[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        if sample in metrics or time.monotonic() > deadline:
            return metrics
        time.sleep(1)


def dead_letters(settings: Settings, timeout: float = 60) -> list[tuple[dict[str, str], bytes]]:
    """Every record of the dead-letter topic, read up to its end offsets."""
    consumer = KafkaConsumer(**kafka_python_kwargs(settings), group_id=None, enable_auto_commit=False)
    deadline = time.monotonic() + timeout
    while not (partitions := consumer.partitions_for_topic(settings.dead_letter_topic)):
        assert time.monotonic() < deadline, "no dead-letter topic"
        time.sleep(0.2)
    tps = [TopicPartition(settings.dead_letter_topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    ends = consumer.end_offsets(tps)
    records: list[tuple[dict[str, str], bytes]] = []
    while any(consumer.position(tp) < ends[tp] for tp in tps):
        assert time.monotonic() < deadline, "dead-letter topic not read to its end"
        for batch in consumer.poll(timeout_ms=1000).values():
            records.extend((read_dead_letter(record.headers), record.value) for record in batch)
    consumer.close()
    return records


BUCKET_QUERY = (
    "SELECT provider_department, customer_department, service_category, toString(bucket_start), "
    + ", ".join(f"toString({c})" if c.endswith("_hist") else c for c in AGGREGATE_COLUMNS)
    + " FROM minute_aggregates ORDER BY 1, 2, 3, 4"
)
PAIR_QUERY = (
    "SELECT provider_department, customer_department, "
    + ", ".join(f"sum({c})" for c in AGGREGATE_COLUMNS if not c.endswith("_hist"))
    + " FROM minute_aggregates GROUP BY 1, 2"
)


@pytest.fixture
def make_run(kafka_stack: Settings, tmp_path: Path) -> Iterator[Any]:
    runs: list[Run] = []

    def make(name: str) -> Run:
        from tests.integration.conftest import free_ports

        topic = f"e2e.{name}.{uuid.uuid4().hex[:8]}"
        settings = kafka_stack.model_copy(update={
            "events_topic": topic, "dead_letter_topic": f"{topic}.dlq", "events_partitions": PARTITIONS,
            "worker_port": free_ports(1)[0],
        })
        home = tmp_path / name
        home.mkdir()
        run = Run(settings, f"e2e-{name}-{uuid.uuid4().hex[:6]}", home, home / "worker.log")
        runs.append(run)
        return run

    yield make
    for run in runs:
        if run.process is not None and run.process.poll() is None:
            run.process.kill()
            run.process.wait()


def test_worker_counts_every_valid_event_once_and_dead_letters_exactly_the_bad_ones(make_run: Any) -> None:
    start = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    mix = generate(seed=7, requests=400, start=start)
    run = make_run("straight")
    ends = publish(run.settings, mix)

    run.start()
    wait_for_progress(run, ends, 1.0)
    metrics = scrape_until(run, 'deptpulse_csat_responses{customer_department="*",provider_department="it",window="7d"}')
    # The same timer sets the per-service gauges just after: IT's answers of the week by service.
    service_prefix = 'deptpulse_service_csat_responses{customer_department="*",provider_department="it",service_category='
    deadline = time.monotonic() + 45
    while not any(key.startswith(service_prefix) for key in metrics) and time.monotonic() < deadline:
        time.sleep(1)
        metrics = scrape_until(run, 'deptpulse_csat_responses{customer_department="*",provider_department="it",window="7d"}')
    opened_it = sum(c.get("requests_opened", 0) for (p, _), c in expected_totals(mix).items() if p == "it")
    # The read API the worker serves, and `deptpulse report` reading through it (chdb is held).
    url = f"http://127.0.0.1:{run.settings.worker_port}/api/v1/scorecard?provider=it&window=7d"
    with urllib.request.urlopen(url, timeout=30) as response:
        api_rows = json.loads(response.read())["rows"]
    report = subprocess.run([str(DEPTPULSE), "report", "--provider", "it", "--window", "7d", "--format", "json"],
                            env=run.env(), capture_output=True, timeout=120, check=False)
    run.stop()

    overall = [row for row in api_rows if row["customer_department"] is None]
    assert [row["requests_opened"] for row in overall] == [opened_it]
    assert report.returncode == 0, report.stderr.decode()[-2000:]
    assert json.loads(report.stdout) == api_rows

    assert sum(v for k, v in metrics.items() if k.startswith("deptpulse_events_total{")) == len(mix.messages)
    csat_it = sum(c.get(f"csat_{k}", 0) for (p, _), c in expected_totals(mix).items() if p == "it" for k in range(1, 6))
    assert metrics['deptpulse_csat_responses{customer_department="*",provider_department="it",window="7d"}'] == csat_it
    by_service = {k: v for k, v in metrics.items() if k.startswith(service_prefix) and k.endswith(',window="7d"}')}
    assert by_service and sum(by_service.values()) == csat_it, by_service
    assert metrics['deptpulse_dead_letters_total{reason="late"}'] == PARTITIONS * 2

    got = {(row[0], row[1]): row[2:] for row in run.query(PAIR_QUERY)}
    columns = [c for c in AGGREGATE_COLUMNS if not c.endswith("_hist")]
    expected = expected_totals(mix)
    assert set(got) == set(expected)
    for pair, counts in expected.items():
        actual = dict(zip(columns, got[pair], strict=True))
        for column, value in counts.items():
            assert actual[column] == value, (pair, column)
        assert actual["sla_met"] + actual["sla_breached"] <= counts.get("requests_resolved", 0)
    assert run.query("SELECT count() FROM raw_events FINAL") == [[len(mix.valid) + 1]]  # + the held orphan
    assert run.query("SELECT count() FROM comments WHERE comment LIKE '%@%' OR comment LIKE '%1234567%'") == [[0]]
    assert run.query("SELECT sink_partition, applied_offset FROM sink_offsets ORDER BY 1") == [
        [p, end - 1] for p, end in sorted(ends.items())
    ]

    letters = dead_letters(run.settings)
    bad = [m for m in mix.messages if m.bad_reason]
    assert Counter(h["reason"] for h, _ in letters) == Counter(m.bad_reason for m in bad), [
        (h["reason"], h["source.partition"], h["source.offset"], v[:60]) for h, v in letters]
    by_value = {m.value: m.bad_reason for m in bad}
    for headers, letter in letters:
        assert headers["source.topic"] == run.settings.events_topic
        if headers["reason"] == "orphan":
            assert headers["detail"] == "orphan: no open within the grace period"
        if headers["value"] == "original":
            assert by_value[letter] == headers["reason"]
        else:  # the orphan, held since an earlier batch: its canonical JSON
            assert headers["reason"] == "orphan" and orjson.loads(letter)["request_id"].startswith("ORPHAN")


def test_a_worker_killed_twice_mid_stream_ends_with_the_same_aggregates_as_an_uninterrupted_one(make_run: Any) -> None:
    start = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    mix = generate(seed=11, requests=3000, start=start)
    straight, killed = make_run("reference"), make_run("killed")
    ends = publish(straight.settings, mix)
    assert publish(killed.settings, mix) == ends

    straight.start()
    killed.start()
    wait_for_progress(killed, ends, 0.2)
    killed.stop(signal.SIGKILL)
    killed.start()
    wait_for_progress(killed, ends, 0.6)
    killed.stop(signal.SIGKILL)
    killed.start()
    wait_for_progress(straight, ends, 1.0)
    wait_for_progress(killed, ends, 1.0)
    time.sleep(1)
    straight.stop()
    killed.stop()

    reference = straight.query(BUCKET_QUERY)
    assert reference, "the reference run wrote nothing"
    assert killed.query(BUCKET_QUERY) == reference
    for run in (straight, killed):
        got = {(row[0], row[1]): row[2:] for row in run.query(PAIR_QUERY)}
        columns = [c for c in AGGREGATE_COLUMNS if not c.endswith("_hist")]
        for pair, counts in expected_totals(mix).items():
            actual = dict(zip(columns, got[pair], strict=True))
            assert {c: actual[c] for c in counts} == counts, pair
    # At-least-once: a restart may resend a dead letter, never lose one.
    sources = {(h["source.partition"], h["source.offset"]) for h, _ in dead_letters(killed.settings)}
    assert len(sources) == sum(1 for m in mix.messages if m.bad_reason)
