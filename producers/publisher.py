"""The publisher SDK: the one Kafka producer of deptpulse, for integrations, the simulator and imports.

Every event is validated against the department directory before it is sent, so nothing
invalid reaches the topic; the value is the canonical JSON encoding, the key the event's
``partition_key`` (the request id; the provider department for surveys), and two headers say
``schema_version`` and ``source``. Delivery is acks=all and idempotent; failures surface
through the returned futures and through :meth:`Publisher.flush`, which raises
:class:`DeliveryError` when any send since the previous flush failed::

    with Publisher.from_settings(settings, directory) as publisher:
        for event in events:
            publisher.send(event)      # InvalidEvent: nothing was sent
        publisher.flush()              # DeliveryError: count and first error
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import TracebackType
from typing import Any, Final

from kafka import KafkaProducer
from kafka.codec import has_lz4, has_zstd
from kafka.errors import KafkaError, KafkaTimeoutError, UnknownError
from kafka.partitioner.abc import Partitioner
from prometheus_client import CollectorRegistry, Counter, Histogram

from deptpulse.kafka_clients import kafka_python_kwargs
from deptpulse.settings import Settings
from schemas import metric_names
from schemas.directory import Directory
from schemas.events import (
    SCHEMA_VERSION,
    Event,
    InvalidEvent,
    event_to_json,
    parse_event,
    validate_event,
)

__all__ = [
    "DeliveryError",
    "InvalidEvent",
    "ProducerTuning",
    "Publisher",
    "PublisherError",
    "PublisherMetrics",
    "best_compression",
]


def best_compression() -> str:
    """The codec to use: kafka-python 3.0 has lz4 and zstd only through optional packages.

    zstd needs ``zstandard`` (``backports.zstd`` is not used by kafka-python 3.0.12); lz4 comes
    with ``lz4``, which we install. gzip always works but costs several times lz4's CPU.
    """
    if has_lz4():
        return "lz4"
    if has_zstd():
        return "zstd"
    return "gzip"


@dataclass(frozen=True)
class ProducerTuning:
    """Producer knobs, measured with ``python -m benchmarks.bench_publisher`` (see its docstring).

    kafka-python 3 has no ``buffer_memory``: the accumulator is bounded by ``max_block_ms``
    waiting for metadata and by batch turnover, not by a byte budget.
    """

    linger_ms: int = 20
    batch_size: int = 256 * 1024
    compression_type: str | None = field(default_factory=best_compression)
    # Idempotence keeps ordering with up to 5 requests in flight per connection.
    max_in_flight_requests_per_connection: int = 5
    # How long the constructor waits for a first broker, and send() for topic metadata.
    connect_timeout_ms: int = 10_000
    max_block_ms: int = 10_000

    def producer_kwargs(self) -> dict[str, Any]:
        return {
            "linger_ms": self.linger_ms,
            "batch_size": self.batch_size,
            "compression_type": self.compression_type,
            "max_in_flight_requests_per_connection": self.max_in_flight_requests_per_connection,
            "bootstrap_timeout_ms": self.connect_timeout_ms,
            "max_block_ms": self.max_block_ms,
        }


@dataclass(frozen=True)
class PublisherMetrics:
    """Prometheus metrics of a publisher, registered in the registry given to :meth:`create`."""

    events: Counter
    value_bytes: Counter
    flush_seconds: Histogram

    @classmethod
    def create(
        cls, registry: CollectorRegistry | None, prefix: str = metric_names.PUBLISHER_PREFIX
    ) -> PublisherMetrics:
        """Register the metrics in ``registry`` (None: a private registry nobody scrapes)."""
        registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        return cls(
            events=Counter(
                f"{prefix}_events_total",
                "Events by outcome: delivered (acknowledged), failed (delivery error), invalid (refused).",
                ["outcome"],
                registry=registry,
            ),
            value_bytes=Counter(
                f"{prefix}_value_bytes_total",
                "Bytes of canonical event JSON handed to the Kafka producer.",
                registry=registry,
            ),
            flush_seconds=Histogram(
                f"{prefix}_flush_seconds",
                "Time flush() waited for outstanding events to be acknowledged.",
                registry=registry,
                buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30),
            ),
        )


class PublisherError(Exception):
    """Kafka cannot be reached or does not answer in time; the message says where and how long."""


class DeliveryError(PublisherError):
    """Some events were not acknowledged: ``count`` of them since the last flush, the first error."""

    def __init__(self, count: int, first_error: BaseException) -> None:
        super().__init__(f"{count} event(s) failed delivery; first error: {_describe(first_error)}")
        self.count = count
        self.first_error = first_error


class _KeyHashPartitioner(Partitioner):  # type: ignore[misc]  # kafka-python is untyped
    """The Java client's keyed partitioning, murmur2(key) % partitions, computed faster.

    kafka-python's murmur2 costs about a tenth of a send; :func:`murmur2` below gives the same
    hashes (checked against it in tests) in half the time, and a request's 4-8 events share a key,
    so recent keys are memoised.
    """

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: Any,
        cluster: Any,
    ) -> int:
        partitions: set[int] = cluster.partitions_for_topic(topic)
        if serialized_key is None:  # never from Publisher: every event has a key
            return min(partitions)
        return _positive_murmur2(bytes(serialized_key)) % len(partitions)


_MURMUR_M: Final = 0x5BD1E995
_U32: Final = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (Java ``Utils.murmur2``, seed 0x9747b28c) as an unsigned 32-bit int."""
    length = len(data)
    h = 0x9747B28C ^ length
    for word in struct.unpack_from(f"<{length >> 2}I", data):
        word = (word * _MURMUR_M) & _U32
        word ^= word >> 24
        h = ((h * _MURMUR_M) & _U32) ^ ((word * _MURMUR_M) & _U32)
    tail = length & 3
    if tail:
        base = length - tail
        if tail == 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h = ((h ^ data[base]) * _MURMUR_M) & _U32
    h ^= h >> 13
    h = (h * _MURMUR_M) & _U32
    return h ^ (h >> 15)


@lru_cache(maxsize=1 << 16)
def _positive_murmur2(key: bytes) -> int:
    return murmur2(key) & 0x7FFFFFFF


_SCHEMA_VERSION_HEADER: Final = ("schema_version", str(SCHEMA_VERSION).encode())


class Publisher:
    """Validates events against the directory and publishes them to one topic."""

    def __init__(
        self,
        kafka: Mapping[str, Any],
        topic: str,
        directory: Directory,
        *,
        metrics: PublisherMetrics | None = None,
        tuning: ProducerTuning | None = None,
        client_id: str = "deptpulse-publisher",
        **producer_overrides: Any,
    ) -> None:
        """``kafka``: connection arguments (``deptpulse.kafka_clients.kafka_python_kwargs``); overrides win last."""
        self.topic = topic
        self.directory = directory
        self.metrics = metrics or PublisherMetrics.create(None)
        config: dict[str, Any] = {
            **(tuning or ProducerTuning()).producer_kwargs(),
            **kafka,
            "client_id": client_id,
            "acks": "all",
            "enable_idempotence": True,
            "partitioner": _KeyHashPartitioner(),
            **producer_overrides,
        }
        self._servers = config.get("bootstrap_servers")
        try:
            self._producer = KafkaProducer(**config)
        except KafkaError as exc:
            raise PublisherError(f"cannot connect to Kafka at {self._servers}: {_describe(exc)}") from exc
        self._headers: dict[str, list[tuple[str, bytes]]] = {}
        self._delivered = self.metrics.events.labels("delivered")
        self._failed_metric = self.metrics.events.labels("failed")
        self._invalid = self.metrics.events.labels("invalid")
        self._lock = threading.Lock()
        self._failed = 0
        self._first_error: BaseException | None = None
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings, directory: Directory, **kwargs: Any) -> Publisher:
        """A publisher to ``settings.events_topic`` with the settings' connection arguments."""
        return cls(kafka_python_kwargs(settings), settings.events_topic, directory, **kwargs)

    def validate(self, event: Event | Mapping[str, Any] | bytes | str) -> Event:
        """The event validated against the directory: JSON text is parsed, values are re-validated."""
        try:
            if isinstance(event, bytes | bytearray | str):
                return parse_event(event, self.directory)
            return validate_event(event, self.directory)
        except InvalidEvent:
            self._invalid.inc()
            raise

    def send(self, event: Event | Mapping[str, Any] | bytes | str) -> Any:
        """Validate and enqueue one event; return kafka-python's future of its record metadata.

        Raises :class:`InvalidEvent` (nothing sent) or :class:`PublisherError` (e.g. no metadata
        for the topic within ``max_block_ms``). Delivery errors arrive later: on the future, and
        as :class:`DeliveryError` from :meth:`flush`.
        """
        valid = self.validate(event)
        value = event_to_json(valid)
        try:
            future = self._producer.send(
                self.topic, value, key=valid.partition_key.encode(), headers=self._headers_for(valid.source)
            )
        except KafkaTimeoutError as exc:
            raise PublisherError(f"Kafka at {self._servers} did not answer: {_describe(exc)}") from exc
        except KafkaError as exc:  # e.g. the producer hit a fatal error earlier
            raise PublisherError(f"cannot send to Kafka at {self._servers}: {_describe(exc)}") from exc
        self.metrics.value_bytes.inc(len(value))
        future.add_callback(self._on_delivered)
        future.add_errback(self._on_failed)
        return future

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every enqueued event is acknowledged or failed; raise :class:`DeliveryError`."""
        started = time.perf_counter()
        try:
            self._flush_producer(started, timeout)
        except KafkaTimeoutError as exc:
            raise PublisherError(f"flush did not complete within {timeout} s: {_describe(exc)}") from exc
        except KafkaError as exc:
            raise PublisherError(f"flush failed: {_describe(exc)}") from exc
        finally:
            self.metrics.flush_seconds.observe(time.perf_counter() - started)
        with self._lock:
            failed, first_error = self._failed, self._first_error
            self._failed, self._first_error = 0, None
        if failed:
            assert first_error is not None
            raise DeliveryError(failed, first_error)

    def _flush_producer(self, started: float, timeout: float | None) -> None:
        # kafka-python 3.0.12 splits a batch the broker refuses as too large and re-sends the
        # halves, but a flush waiting on the original batch then raises UnknownError('Future not
        # done'); waiting again covers the halves.
        while True:
            remaining = None if timeout is None else max(0.0, timeout - (time.perf_counter() - started))
            try:
                self._producer.flush(remaining)
                return
            except UnknownError as exc:
                if "Future not done" not in str(exc) or remaining == 0.0:
                    raise

    def close(self, timeout: float | None = None) -> None:
        """Flush (raising any delivery error) and close the producer; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush(timeout)
        finally:
            self._producer.close(timeout)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
        else:  # keep the body's exception; do not wait for a broker that may be the cause
            self._closed = True
            self._producer.close(0)

    def _headers_for(self, source: str) -> list[tuple[str, bytes]]:
        headers = self._headers.get(source)
        if headers is None:
            headers = self._headers[source] = [_SCHEMA_VERSION_HEADER, ("source", source.encode())]
        return headers

    # Callbacks run on kafka-python's I/O thread.
    def _on_delivered(self, _metadata: Any) -> None:
        self._delivered.inc()

    def _on_failed(self, error: BaseException) -> None:
        self._failed_metric.inc()
        with self._lock:
            self._failed += 1
            if self._first_error is None:
                self._first_error = error


def _describe(error: BaseException) -> str:
    text = str(error)
    name = type(error).__name__
    return text if name in text else f"{name}: {text}" if text else name
