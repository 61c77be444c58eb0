"""The worker's Faust app: composition only (the logic is in agents, sinks and the core).

``create_app(settings, worker_id)`` returns a :class:`faust.App` whose web server (bound to
``settings.bind_host:settings.worker_port``) serves ``/metrics``, whose data directory is
``<home>/worker/<worker_id>``, and which runs, as a Faust task, the events agent: the aiokafka
consumer group ``deptpulse-worker`` on ``settings.events_topic`` feeding
:class:`~stream_processors.agents.BatchHandler` (why not a Faust stream: docs/architecture.md).
A timer refreshes the business gauges (and the SLA verdicts of the burn-rate windows, the
first-response backlog and the requests at risk of an SLA breach) from
ClickHouse.
"""

from __future__ import annotations

import gc
import logging
from datetime import UTC, datetime
from typing import Any, cast

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from clickhouse_connect.driver.client import Client
from faust.app.base import BootStrategy
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from deptpulse.kafka_clients import aiokafka_kwargs, faust_credentials
from deptpulse.settings import Settings
from schemas.directory import load_directory
from stream_processors.access.rules import ReadAccess
from stream_processors.actions.measuring import ClickHouseActions
from stream_processors.agents import BatchHandler, EventsConsumer
from stream_processors.at_risk.reading import running_requests
from stream_processors.core.at_risk import at_risk, at_risk_counts
from stream_processors.core.backlog import past_first_response_target
from stream_processors.deadletter import KafkaDeadLetterSender
from stream_processors.metrics import (
    BURN_WINDOWS,
    ActionGauge,
    AtRiskGauge,
    BacklogGauge,
    BusinessGauges,
    Metrics,
    ServiceGauges,
    SlaVerdictGauges,
    window_starts,
)
from stream_processors.reads import Reads
from stream_processors.scorecard.read_api import register_faust_views
from stream_processors.sinks.breakdowns import service_aggregates, sla_verdicts
from stream_processors.sinks.clickhouse import AsyncClickHouseSink, ClickHouseSink
from stream_processors.storage import connect, migrate

log = logging.getLogger(__name__)

CONSUMER_GROUP = "deptpulse-worker"
GAUGES_REFRESH_SECONDS = 15.0
GC_THRESHOLDS = (100_000, 50, 1000)
PAIR_LIMIT = 200  # per-pair business series at most; every provider always has its "*" series


def events_clients(
    settings: Settings, group: str, worker_id: str
) -> tuple[AIOKafkaConsumer, AIOKafkaProducer]:
    """The events agent's Kafka clients, built on the running loop: its consumer (offsets committed
    by the agent, the worker's fetch sizes) and its dead-letter producer (acks=all, idempotent)."""
    kafka = aiokafka_kwargs(settings)
    producer = AIOKafkaProducer(**kafka, acks="all", enable_idempotence=True, linger_ms=5)
    consumer = AIOKafkaConsumer(
        **kafka,
        group_id=group,
        client_id=f"{group}-{worker_id}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.worker_batch_max_events,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    return consumer, producer


class _WorkerBoot(BootStrategy):
    """Faust's own Kafka consumer and producer stay off: the events agent has its own (see
    :mod:`stream_processors.agents`), and an idle Faust group member would only delay restarts
    (a killed member holds the group until Faust's 60 s session timeout)."""

    enable_kafka_consumer = False
    enable_kafka_producer = False


class WorkerApp(faust.App):
    BootStrategy = _WorkerBoot


def create_app(
    settings: Settings,
    worker_id: str = "1",
    registry: CollectorRegistry | None = None,
    group: str = CONSUMER_GROUP,
    pair_limit: int = PAIR_LIMIT,
    read_access: ReadAccess | None = None,
) -> faust.App:
    """The worker app; run it with ``app.main()`` (``deptpulse worker`` does). ``read_access``: who
    reads the read API (``deptpulse worker`` loads the heads file); by default the settings' rule
    with no secrets resolved, so a configured heads file refuses to start."""
    registry = registry or CollectorRegistry()
    metrics = Metrics.create(registry)
    datadir = (settings.home / "worker" / worker_id).resolve()
    datadir.mkdir(parents=True, exist_ok=True)
    app = WorkerApp(
        f"{group}-app",
        broker=";".join(f"kafka://{server}" for server in settings.kafka_bootstrap_servers.split(",")),
        broker_credentials=faust_credentials(settings),
        web_enabled=True,
        web_bind=settings.bind_host,
        web_port=settings.worker_port,
        web_host=settings.bind_host,
        datadir=str(datadir),
        topic_partitions=settings.events_partitions,
        producer_acks=-1,
    )
    runtime: dict[str, Any] = {}
    gauges = BusinessGauges(metrics, pair_limit=pair_limit)
    backlog = BacklogGauge(metrics)
    at_risk_gauge = AtRiskGauge(metrics)
    services = ServiceGauges(metrics)
    actions = ActionGauge(metrics)
    verdicts = SlaVerdictGauges(metrics)
    directory = load_directory(settings.directory_path)
    read_access = read_access or ReadAccess.configured(
        directory,
        bind_host=settings.bind_host,
        heads_path=settings.read_api_heads_path,
        environ={},
        trusted_user_header=settings.read_api_trusted_user_header,
    )

    @app.task  # type: ignore[untyped-decorator]
    async def events_agent() -> None:
        """Consume the events topic until the worker stops."""
        # The processors hold millions of long-lived objects; the default GC thresholds make the
        # collector walk them every few thousand allocations (measured: 13k -> 20k events/s).
        gc.set_threshold(*GC_THRESHOLDS)
        client = connect(settings)
        applied = migrate(client)
        if applied:
            log.info("applied ClickHouse migrations %s", [m.version for m in applied])
        sink = AsyncClickHouseSink(
            ClickHouseSink(client), on_error=lambda _step, _exc: metrics.sink_errors.inc()
        )
        runtime["sink"] = sink
        consumer, producer = events_clients(settings, group, worker_id)
        handler = BatchHandler(
            settings.events_topic,
            directory,
            sink,
            KafkaDeadLetterSender(producer, settings.dead_letter_topic),
            metrics,
        )
        events = EventsConsumer(
            consumer, handler, metrics, settings.worker_batch_max_events, settings.worker_batch_wait_seconds
        )
        runtime["events"] = events
        await producer.start()
        events.subscribe()
        await consumer.start()
        try:
            await events.run()
        except Exception as exc:  # a bug, not bad input (that is a dead letter): stop, let it restart
            log.exception("events agent crashed; stopping the worker")
            await app.crash(exc)
            raise
        finally:
            await events.stop()
            await consumer.stop()
            await producer.stop()
            sink.close()

    @app.timer(interval=GAUGES_REFRESH_SECONDS)  # type: ignore[untyped-decorator]
    async def refresh_business_gauges() -> None:
        sink = runtime.get("sink")
        if sink is None:
            return
        try:
            now = datetime.now(UTC)
            starts = window_starts(now)
            for window, since in starts.items():
                gauges.update(window, await sink.window_aggregates(since))
            by_service = await sink.call(service_aggregates, sink.sink.client, starts)
            for window in starts:
                services.update(window, by_service.get(window, []), gauges.pairs(window))
            verdicts.update(await sink.call(sla_verdicts, sink.sink.client, window_starts(now, BURN_WINDOWS)))
            backlog.update(past_first_response_target(await sink.unanswered_requests(), directory, now))
            running = await sink.call(running_requests, sink.sink.client)
            at_risk_gauge.update(at_risk_counts(at_risk(running, directory, now)))
            actions.update(await sink.call(ClickHouseActions(sink.sink.client).actions), now)
        except Exception as exc:  # ClickHouse down: keep the last values, try again next time
            log.warning("business gauges not refreshed: %s", exc)

    # The read API (deptpulse report, comments, themes... read through it while the worker holds chdb).
    # One client of its own, used only by the read API's one thread.
    read_services = Reads.over(cast(Client, _LazyClient(settings)), directory, settings)
    register_faust_views(
        app,
        read_services.scorecard,
        endpoints=read_services.endpoints(),
        page=read_services.page(),
        access=read_access,
    )

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/healthz")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"worker_id": worker_id, "running": "events" in runtime})

    return app


class _LazyClient:
    """The read API's ClickHouse client, connected on the first query rather than when the app is
    built (its queries run on the read API's own thread)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Client | None = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = connect(self._settings)
        return getattr(self._client, name)
