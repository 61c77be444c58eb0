"""Dead letters: what the worker will not count, sent to ``settings.dead_letter_topic`` with why.

The record's VALUE is the original message's bytes, untouched, and its KEY the original key, so
a dead letter can be fixed and re-published as is. Everything else travels in headers (the
original headers are kept after ours):

- ``deptpulse.reason``: decode | schema | unknown_department | late | future | orphan
- ``deptpulse.detail``: a one-line explanation naming the field
- ``deptpulse.source.topic`` / ``.partition`` / ``.offset``: where the message was read
- ``deptpulse.value``: ``original``, or ``canonical`` when the original bytes are no longer at
  hand (an event held for its request.opened since an earlier batch, or since before a restart,
  is sent as the canonical JSON of the parsed event)

Delivery is at-least-once: dead letters are sent (and acknowledged by the broker) before the
batch's aggregate insert, so a crash in between sends them again. Readers dedupe by
(source topic, partition, offset).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

HEADER_PREFIX = "deptpulse."


@dataclass(frozen=True)
class DeadLetterRecord:
    reason: str
    detail: str
    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = field(default_factory=tuple)
    original: bool = True

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        ours = [
            ("reason", self.reason),
            ("detail", self.detail[:1000]),
            ("source.topic", self.source_topic),
            ("source.partition", str(self.source_partition)),
            ("source.offset", str(self.source_offset)),
            ("value", "original" if self.original else "canonical"),
        ]
        return [(HEADER_PREFIX + name, value.encode("utf-8")) for name, value in ours] + list(self.headers)


def read_dead_letter(headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    """Our headers of a dead-letter record, without the prefix (for readers and tests)."""
    return {
        name[len(HEADER_PREFIX) :]: value.decode("utf-8")
        for name, value in headers
        if name.startswith(HEADER_PREFIX)
    }


class DeadLetterSender(Protocol):
    async def send_all(self, records: Sequence[DeadLetterRecord]) -> None:
        """Send every record and return once the broker has acknowledged all of them."""


class KafkaDeadLetterSender:
    """Sends dead letters with an idempotent aiokafka producer (acks=all)."""

    def __init__(self, producer: Any, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def send_all(self, records: Sequence[DeadLetterRecord]) -> None:
        futures = [
            await self._producer.send(
                self._topic, value=record.value, key=record.key, headers=record.kafka_headers()
            )
            for record in records
        ]
        for future in futures:
            await future
