"""The ClickHouse sink: effectively-once aggregates, idempotent side tables, offsets in ClickHouse.

:class:`ClickHouseSink` writes a batch in order: ``raw_events``, ``comments`` and
``request_facts`` (idempotent by their keys), then ``minute_buckets`` with the batch's aggregate
deltas and each partition's applied offset in ONE insert, the commit point; it reads the applied
offsets back on assignment. :class:`AsyncClickHouseSink` runs its calls on one thread (chdb has
no async client) and retries failures with :class:`RetryPolicy`. Why this is effectively once,
and what stays unguarded: docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from clickhouse_connect.driver.client import Client

from schemas.events import Event, FeedbackSubmitted, SurveyAnswered
from stream_processors.core import AGGREGATE_COLUMNS, FACT_COLUMNS, BucketKey, MinuteAggregate, RequestFact
from stream_processors.core.aggregates import merge_into
from stream_processors.core.backlog import UnansweredRequest
from stream_processors.core.redaction import Redactor

log = logging.getLogger(__name__)

T = TypeVar("T")

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
BUCKET_COLUMNS: Final = (
    "row_kind",
    "provider_department",
    "customer_department",
    "service_category",
    "bucket_start",
    "sink_topic",
    "sink_partition",
    "applied_offset",
    *AGGREGATE_COLUMNS,
)
RAW_EVENT_COLUMNS: Final = (
    "sink_topic",
    "sink_partition",
    "sink_offset",
    "event_id",
    "event_type",
    "occurred_at",
    "source",
    "provider_department",
    "customer_department",
    "service_category",
    "priority",
    "request_id",
    "payload",
    "ingested_at",
)
COMMENT_COLUMNS: Final = (
    "event_id",
    "event_type",
    "occurred_at",
    "provider_department",
    "customer_department",
    "service_category",
    "request_id",
    "score",
    "comment",
    "question_id",
    "campaign_id",
    "respondent",
)
_DEFAULT_REDACTOR: Final = Redactor()
_WITH_COMMENT: Final = (FeedbackSubmitted, SurveyAnswered)
_ZERO_AGGREGATE: Final = MinuteAggregate().to_row()
# Our inserts must be synchronous and unsplit: the atomicity argument needs one part per insert.
_INSERT_SETTINGS: Final = {"async_insert": 0, "insert_deduplicate": 1}

# The DateTime64(3) columns of the tables above: written as milliseconds since the epoch.
_MS_COLUMNS: Final = frozenset(
    {
        "occurred_at",
        "ingested_at",
        "opened_at",
        "first_response_at",
        "resolved_at",
        "closed_at",
        "last_event_at",
    }
)
_MS: Final = timedelta(milliseconds=1)


def _ms_column(values: Sequence[datetime | None]) -> list[int | None]:
    """Aware datetimes as whole milliseconds since the epoch (what clickhouse-connect writes for
    DateTime64(3) when given ints; its own conversion goes through float timestamps), None kept."""
    return [None if value is None else (value - EPOCH) // _MS for value in values]


# --- rows ----------------------------------------------------------------------------------------


def payload_without_comment(event: Event) -> bytes:
    """The canonical JSON of an event, its free-text comment left out (that goes to ``comments``)."""
    return event.__pydantic_serializer__.to_json(event, exclude_none=True, exclude={"comment"})


def raw_event_row(
    topic: str,
    partition: int,
    offset: int,
    event: Event,
    ingested_at: datetime,
    received: bytes | None = None,
) -> list[Any]:
    """A ``raw_events`` row. ``received``: the bytes the event was parsed from, stored as they are
    unless the event carries a comment (re-serialising was 7.5 % of the worker's CPU, py-spy;
    docs/benchmarks.md); replaying them with ``parse_event`` gives the same event."""
    # isinstance, not getattr(event, "comment", None): pydantic's __getattr__ raises and catches an
    # AttributeError for a missing field: 4 % of the handler's py-spy samples.
    if received is None or (isinstance(event, _WITH_COMMENT) and event.comment is not None):
        received = payload_without_comment(event)
    return [
        topic,
        partition,
        offset,
        event.event_id,
        event.event_type,
        event.occurred_at,
        event.source,
        event.provider_department,
        event.customer_department or "",  # an action may be for every customer
        event.service_category or "",
        event.priority or "",
        getattr(event, "request_id", ""),
        received,
        ingested_at,
    ]


def comment_row(event: Event, redactor: Redactor | None = None) -> list[Any] | None:
    """The redacted comment of a feedback or survey event (``redactor``: also the directory's
    people's names), or None when it has none or only whitespace."""
    if isinstance(event, FeedbackSubmitted):
        score = event.csat
    elif isinstance(event, SurveyAnswered):
        score = event.score
    else:
        return None
    if not event.comment or not event.comment.strip():
        return None
    survey = event if isinstance(event, SurveyAnswered) else None
    who = (survey.respondent_id if survey else None) or getattr(event, "request_id", "") or event.event_id
    return [
        event.event_id,
        event.event_type,
        event.occurred_at,
        event.provider_department,
        event.customer_department,
        event.service_category or "",
        getattr(event, "request_id", ""),
        score,
        (redactor or _DEFAULT_REDACTOR).redact(event.comment),
        (survey.question_id if survey else None) or "",
        (survey.campaign_id if survey else None) or "",
        respondent_hash(who),
    ]


def respondent_hash(respondent: str) -> str:
    """Who answered, pseudonymised: only distinctness is needed (the privacy minimum)."""
    return hashlib.blake2b(respondent.encode("utf-8"), digest_size=8).hexdigest()


def bucket_row(key: BucketKey, aggregate: MinuteAggregate) -> list[Any]:
    return [
        "bucket",
        key.provider_department,
        key.customer_department,
        key.service_category,
        key.bucket_start,
        "",
        -1,
        0,
        *aggregate.to_row(),
    ]


def offset_row(topic: str, partition: int, offset: int) -> list[Any]:
    return ["offset", "", "", "", EPOCH, topic, partition, offset, *_ZERO_AGGREGATE]


@dataclass
class SinkBatch:
    """Everything one batch writes; built by the agent, written by the sink in the documented order."""

    topic: str
    offset_ranges: dict[int, tuple[int, int]] = field(default_factory=dict)  # partition -> (first, last)
    raw_events: list[list[Any]] = field(default_factory=list)
    comments: list[list[Any]] = field(default_factory=list)
    facts: list[RequestFact] = field(default_factory=list)
    deltas: list[tuple[BucketKey, MinuteAggregate]] = field(default_factory=list)

    def add_offsets(self, partition: int, first: int, last: int) -> None:
        known = self.offset_ranges.get(partition)
        self.offset_ranges[partition] = (first, last) if known is None else (known[0], max(known[1], last))

    @property
    def dedup_token(self) -> str:
        """Names the batch: the same messages give the same token, so a retried insert is dropped."""
        ranges = ",".join(f"{p}:{first}-{last}" for p, (first, last) in sorted(self.offset_ranges.items()))
        return f"{self.topic}|{ranges}"

    def bucket_rows(self) -> list[list[Any]]:
        rows = [bucket_row(key, aggregate) for key, aggregate in self.deltas]
        rows.extend(offset_row(self.topic, p, last) for p, (_, last) in sorted(self.offset_ranges.items()))
        return rows


# --- the synchronous sink ------------------------------------------------------------------------


class ClickHouseSink:
    """Every read and write of the worker; synchronous, one client, one thread at a time."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def write_side_tables(self, batch: SinkBatch) -> dict[str, int]:
        """Step 1: the idempotent tables. Returns rows written per table."""
        written: dict[str, int] = {}
        if batch.raw_events:
            self._insert("raw_events", batch.raw_events, RAW_EVENT_COLUMNS, _INSERT_SETTINGS)
            written["raw_events"] = len(batch.raw_events)
        if batch.comments:
            self._insert("comments", batch.comments, COMMENT_COLUMNS, _INSERT_SETTINGS)
            written["comments"] = len(batch.comments)
        if batch.facts:
            self._insert("request_facts", batch.facts, FACT_COLUMNS, _INSERT_SETTINGS)  # facts are rows
            written["request_facts"] = len(batch.facts)
        return written

    def write_aggregates(self, batch: SinkBatch) -> int:
        """Step 3, the commit point: deltas and offsets in one atomic, deduplicated insert."""
        rows = batch.bucket_rows()
        settings = dict(_INSERT_SETTINGS, insert_deduplication_token=batch.dedup_token)
        self._insert("minute_buckets", rows, BUCKET_COLUMNS, settings)
        return len(rows)

    def _insert(
        self, table: str, rows: Sequence[Sequence[Any]], column_names: Sequence[str], settings: dict[str, Any]
    ) -> None:
        """One INSERT, handed to clickhouse-connect column by column: its row-to-column pass and its
        per-value datetime conversion were a fifth of the ClickHouse thread's time (py-spy)."""
        columns = [
            _ms_column(column) if name in _MS_COLUMNS else column
            for name, column in zip(column_names, zip(*rows, strict=True), strict=True)
        ]
        self.client.insert(table, columns, column_names=column_names, settings=settings, column_oriented=True)

    def batch_landed(self, batch: SinkBatch) -> bool:
        """True when every partition's applied offset already covers the batch (an earlier attempt landed)."""
        applied = self.applied_offsets(batch.topic)
        return all(applied.get(p, -1) >= last for p, (_, last) in batch.offset_ranges.items())

    def applied_offsets(self, topic: str) -> dict[int, int]:
        """partition -> offset of the last message whose effects are in ``minute_buckets``."""
        rows = self.client.query(
            "SELECT sink_partition, max(applied_offset) FROM minute_buckets "
            "WHERE row_kind = 'offset' AND sink_topic = {topic:String} GROUP BY sink_partition",
            parameters={"topic": topic},
        ).result_rows
        return {int(partition): int(offset) for partition, offset in rows}

    def applied_payloads(
        self, topic: str, partition: int, up_to: int, horizon: timedelta
    ) -> list[tuple[int, bytes]]:
        """(offset, canonical JSON) of the accepted events to replay into a partition's processor:
        those within ``horizon`` of the partition's newest event, plus every event of a request
        that has one there (a long-lived request needs its whole timeline), in offset order."""
        parameters = {"topic": topic, "partition": partition, "up_to": up_to}
        newest = self.client.query(
            "SELECT max(occurred_at), count() FROM raw_events WHERE sink_topic = {topic:String} "
            "AND sink_partition = {partition:UInt32} AND sink_offset <= {up_to:Int64}",
            parameters=parameters,
        ).result_rows
        if not newest or not newest[0][1]:
            return []
        since = newest[0][0].replace(tzinfo=UTC) - horizon
        where = "sink_topic = {topic:String} AND sink_partition = {partition:UInt32} AND sink_offset <= {up_to:Int64}"
        result = self.client.query(
            f"SELECT sink_offset, payload FROM raw_events WHERE {where} AND (occurred_at >= {{since:DateTime64(3, 'UTC')}} "
            f"OR request_id IN (SELECT request_id FROM raw_events WHERE {where} "
            "AND occurred_at >= {since:DateTime64(3, 'UTC')} AND request_id != '')) "
            "ORDER BY sink_offset LIMIT 1 BY sink_offset",
            parameters=parameters | {"since": since},
            column_formats={"payload": "bytes"},
        )
        return [(int(offset), bytes(payload)) for offset, payload in result.result_rows]

    def window_aggregates(self, since: datetime) -> list[tuple[str, str, MinuteAggregate]]:
        """(provider, customer, merged aggregate) over bucket rows from ``since`` on."""
        sums = ", ".join(
            f"sumMap({name})" if name.endswith("_hist") else f"sum({name})" for name in AGGREGATE_COLUMNS
        )
        rows = self.client.query(
            f"SELECT provider_department, customer_department, {sums} FROM minute_buckets "
            "WHERE row_kind = 'bucket' AND bucket_start >= {since:DateTime('UTC')} "
            "GROUP BY provider_department, customer_department",
            parameters={"since": since},
        ).result_rows
        return [(row[0], row[1], aggregate_from_row(row[2:])) for row in rows]

    def unanswered_requests(self, limit: int = 100_000) -> list[UnansweredRequest]:
        """Open requests without a first response (the newest snapshot of each), for the backlog gauge."""
        rows = self.client.query(
            "SELECT provider_department, customer_department, service_category, priority, opened_at, status "
            "FROM request_facts FINAL "
            "WHERE first_response_at IS NULL AND resolved_at IS NULL AND closed_at IS NULL "
            "LIMIT {limit:UInt32}",
            parameters={"limit": limit},
        ).result_rows
        return [UnansweredRequest(row[0], row[1], row[2], row[3], as_utc(row[4]), row[5]) for row in rows]


def as_utc(value: datetime) -> datetime:
    """clickhouse-connect returns naive datetimes for UTC columns; make them aware."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def aggregate_from_row(values: Sequence[Any]) -> MinuteAggregate:
    """A MinuteAggregate from column values in AGGREGATE_COLUMNS order (histogram keys as ints)."""
    converted: list[Any] = [
        {int(k): int(v) for k, v in value.items() if v} if isinstance(value, dict) else value
        for value in values
    ]
    return MinuteAggregate(*converted)


# --- the async wrapper with retries ------------------------------------------------------------


class Abandoned(Exception):
    """The batch was given up because its partitions were revoked or the worker is stopping."""


@dataclass
class RetryPolicy:
    """The one retry policy of ClickHouse calls: exponential backoff with jitter. Retry n (from 0)
    waits a uniformly drawn time between half and all of ``min(max_s, initial_s * factor**n)``, so
    workers that lost ClickHouse together do not come back in step, and none waits longer than
    ``max_s``."""

    initial_s: float = 0.2
    max_s: float = 10.0
    factor: float = 2.0
    draw: Callable[[], float] = field(default=random.random, repr=False)  # uniform in [0, 1)

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first)."""
        ceiling = min(self.max_s, self.initial_s * self.factor ** min(retry, 64))
        return ceiling * (0.5 + 0.5 * self.draw())


class AsyncClickHouseSink:
    """The sink for the event loop: calls run on one thread; failed writes are retried with
    backoff until they succeed or ``should_abandon()`` says the batch is no longer ours.

    While a write is being retried the agent does not take the next batch, so the consumer stops
    fetching once its bounded buffer is full: that is the backpressure when ClickHouse is down.
    """

    def __init__(
        self,
        sink: ClickHouseSink,
        on_error: Callable[[str, BaseException], None] | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.sink = sink
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        self._on_error = on_error or (lambda _step, _exc: None)
        self._policy = policy or RetryPolicy()
        self.attempt_lock = asyncio.Lock()  # held while a call is on the wire
        self.closing = False  # set at shutdown: reads stop retrying

    async def applied_offsets(self, topic: str) -> dict[int, int]:
        return await self.retrying(
            "read offsets", self.sink.applied_offsets, topic, should_abandon=self._closing
        )

    async def applied_payloads(
        self, topic: str, partition: int, up_to: int, horizon: timedelta
    ) -> list[tuple[int, bytes]]:
        return await self.retrying(
            "read events",
            self.sink.applied_payloads,
            topic,
            partition,
            up_to,
            horizon,
            should_abandon=self._closing,
        )

    async def window_aggregates(self, since: datetime) -> list[tuple[str, str, MinuteAggregate]]:
        """One attempt (the gauges refresh again soon); errors propagate."""
        return await self.call(self.sink.window_aggregates, since)

    async def unanswered_requests(self) -> list[UnansweredRequest]:
        """One attempt, like window_aggregates."""
        return await self.call(self.sink.unanswered_requests)

    def _closing(self) -> bool:
        return self.closing

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run one synchronous sink call on the ClickHouse thread (no retry)."""
        async with self.attempt_lock:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, function, *args)

    async def retrying(
        self, step: str, function: Callable[..., T], *args: Any, should_abandon: Callable[[], bool]
    ) -> T:
        """``call`` until it succeeds; raise :class:`Abandoned` when ``should_abandon()`` turns true."""
        retry = 0
        while True:
            if should_abandon():
                raise Abandoned(step)
            try:
                return await self.call(function, *args)
            except Exception as exc:  # any driver or server error: ClickHouse is down or refused
                self._on_error(step, exc)
                delay = self._policy.delay(retry)
                log.warning("ClickHouse %s failed (%s); retrying in %.1fs", step, _one_line(exc), delay)
                await _sleep_unless(delay, should_abandon)
                retry += 1

    async def write(
        self,
        batch: SinkBatch,
        should_abandon: Callable[[], bool],
        before_commit: Callable[[], Any] | None = None,
    ) -> dict[str, int]:
        """Write a batch in the documented order; ``before_commit`` (the dead-letter sends) is awaited
        between the side tables and the aggregate insert. Returns rows written per table."""
        written = await self.retrying(
            "side tables", self.sink.write_side_tables, batch, should_abandon=should_abandon
        )
        if before_commit is not None:
            await before_commit()
        retry = 0
        while True:
            if retry:
                landed = await self.retrying(
                    "read back", self.sink.batch_landed, batch, should_abandon=should_abandon
                )
                if landed:
                    break
            if should_abandon():
                raise Abandoned("aggregates")
            try:
                written["minute_buckets"] = await self.call(self.sink.write_aggregates, batch)
                break
            except Exception as exc:
                self._on_error("aggregates", exc)
                delay = self._policy.delay(retry)
                log.warning(
                    "ClickHouse aggregate insert failed (%s); checking and retrying in %.1fs", _one_line(exc), delay
                )
                await _sleep_unless(delay, should_abandon)
                retry += 1
        return written

    def close(self) -> None:
        """Wait for a call still on the ClickHouse thread, then close the client."""
        self.closing = True
        self._executor.shutdown(wait=True)
        self.sink.client.close()


async def _sleep_unless(seconds: float, should_abandon: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not should_abandon():
        await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def merge_deltas(
    items: Iterable[tuple[BucketKey, MinuteAggregate]],
) -> list[tuple[BucketKey, MinuteAggregate]]:
    """One delta per key (different partitions may touch the same bucket in one batch); the core
    never emits an all-zero delta, so only merged ones are checked."""
    merged: dict[BucketKey, MinuteAggregate] = {}
    summed: set[BucketKey] = set()
    for key, aggregate in items:
        target = merged.get(key)
        if target is None:
            merged[key] = aggregate
        elif key in summed:  # a total of our own already: add to it (the inputs stay unchanged)
            merge_into(target, aggregate)
        else:
            merged[key] = total = MinuteAggregate()
            merge_into(total, target)
            merge_into(total, aggregate)
            summed.add(key)
    return [
        (key, aggregate) for key, aggregate in merged.items() if key not in summed or not aggregate.is_zero()
    ]
