"""`deptpulse demo`: the main job, end to end on the local stack, with live progress.

Composition only: every step calls the packages (stack, publisher, ...). It starts what is not
running, remembers what it started, and stops exactly that at the end unless asked to keep it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from rich.console import Console

from deptpulse.settings import Settings
from deptpulse.stack import SERVICES, LocalStack, create_topics
from producers.publisher import Publisher
from schemas.directory import load_directory
from schemas.events import RequestOpened, event_to_json


class Demo:
    """One run of the demo; `run()` does it all and always cleans up what it started."""

    def __init__(self, settings: Settings, console: Console, keep_running: bool = False) -> None:
        self.settings = settings
        self.console = console
        self.keep_running = keep_running
        self.stack = LocalStack(settings)
        self.started: list[str] = []

    def run(self) -> None:
        started_at = time.monotonic()
        try:
            self.step("Starting the local stack (Kafka, Alertmanager, Prometheus)", self.start_stack)
            self.step("Creating the topics", self.create_topics)
            self.step("Publishing a real event and consuming it back", self.round_trip)
            self.print_status()
        finally:
            if self.keep_running:
                self.console.print("[bold]--keep-running[/]: the stack stays up; `deptpulse stack down` stops it.")
            elif self.started:
                self.step(f"Stopping what the demo started ({', '.join(self.started)})", self.stop_stack)
        self.console.print(f"[green]demo finished in {time.monotonic() - started_at:.0f} s[/]")

    @contextmanager
    def _progress(self, title: str) -> Iterator[None]:
        self.console.print(f"[bold cyan]▶ {title}[/]")
        began = time.monotonic()
        yield
        self.console.print(f"  [dim]done in {time.monotonic() - began:.1f} s[/]")

    def step(self, title: str, action: Callable[[], None]) -> None:
        with self._progress(title):
            action()

    def start_stack(self) -> None:
        for result in self.stack.up(SERVICES):
            if not result.already_running:
                self.started.append(result.name)
            state = "already running" if result.already_running else f"started in {result.seconds:.1f} s"
            self.console.print(f"  {result.name}: {state} (pid {result.pid})")

    def stop_stack(self) -> None:
        self.stack.down(tuple(self.started))

    def create_topics(self) -> None:
        created = create_topics(self.settings)
        self.console.print(f"  {', '.join(created) if created else 'topics already there'}")

    def round_trip(self) -> None:
        directory = load_directory(self.settings.directory_path)
        event = RequestOpened(
            schema_version=1,
            event_id=f"demo-{uuid.uuid4()}",
            event_type="request.opened",
            occurred_at=datetime.now(UTC),
            source="demo",
            provider_department="it",
            customer_department="finance",
            request_id=f"DEMO-{uuid.uuid4().hex[:8]}",
            service_category="it.access",
            priority="P3",
        )
        with Publisher.from_settings(self.settings, directory) as publisher:
            metadata = publisher.send(event).get(timeout=30)
            publisher.flush()
        self.console.print(f"  published {event.event_id} to partition {metadata.partition} offset {metadata.offset}")
        consumed = _consume_one(self.settings, metadata.partition, metadata.offset)
        if consumed != event_to_json(event):
            raise RuntimeError("the consumed message differs from the published event")
        self.console.print("  consumed it back: identical canonical JSON")

    def print_status(self) -> None:
        self.console.print("[bold cyan]▶ Stack status[/]")
        for row in self.stack.status():
            answers = {True: "[green]answers[/]", False: "[red]does not answer[/]", None: ""}[row.answering]
            self.console.print(f"  {row.name:<13} {row.address:<40} {answers}")


def _consume_one(settings: Settings, partition: int, offset: int) -> bytes:
    """Read the message at (events topic, partition, offset) with a plain kafka-python consumer."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**settings.kafka_client_kwargs(), enable_auto_commit=False, consumer_timeout_ms=10_000)
    try:
        topic_partition = TopicPartition(settings.events_topic, partition)
        consumer.assign([topic_partition])
        consumer.seek(topic_partition, offset)
        for message in consumer:
            value: bytes = message.value
            return value
    finally:
        consumer.close()
    raise RuntimeError(f"no message at {settings.events_topic}[{partition}]@{offset} within 10 s")
