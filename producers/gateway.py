"""The ingestion gateway: authenticated HTTP webhooks from ticketing and HR systems into Kafka.

``create_app(settings, directory, integrations, publisher)`` returns the FastAPI app; the
``deptpulse gateway`` command serves it with uvicorn. Admission (credentials, replay window,
rate limits) lives in :mod:`producers.gateway_auth`, the integrations file in
:mod:`producers.integrations`, payload conversion in :mod:`producers.sources`.

A request is answered 202 only once Kafka has acknowledged (acks=all) every one of its events.
kafka-python is synchronous, and the loop never waits on it: acks arrive through the record
futures' callbacks (one loop wake-up per request), and ``send()`` runs on a thread pool until
the producer has the topic's metadata. After that ``send()`` cannot block (kafka-python 3 has no
buffer-memory wait; it blocks only to fetch missing metadata), so it runs on the loop: a thread
hop per request cost ~110 µs of CPU, ~40 % of a request, in measurements on this 2-core machine.
If metadata goes missing again (the topic deleted), one send may hold the loop for up to
``max_block_ms`` (1 s in :data:`GATEWAY_TUNING`), and sends go back to the pool.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import orjson
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, Field

from deptpulse.settings import Settings
from producers.gateway_auth import Admission, Caller, Refused
from producers.integrations import WEBHOOK_SOURCES, Integrations
from producers.publisher import ProducerTuning, Publisher, PublisherError, PublisherMetrics
from producers.sources import ADAPTERS, Adapter, AdapterError
from schemas import metric_names
from schemas.directory import Directory, UnmappedValue
from schemas.events import EVENT_ADAPTER, Event, InvalidEvent, parse_event

log = logging.getLogger(__name__)

EVENTS_ROUTE: Final = "/v1/events"
_READY_CACHE_SECONDS: Final = 1.0


class EventPublisher(Protocol):
    """What the gateway needs of :class:`producers.publisher.Publisher` (tests pass a fake)."""

    def send(self, event: Event) -> Any:
        """Enqueue one event; return kafka-python's future (``add_callback`` / ``add_errback``)."""
        ...


# --- responses --------------------------------------------------------------------------------


class Accepted(BaseModel):
    """Every event of the request is in Kafka (acknowledged by all in-sync replicas)."""

    accepted: int = Field(description="Number of events written.")
    event_ids: list[str] = Field(description="Their event ids, in request order.")


class Rejection(BaseModel):
    index: int | None = Field(description="Position in the batch; null for a single event or a webhook.")
    event_id: str | None = Field(default=None, description="The event's id when it could be read.")
    reason: str = Field(description="What is wrong, naming the field.")


class Problem(BaseModel):
    """A refused request: nothing of it was accepted."""

    error: str
    rejected: list[Rejection] = Field(default_factory=list)


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        error: str,
        rejected: Sequence[Rejection] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status, self.error, self.rejected, self.headers = status, error, list(rejected), headers or {}

    def response(self) -> JSONResponse:
        body = Problem(error=self.error, rejected=self.rejected)
        return JSONResponse(body.model_dump(), status_code=self.status, headers=self.headers)


# --- metrics ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayMetrics:
    requests: Counter
    duration: Histogram
    published: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> GatewayMetrics:
        return cls(
            requests=Counter(
                metric_names.GATEWAY_REQUESTS,
                "Ingestion requests by integration ('-' when not authenticated), route and status.",
                ["integration", "route", "status"],
                registry=registry,
            ),
            duration=Histogram(
                metric_names.GATEWAY_REQUEST_DURATION,
                "Ingestion request duration, including waiting for Kafka's acks.",
                ["route"],
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                registry=registry,
            ),
            published=Counter(
                metric_names.GATEWAY_EVENTS_PUBLISHED,
                "Events acknowledged by Kafka, by source.",
                ["source"],
                registry=registry,
            ),
        )


# --- readiness --------------------------------------------------------------------------------


def bootstrap_reachable(settings: Settings, timeout: float = 0.5) -> Callable[[], bool]:
    """A cheap probe: does any bootstrap server accept a TCP connection?"""
    addresses = [server.rsplit(":", 1) for server in settings.kafka_bootstrap_servers.split(",")]

    def probe() -> bool:
        for host, port in addresses:
            with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout):
                return True
        return False

    return probe


class CachedProbe:
    """A blocking probe run off the loop, its answer kept for ``ttl`` seconds; one probe at a time."""

    def __init__(self, probe: Callable[[], bool], ttl: float, monotonic: Callable[[], float]) -> None:
        self._probe, self._ttl, self._monotonic = probe, ttl, monotonic
        self._answer, self._expires = False, float("-inf")
        self._lock = asyncio.Lock()

    async def __call__(self) -> bool:
        if self._monotonic() < self._expires:
            return self._answer
        async with self._lock:
            if self._monotonic() >= self._expires:
                self._answer = await asyncio.to_thread(self._probe)
                self._expires = self._monotonic() + self._ttl
            return self._answer


# --- the request pipeline ---------------------------------------------------------------------


@dataclass
class _Outcome:
    """What the metrics and the replay guard need to know once a request is answered."""

    route: str
    integration: str = "-"
    status: int = 500
    caller: Caller | None = field(default=None)


class _Gateway:
    def __init__(
        self,
        settings: Settings,
        directory: Directory,
        integrations: Integrations,
        publisher: EventPublisher,
        metrics: GatewayMetrics,
        kafka_ready: Callable[[], Awaitable[bool]],
        adapters: Mapping[str, Adapter],
        now: Callable[[], datetime],
        monotonic: Callable[[], float],
    ) -> None:
        self.settings, self.directory, self.publisher = settings, directory, publisher
        self.metrics, self.kafka_ready, self.adapters = metrics, kafka_ready, adapters
        self.admission = Admission(integrations, now=now, monotonic=monotonic)
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="gateway-publish")
        # True once a send went through without waiting: the producer has the topic's metadata,
        # so send() is CPU only (serialise, append to a batch) and runs on the loop; see _publish.
        self.sends_without_blocking = False

    async def handle(self, request: Request, route: str, vendor: str | None) -> Response:
        started = time.perf_counter()
        outcome = _Outcome(route=route)
        try:
            events = await self._admit(request, vendor, outcome)
            await self._publish(events)
            outcome.status = 202
            accepted = {"accepted": len(events), "event_ids": [event.event_id for event in events]}
            return Response(orjson.dumps(accepted), status_code=202, media_type="application/json")
        except (GatewayError, Refused) as exc:
            error = (
                exc
                if isinstance(exc, GatewayError)
                else GatewayError(exc.status, exc.reason, headers=exc.headers)
            )
            outcome.status = error.status
            log.info("refused %s from %s: %s %s", route, outcome.integration, error.status, error.error)
            return error.response()
        finally:
            if outcome.caller is not None and outcome.caller.replay_key is not None and outcome.status != 202:
                # Not accepted: the vendor's retry of this very request must get in.
                self.admission.replays.release(outcome.caller.replay_key)
            self.metrics.requests.labels(outcome.integration, route, str(outcome.status)).inc()
            self.metrics.duration.labels(route).observe(time.perf_counter() - started)

    async def _admit(self, request: Request, vendor: str | None, outcome: _Outcome) -> list[Event]:
        """Size, credentials, route, rate limit, content type, then the events themselves."""
        body = await _read_body(request, self.settings.gateway_max_body_bytes)
        caller = self.admission.authenticate(request.headers, body)
        outcome.caller, outcome.integration = caller, caller.integration.name
        allowed = caller.integration.sources
        if vendor is not None and vendor not in allowed:
            raise GatewayError(403, f"integration {caller.integration.name!r} may not post {vendor} webhooks")
        self.admission.admit(caller.integration)
        _require_json(request.headers.get("content-type"))
        if vendor is None:
            events = _parse_canonical(body, self.directory, self.settings.gateway_max_batch)
            forbidden = sorted({event.source for event in events} - set(allowed))
            if forbidden:
                raise GatewayError(
                    403, f"integration {caller.integration.name!r} may not publish source(s) {forbidden}"
                )
            return events
        return _convert_webhook(self.adapters[vendor], vendor, body, self.directory)

    async def _publish(self, events: list[Event]) -> None:
        """Return once Kafka acknowledged every event; :class:`GatewayError` 503 otherwise."""
        if not events:
            return
        if not await self.kafka_ready():
            raise GatewayError(
                503, "Kafka is unavailable; nothing was accepted, retry later", headers=_RETRY_SOON
            )
        loop = asyncio.get_running_loop()
        acked = _Acks(len(events), loop)
        try:
            async with asyncio.timeout(self.settings.gateway_publish_timeout_seconds):
                if self.sends_without_blocking:
                    self._send_all(events, acked)
                else:
                    await loop.run_in_executor(self.executor, self._send_all, events, acked)
                    self.sends_without_blocking = True
                await acked.done
        except Exception as exc:
            if isinstance(exc, PublisherError):  # no metadata in time: back to the pool
                self.sends_without_blocking = False
            log.warning("publishing %d event(s) failed: %s", len(events), exc)
            raise GatewayError(
                503,
                "Kafka did not acknowledge every event; retry the whole request. Some of its events may "
                "already be in Kafka: that is harmless, downstream counts each event_id once.",
                headers=_RETRY_SOON,
            ) from None
        for source, count in collections.Counter(event.source for event in events).items():
            self.metrics.published.labels(source).inc(count)

    def _send_all(self, events: list[Event], acked: _Acks) -> None:
        """Hand every event to the producer; the acks come back through ``acked``."""
        for event in events:
            future = self.publisher.send(event)
            future.add_callback(acked.ack)
            future.add_errback(acked.fail)


_RETRY_SOON: Final = {"Retry-After": "1"}


class _Acks:
    """One request's broker acks, counted on kafka-python's I/O thread; wakes the loop once.

    One wake-up per request rather than per event: each costs a syscall and a GIL hand-over.
    """

    def __init__(self, expected: int, loop: asyncio.AbstractEventLoop) -> None:
        self.done: asyncio.Future[None] = loop.create_future()
        self._loop, self._left, self._settled = loop, expected, False
        # Callbacks of an already-completed future run on the thread that adds them: lock.
        self._lock = threading.Lock()

    def ack(self, _metadata: Any) -> None:
        with self._lock:
            self._left -= 1
            if self._left or self._settled:
                return
            self._settled = True
        self._loop.call_soon_threadsafe(self._settle, None)

    def fail(self, error: BaseException) -> None:
        with self._lock:
            if self._settled:
                return
            self._settled = True
        self._loop.call_soon_threadsafe(self._settle, error)

    def _settle(self, error: BaseException | None) -> None:
        if self.done.done():  # timed out and cancelled meanwhile
            return
        if error is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(error)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> GatewayError:
    return GatewayError(413, f"the body is larger than {limit} bytes")


def _require_json(content_type: str | None) -> None:
    media_type, _, parameters = (content_type or "").partition(";")
    charset = (
        parameters.strip().lower().removeprefix("charset=").strip('"')
        if "charset=" in parameters.lower()
        else "utf-8"
    )
    if media_type.strip().lower() != "application/json" or charset not in ("utf-8", "utf8"):
        raise GatewayError(415, "send Content-Type: application/json (UTF-8)")


def _parse_canonical(body: bytes, directory: Directory, max_batch: int) -> list[Event]:
    """One event or a JSON array of them; any invalid item refuses the whole batch (422)."""
    if body.lstrip()[:1] != b"[":
        try:
            return [parse_event(body, directory)]
        except InvalidEvent as exc:
            raise GatewayError(
                422, "the event is invalid", [Rejection(index=None, reason=exc.reason)]
            ) from None
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(422, f"the body is not valid JSON: {exc}") from None
    if not items:
        raise GatewayError(422, "the batch is empty")
    if len(items) > max_batch:
        raise GatewayError(413, f"the batch has {len(items)} events; at most {max_batch} per request")
    events, rejected = [], []
    for index, item in enumerate(items):
        try:
            events.append(parse_event(orjson.dumps(item), directory))
        except InvalidEvent as exc:
            event_id = item.get("event_id") if isinstance(item, dict) else None
            rejected.append(
                Rejection(
                    index=index, event_id=event_id if isinstance(event_id, str) else None, reason=exc.reason
                )
            )
    if rejected:
        raise GatewayError(
            422, f"{len(rejected)} of {len(items)} events are invalid; nothing was accepted", rejected
        )
    return events


def _convert_webhook(adapter: Adapter, vendor: str, body: bytes, directory: Directory) -> list[Event]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(422, f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise GatewayError(422, f"a {vendor} webhook body must be a JSON object")
    try:
        return list(adapter(payload, directory))
    except (AdapterError, UnmappedValue, InvalidEvent) as exc:
        raise GatewayError(
            422, f"cannot convert the {vendor} payload", [Rejection(index=None, reason=str(exc))]
        ) from None


# --- the app ----------------------------------------------------------------------------------

DESCRIPTION = """\
Authenticated ingestion of service events into Kafka.

* `POST /v1/events` takes one canonical event (schema version 1) or a JSON array of them.
  **A batch is all or nothing**: if any event is invalid the whole batch is refused with 422,
  listing every rejected event by index with a reason, and nothing is published; fix and resend
  the whole batch.
* `POST /v1/webhooks/{jira-sm|servicenow|zendesk}` takes the vendor's own webhook payload and
  converts it to canonical events.
* **202** means Kafka acknowledged every event of the request (acks=all).
* **503** means Kafka did not acknowledge them all: retry the whole request. Some of its events
  may already be in Kafka; that is harmless because every event is counted once per `event_id`
  downstream. The same holds for any retry: posting an event_id twice is accepted twice (202)
  and counted once.
* Authentication: `Authorization: Bearer <token>`, or the vendor's signature: Zendesk signed
  webhooks (`X-Zendesk-Webhook-Signature` + `X-Zendesk-Webhook-Signature-Timestamp`) or a
  shared-secret `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>` (Jira). Signed
  timestamps must be within the replay window (5 minutes by default), and an accepted signed
  request cannot be replayed. 401: missing or wrong credentials; 403: the integration may not
  post that source; 429: over the integration's rate limit (see Retry-After).
* 413: the body or the batch is too large; 415: the body is not `application/json`.
"""

_PROBLEM = {"model": Problem}
_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {**_PROBLEM, "description": "Credentials missing or wrong (or a replayed signature)."},
    403: {**_PROBLEM, "description": "The integration may not post this route or source."},
    413: {**_PROBLEM, "description": "The body or the batch is too large."},
    415: {**_PROBLEM, "description": "The body is not application/json."},
    422: {**_PROBLEM, "description": "Invalid event(s): nothing accepted; each rejection has a reason."},
    429: {**_PROBLEM, "description": "Over the integration's rate limit; retry after Retry-After seconds."},
    503: {**_PROBLEM, "description": "Kafka unavailable; retry the whole request (dedup by event_id)."},
}
_WEBHOOK_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "jira-sm": [{"bearer": []}, {"hubSignature": []}],
    "servicenow": [{"bearer": []}],
    "zendesk": [{"bearer": []}, {"zendeskSignature": [], "zendeskSignatureTimestamp": []}],
}


def create_app(
    settings: Settings,
    directory: Directory,
    integrations: Integrations,
    publisher: EventPublisher,
    *,
    registry: CollectorRegistry | None = None,
    kafka_ready: Callable[[], bool] | None = None,
    adapters: Mapping[str, Adapter] = ADAPTERS,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    monotonic: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """The gateway app. ``integrations`` must hold its secrets (see ``load_integrations``).

    ``kafka_ready`` is a blocking probe (default: a bootstrap server accepts TCP connections);
    its answer is cached for a second and serves ``/readyz`` and fast 503s. ``adapters``
    converts vendor payloads (tests pass fakes).
    """
    registry = registry if registry is not None else CollectorRegistry()
    probe = CachedProbe(kafka_ready or bootstrap_reachable(settings), _READY_CACHE_SECONDS, monotonic)
    gateway = _Gateway(
        settings,
        directory,
        integrations,
        publisher,
        GatewayMetrics.create(registry),
        probe,
        adapters,
        now,
        monotonic,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        gateway.executor.shutdown(wait=True)

    app = FastAPI(
        title="deptpulse ingestion gateway", version="1", description=DESCRIPTION, lifespan=lifespan
    )

    @app.post(
        EVENTS_ROUTE,
        status_code=202,
        response_model=Accepted,
        responses=_REFUSALS,
        summary="Publish one canonical event or a batch (all or nothing)",
        openapi_extra={
            "requestBody": _json_body(
                {
                    "oneOf": [
                        _EVENT_REF,
                        {
                            "type": "array",
                            "items": _EVENT_REF,
                            "minItems": 1,
                            "maxItems": settings.gateway_max_batch,
                        },
                    ]
                }
            ),
            "security": [{"bearer": []}],
        },
    )
    async def post_events(request: Request) -> Response:
        return await gateway.handle(request, EVENTS_ROUTE, None)

    for vendor in WEBHOOK_SOURCES:
        app.add_api_route(
            f"/v1/webhooks/{vendor}",
            _webhook_endpoint(gateway, vendor),
            methods=["POST"],
            status_code=202,
            response_model=Accepted,
            responses=_REFUSALS,
            summary=f"Convert and publish a {vendor} webhook payload",
            openapi_extra={
                "requestBody": _json_body({"type": "object"}),
                "security": _WEBHOOK_SECURITY[vendor],
            },
        )

    @app.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Kafka is reachable (checked at most once a second)", responses={503: {}})
    async def readyz() -> JSONResponse:
        if await probe():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "Kafka is unavailable"}, status_code=503)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    sources = sorted({source for integration in integrations.integrations for source in integration.sources})
    app.openapi = lambda: _openapi(app, directory, sources)  # type: ignore[method-assign]
    return app


def _webhook_endpoint(gateway: _Gateway, vendor: str) -> Callable[[Request], Awaitable[Response]]:
    route = f"/v1/webhooks/{vendor}"

    async def post_webhook(request: Request) -> Response:
        return await gateway.handle(request, route, vendor)

    post_webhook.__name__ = f"post_{vendor.replace('-', '_')}_webhook"
    return post_webhook


_EVENT_REF: Final = {"$ref": "#/components/schemas/ServiceEvent"}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _openapi(app: FastAPI, directory: Directory, sources: list[str]) -> dict[str, Any]:
    """FastAPI's document plus the event schema and the security schemes the routes name.

    The event schema is narrowed to this deployment: departments and services from its
    directory, sources its integrations may publish. The document then says what is accepted,
    and a fuzzer driven by it reaches past validation.
    """
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        event_schema = EVENT_ADAPTER.json_schema(ref_template="#/components/schemas/{model}")
        components = document.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas.update(_narrowed(event_schema.pop("$defs", {}), directory, sources))
        schemas["ServiceEvent"] = event_schema
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "zendeskSignature": {"type": "apiKey", "in": "header", "name": "X-Zendesk-Webhook-Signature"},
            "zendeskSignatureTimestamp": {
                "type": "apiKey",
                "in": "header",
                "name": "X-Zendesk-Webhook-Signature-Timestamp",
            },
            "hubSignature": {"type": "apiKey", "in": "header", "name": "X-Hub-Signature"},
        }
        app.openapi_schema = document
    return app.openapi_schema


def _narrowed(event_schemas: dict[str, Any], directory: Directory, sources: list[str]) -> dict[str, Any]:
    departments = {"type": "string", "enum": directory.department_ids()}
    services = sorted(service.id for department in directory.departments for service in department.services)
    for schema in event_schemas.values():
        properties = schema.get("properties", {})
        if "provider_department" not in properties:
            continue
        for name, narrowed in (
            ("provider_department", departments),
            ("customer_department", departments),
            ("source", {"type": "string", "enum": sources}),
            ("service_category", {"anyOf": [{"type": "string", "enum": services}, {"type": "null"}]}),
        ):
            properties[name] = {**properties[name], **narrowed}
            properties[name].pop("pattern", None)
    return event_schemas


# --- serving ----------------------------------------------------------------------------------

# A gateway waits for its own request's acks: a short linger keeps latency low, and concurrent
# requests still share batches. 5 ms measured better than 1-2 ms (kafka-python spends more CPU per
# event on tiny batches than the wait costs) and no worse than 10 ms; see benchmarks/bench_gateway.py.
GATEWAY_TUNING: Final = ProducerTuning(linger_ms=5, max_block_ms=1000)


def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    integrations: Integrations,
    directory: Directory,
) -> None:
    """Run the gateway with uvicorn until SIGINT/SIGTERM, then flush and close the producer."""
    registry = CollectorRegistry()
    publisher = Publisher.from_settings(
        settings, directory, tuning=GATEWAY_TUNING, metrics=PublisherMetrics.create(registry)
    )
    try:
        app = create_app(settings, directory, integrations, publisher, registry=registry)
        # Full collections were the gateway's p99: 50-100 ms pauses, several a minute at 1,000
        # requests/s. What is alive now (modules, routes, schemas, the directory) lives as long as
        # the process: frozen, full collections no longer scan it (~2 ms each, then growing with
        # the producer's caches); a higher young-generation threshold makes them rare (measured:
        # one in 15 s of load instead of ~25). Requests allocate few reference cycles.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, server_header=False)
    finally:
        try:
            publisher.close(timeout=settings.gateway_publish_timeout_seconds)
        except PublisherError as exc:  # those requests were answered 503 already
            log.warning("closing the producer: %s", exc)
