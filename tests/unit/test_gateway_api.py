"""The gateway's HTTP API with a fake publisher: every status code, batches, webhooks, metrics, logs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from deptpulse.settings import EXAMPLE_DIRECTORY, Settings
from producers.gateway import create_app
from producers.gateway_auth import hub_signature, zendesk_signature
from producers.integrations import Integrations, parse_integrations
from producers.publisher import PublisherError
from producers.sources import Adapter, AdapterError
from schemas.directory import Directory, UnmappedValue, load_directory
from schemas.events import Event, validate_event

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
HR_TOKEN = "hr-token-0123456789abcdef"
SERVICENOW_TOKEN = "servicenow-token-0123456789"
ZENDESK_SECRET = "zendesk-secret-0123456789"
JIRA_SECRET = "jira-secret-0123456789ab"
LIMITED_TOKEN = "limited-token-0123456789"
SECRETS = (HR_TOKEN, SERVICENOW_TOKEN, ZENDESK_SECRET, JIRA_SECRET, LIMITED_TOKEN)
DIRECTORY = load_directory(EXAMPLE_DIRECTORY)


def integrations() -> Integrations:
    return parse_integrations(
        {
            "integrations": [
                {
                    "name": "hr-survey",
                    "sources": ["hr-survey"],
                    "credentials": [{"type": "bearer", "token": HR_TOKEN}],
                },
                {
                    "name": "servicenow",
                    "sources": ["servicenow"],
                    "credentials": [{"type": "bearer", "token": SERVICENOW_TOKEN}],
                },
                {
                    "name": "zendesk",
                    "sources": ["zendesk"],
                    "credentials": [{"type": "zendesk-signature", "secret": ZENDESK_SECRET}],
                },
                {
                    "name": "jira",
                    "sources": ["jira-sm"],
                    "credentials": [{"type": "hub-signature", "secret": JIRA_SECRET}],
                },
                {
                    "name": "limited",
                    "sources": ["hr-survey"],
                    "credentials": [{"type": "bearer", "token": LIMITED_TOKEN}],
                    "rate_limit": {"requests_per_second": 1, "burst": 2},
                },
            ]
        }
    ).with_secrets({})


# --- fakes -------------------------------------------------------------------------------------------


class FakeFuture:
    """kafka-python's FutureRecordMetadata as far as the gateway uses it."""

    def __init__(self, error: Exception | None, hang: bool) -> None:
        self.error, self.hang = error, hang

    def add_callback(self, callback: Callable[[Any], None]) -> None:
        if self.error is None and not self.hang:
            callback("metadata")

    def add_errback(self, errback: Callable[[Exception], None]) -> None:
        if self.error is not None and not self.hang:
            errback(self.error)


class FakePublisher:
    """The Publisher interface: ``send`` returns a future; records what was acknowledged."""

    def __init__(self) -> None:
        self.sent: list[Event] = []
        self.threads: list[str] = []
        self.fail_after: int | None = None  # the n-th send onwards fails
        self.hang = False
        self.raise_on_send: Exception | None = None

    def send(self, event: Event) -> FakeFuture:
        self.threads.append(threading.current_thread().name)
        if self.raise_on_send is not None:
            raise self.raise_on_send
        failing = self.fail_after is not None and len(self.sent) >= self.fail_after
        self.sent.append(event)
        return FakeFuture(RuntimeError("NotEnoughReplicas") if failing else None, self.hang)

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self) -> None:
        pass


def fake_zendesk_adapter(payload: Mapping[str, Any], directory: Directory) -> list[Event]:
    """Turns {"ticket": id} into one request.opened; errors as the real adapters raise them."""
    if "unmapped" in payload:
        raise UnmappedValue("zendesk", "group", str(payload["unmapped"]))
    if "ticket" not in payload:
        raise AdapterError("zendesk payload has no ticket")
    return [event(f"zd-{payload['ticket']}", source="zendesk")]


def fake_servicenow_adapter(payload: Mapping[str, Any], directory: Directory) -> list[Event]:
    return [] if payload.get("ignored") else [event(f"sn-{payload['number']}", source="servicenow")]


ADAPTERS: dict[str, Adapter] = {
    "zendesk": fake_zendesk_adapter,
    "servicenow": fake_servicenow_adapter,
    "jira-sm": fake_zendesk_adapter,
}


def event_dict(event_id: str = "e-1", source: str = "hr-survey", **changes: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": event_id,
        "event_type": "request.opened",
        "occurred_at": "2026-03-02T09:00:00Z",
        "source": source,
        "provider_department": "it",
        "customer_department": "hr",
        "request_id": f"r-{event_id}",
        "service_category": "it.access",
        "priority": "P2",
    } | changes


def event(event_id: str, source: str) -> Event:
    raw = event_dict(event_id, source) | {"occurred_at": NOW}
    return validate_event(raw, DIRECTORY)


class Gateway:
    """An app with a fake publisher, a private registry and a controllable clock."""

    def __init__(self, **settings: Any) -> None:
        self.publisher = FakePublisher()
        self.registry = CollectorRegistry()
        self.ready = True
        self.probes = 0
        self.wall, self.mono = NOW, 0.0
        values = {
            "gateway_max_body_bytes": 4096,
            "gateway_max_batch": 5,
            "gateway_publish_timeout_seconds": 0.3,
        }
        self.app = create_app(
            Settings(**(values | settings)),
            DIRECTORY,
            integrations(),
            self.publisher,
            registry=self.registry,
            kafka_ready=self._probe,
            adapters=ADAPTERS,
            now=lambda: self.wall,
            monotonic=lambda: self.mono,
        )
        self.client = TestClient(self.app)

    def _probe(self) -> bool:
        self.probes += 1
        return self.ready

    def post(self, path: str, body: Any, token: str | None = HR_TOKEN, **headers: str) -> Any:
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        sent = {"content-type": "application/json"} | headers
        if token is not None:
            sent["authorization"] = f"Bearer {token}"
        return self.client.post(path, content=content, headers=sent)

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gateway = Gateway()
    with gateway.client:
        yield gateway


# --- 202 ---------------------------------------------------------------------------------------------


def test_one_event_is_accepted_after_the_ack(gateway: Gateway) -> None:
    response = gateway.post("/v1/events", event_dict("e-1"))
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1, "event_ids": ["e-1"]}
    assert [sent.event_id for sent in gateway.publisher.sent] == ["e-1"]
    assert gateway.sample("deptpulse_gateway_events_published_total", source="hr-survey") == 1
    assert (
        gateway.sample(
            "deptpulse_gateway_requests_total", integration="hr-survey", route="/v1/events", status="202"
        )
        == 1
    )
    assert gateway.sample("deptpulse_gateway_request_duration_seconds_count", route="/v1/events") == 1


def test_a_batch_is_accepted_in_order(gateway: Gateway) -> None:
    response = gateway.post("/v1/events", [event_dict(f"e-{i}") for i in range(5)])
    assert response.status_code == 202
    assert response.json()["event_ids"] == [f"e-{i}" for i in range(5)]
    assert len(gateway.publisher.sent) == 5
    assert gateway.sample("deptpulse_gateway_events_published_total", source="hr-survey") == 5


def test_the_same_event_id_twice_is_accepted_twice(gateway: Gateway) -> None:
    # The gateway forwards; the worker dedups by event_id, so downstream counts it once.
    assert gateway.post("/v1/events", event_dict("dup")).status_code == 202
    assert gateway.post("/v1/events", event_dict("dup")).status_code == 202
    assert [sent.event_id for sent in gateway.publisher.sent] == ["dup", "dup"]


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"]
)
def test_json_content_types_are_accepted(gateway: Gateway, content_type: str) -> None:
    response = gateway.post("/v1/events", event_dict(), **{"content-type": content_type})
    assert response.status_code == 202


# --- 422 ---------------------------------------------------------------------------------------------


def test_an_invalid_event_is_422_with_the_field(gateway: Gateway) -> None:
    response = gateway.post("/v1/events", event_dict(customer_department="marketing"))
    assert response.status_code == 422
    [rejection] = response.json()["rejected"]
    assert rejection["index"] is None
    assert "customer_department" in rejection["reason"] and "unknown department" in rejection["reason"]
    assert gateway.publisher.sent == []


def test_one_invalid_event_refuses_the_whole_batch(gateway: Gateway) -> None:
    batch = [event_dict("ok-1"), event_dict("bad-1", priority="P9"), event_dict("ok-2"), {"event_id": 7}, "x"]
    response = gateway.post("/v1/events", batch)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "3 of 5 events are invalid; nothing was accepted"
    assert [(r["index"], r["event_id"]) for r in body["rejected"]] == [(1, "bad-1"), (3, None), (4, None)]
    assert "priority" in body["rejected"][0]["reason"]
    assert gateway.publisher.sent == []  # nothing half-accepted


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"[", "the body is not valid JSON"),
        (b"[]", "the batch is empty"),
        (b"{not json", "the event is invalid"),
        (b"", "the event is invalid"),
        (b"42", "the event is invalid"),
    ],
)
def test_malformed_bodies_are_422(gateway: Gateway, body: bytes, error: str) -> None:
    response = gateway.post("/v1/events", body)
    assert response.status_code == 422
    assert response.json()["error"].startswith(error)


# --- 401 / 403 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789"])
def test_missing_or_wrong_credentials_are_401(gateway: Gateway, token: str | None) -> None:
    response = gateway.post("/v1/events", event_dict(), token=token)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert gateway.publisher.sent == []
    assert (
        gateway.sample("deptpulse_gateway_requests_total", integration="-", route="/v1/events", status="401")
        == 1
    )


def test_a_source_the_integration_may_not_publish_is_403(gateway: Gateway) -> None:
    response = gateway.post("/v1/events", [event_dict("a"), event_dict("b", source="zendesk")])
    assert response.status_code == 403
    assert "may not publish source(s) ['zendesk']" in response.json()["error"]
    assert gateway.publisher.sent == []


def test_a_webhook_route_the_integration_may_not_post_is_403(gateway: Gateway) -> None:
    response = gateway.post("/v1/webhooks/servicenow", {"number": "INC1"}, token=HR_TOKEN)
    assert response.status_code == 403
    assert "may not post servicenow webhooks" in response.json()["error"]


# --- 413 / 415 ---------------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413(gateway: Gateway) -> None:
    big = event_dict(attributes={"note": "x" * 4000})
    response = gateway.post("/v1/events", big)
    assert response.status_code == 413
    assert "larger than 4096 bytes" in response.json()["error"]


def test_a_chunked_body_over_the_limit_is_413_while_streaming(gateway: Gateway) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    response = gateway.client.post(
        "/v1/events",
        content=chunks(),
        headers={"authorization": f"Bearer {HR_TOKEN}", "content-type": "application/json"},
    )
    assert response.status_code == 413


def test_a_batch_over_the_item_limit_is_413(gateway: Gateway) -> None:
    response = gateway.post("/v1/events", [event_dict(f"e-{i}") for i in range(6)][:6])
    assert response.status_code == 413
    assert "at most 5 per request" in response.json()["error"]
    assert gateway.publisher.sent == []


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", None],
)
def test_a_wrong_content_type_is_415(gateway: Gateway, content_type: str | None) -> None:
    headers = {"authorization": f"Bearer {HR_TOKEN}"}
    if content_type is not None:
        headers["content-type"] = content_type
    response = gateway.client.post("/v1/events", content=orjson.dumps(event_dict()), headers=headers)
    assert response.status_code == 415
    assert gateway.publisher.sent == []


# --- 429 ---------------------------------------------------------------------------------------------


def test_an_integration_over_its_rate_limit_is_429_with_retry_after(gateway: Gateway) -> None:
    statuses = [
        gateway.post("/v1/events", event_dict(f"e-{i}"), token=LIMITED_TOKEN).status_code for i in range(3)
    ]
    assert statuses == [202, 202, 429]
    refused = gateway.post("/v1/events", event_dict("e-3"), token=LIMITED_TOKEN)
    assert refused.headers["retry-after"] == "1"
    assert len(gateway.publisher.sent) == 2
    # Another integration is not slowed down by this one's limit.
    assert gateway.post("/v1/events", event_dict("other")).status_code == 202
    gateway.mono += 1.0
    assert gateway.post("/v1/events", event_dict("e-4"), token=LIMITED_TOKEN).status_code == 202


# --- 503 ---------------------------------------------------------------------------------------------


def test_a_failed_ack_is_503_and_says_a_retry_is_safe(gateway: Gateway) -> None:
    gateway.publisher.fail_after = 1  # the second event of the batch is not acknowledged
    response = gateway.post("/v1/events", [event_dict("a"), event_dict("b")])
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "retry the whole request" in response.json()["error"]
    assert "counts each event_id once" in response.json()["error"]
    assert gateway.sample("deptpulse_gateway_events_published_total", source="hr-survey") == 0


def test_no_ack_within_the_timeout_is_503(gateway: Gateway) -> None:
    gateway.publisher.hang = True
    assert gateway.post("/v1/events", event_dict()).status_code == 503


def test_a_send_that_raises_is_503(gateway: Gateway) -> None:
    gateway.publisher.raise_on_send = TimeoutError("metadata not available after 1000 ms")
    assert gateway.post("/v1/events", event_dict()).status_code == 503


def test_kafka_down_is_503_at_once_and_nothing_is_sent(gateway: Gateway) -> None:
    gateway.ready = False
    response = gateway.post("/v1/events", event_dict())
    assert response.status_code == 503
    assert "nothing was accepted" in response.json()["error"]
    assert gateway.publisher.sent == []
    assert gateway.client.get("/readyz").status_code == 503


# --- health, readiness, metrics, OpenAPI -------------------------------------------------------------


def test_healthz_and_readyz(gateway: Gateway) -> None:
    assert gateway.client.get("/healthz").json() == {"status": "ok"}
    assert gateway.client.get("/readyz").status_code == 200
    gateway.ready = False
    # Cached for a second: the probe is not asked again within it.
    assert gateway.client.get("/readyz").status_code == 200
    assert gateway.probes == 1
    gateway.mono += 1.01
    assert gateway.client.get("/readyz").status_code == 503
    assert gateway.probes == 2


def test_metrics_are_exposed(gateway: Gateway) -> None:
    gateway.post("/v1/events", event_dict())
    text = gateway.client.get("/metrics").text
    assert (
        'deptpulse_gateway_requests_total{integration="hr-survey",route="/v1/events",status="202"} 1.0'
        in text
    )
    assert "deptpulse_gateway_request_duration_seconds_bucket" in text
    assert 'deptpulse_gateway_events_published_total{source="hr-survey"} 1.0' in text


def test_the_openapi_document_describes_the_api(gateway: Gateway) -> None:
    document = gateway.client.get("/openapi.json").json()
    assert set(document["paths"]) >= {
        "/v1/events",
        "/v1/webhooks/jira-sm",
        "/v1/webhooks/servicenow",
        "/v1/webhooks/zendesk",
        "/healthz",
        "/readyz",
        "/metrics",
    }
    events = document["paths"]["/v1/events"]["post"]
    body_schema = events["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema["oneOf"][0] == {"$ref": "#/components/schemas/ServiceEvent"}
    assert body_schema["oneOf"][1]["maxItems"] == 5
    assert set(events["responses"]) >= {"202", "401", "403", "413", "415", "422", "429", "503"}
    assert "ServiceEvent" in document["components"]["schemas"]
    assert "RequestOpened" in document["components"]["schemas"]
    assert "A batch is all or nothing" in document["info"]["description"]
    assert document["paths"]["/v1/webhooks/zendesk"]["post"]["security"][1] == {
        "zendeskSignature": [],
        "zendeskSignatureTimestamp": [],
    }


# --- webhooks ----------------------------------------------------------------------------------------


def zendesk_post(gateway: Gateway, body: bytes, secret: str = ZENDESK_SECRET, at: datetime = NOW) -> Any:
    timestamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return gateway.post(
        "/v1/webhooks/zendesk",
        body,
        token=None,
        **{
            "x-zendesk-webhook-signature": zendesk_signature(secret.encode(), timestamp, body),
            "x-zendesk-webhook-signature-timestamp": timestamp,
        },
    )


def test_a_signed_zendesk_webhook_is_converted_and_accepted(gateway: Gateway) -> None:
    response = zendesk_post(gateway, b'{"ticket": 35436}')
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "event_ids": ["zd-35436"]}
    assert (
        gateway.sample(
            "deptpulse_gateway_requests_total",
            integration="zendesk",
            route="/v1/webhooks/zendesk",
            status="202",
        )
        == 1
    )


def test_zendesk_signature_failures_are_401(gateway: Gateway) -> None:
    body = b'{"ticket": 1}'
    assert zendesk_post(gateway, body, secret="another-secret-0123456789").status_code == 401
    assert zendesk_post(gateway, body, at=NOW - timedelta(minutes=6)).status_code == 401  # expired
    assert zendesk_post(gateway, body).status_code == 202
    assert zendesk_post(gateway, body).status_code == 401  # replayed
    assert [sent.event_id for sent in gateway.publisher.sent] == ["zd-1"]


def test_a_signed_request_refused_for_kafka_can_be_retried(gateway: Gateway) -> None:
    gateway.publisher.fail_after = 0
    body = b'{"ticket": 2}'
    assert zendesk_post(gateway, body).status_code == 503
    gateway.publisher.fail_after = None
    assert zendesk_post(gateway, body).status_code == 202  # the vendor's retry, same signature


def test_a_jira_hub_signature_is_checked(gateway: Gateway) -> None:
    body = b'{"ticket": 3}'
    signed = {"x-hub-signature": hub_signature(JIRA_SECRET.encode(), body)}
    assert gateway.post("/v1/webhooks/jira-sm", body, token=None, **signed).status_code == 202
    wrong = {"x-hub-signature": hub_signature(b"another-secret-0123456789", body)}
    assert gateway.post("/v1/webhooks/jira-sm", b'{"ticket": 4}', token=None, **wrong).status_code == 401
    # A valid Jira signature does not open the Zendesk route.
    other = b'{"ticket": 5}'
    signed = {"x-hub-signature": hub_signature(JIRA_SECRET.encode(), other)}
    assert gateway.post("/v1/webhooks/zendesk", other, token=None, **signed).status_code == 403


def test_adapter_errors_are_422_with_the_reason(gateway: Gateway) -> None:
    response = zendesk_post(gateway, b'{"unmapped": "Marketing Desk"}')
    assert response.status_code == 422
    assert (
        "no department mapping for zendesk field 'group' value 'Marketing Desk'"
        in response.json()["rejected"][0]["reason"]
    )
    assert (
        zendesk_post(gateway, b'{"other": 1}').json()["rejected"][0]["reason"]
        == "zendesk payload has no ticket"
    )
    assert zendesk_post(gateway, b"[1, 2]").json()["error"] == "a zendesk webhook body must be a JSON object"
    assert zendesk_post(gateway, b"{").status_code == 422
    assert gateway.publisher.sent == []


def test_a_webhook_with_nothing_to_publish_is_202_with_none(gateway: Gateway) -> None:
    response = gateway.post("/v1/webhooks/servicenow", {"ignored": True}, token=SERVICENOW_TOKEN)
    assert response.status_code == 202
    assert response.json() == {"accepted": 0, "event_ids": []}


def test_an_unknown_vendor_is_404(gateway: Gateway) -> None:
    assert gateway.post("/v1/webhooks/freshdesk", {}).status_code == 404


# --- secrets never logged ----------------------------------------------------------------------------


def test_secrets_never_appear_in_logs_or_responses(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies = []
    bodies.append(gateway.post("/v1/events", event_dict("s-1")).text)
    bodies.append(gateway.post("/v1/events", event_dict("s-2"), token=HR_TOKEN + "x").text)
    bodies.append(gateway.post("/v1/events", event_dict("s-3"), token=SERVICENOW_TOKEN).text)
    bodies.append(gateway.post("/v1/events", event_dict("s-4"), token=f"{HR_TOKEN} {JIRA_SECRET}").text)
    bodies.append(zendesk_post(gateway, b'{"ticket": 9}').text)
    bodies.append(zendesk_post(gateway, b'{"ticket": 9}').text)
    bodies.append(zendesk_post(gateway, b'{"ticket": 10}', secret=ZENDESK_SECRET[::-1]).text)
    for _ in range(4):
        bodies.append(gateway.post("/v1/events", event_dict("s-5"), token=LIMITED_TOKEN).text)
    gateway.publisher.fail_after = 0
    bodies.append(gateway.post("/v1/events", event_dict("s-6")).text)
    assert caplog.records, "the gateway logs refusals: the test must see some logs"
    logged = caplog.text + "".join(str(record.__dict__) for record in caplog.records)
    for secret in SECRETS:
        assert secret not in logged
        assert secret[::-1] not in logged
        assert all(secret not in body for body in bodies)


def test_a_timestamp_out_of_range_in_utc_is_422_not_500(gateway: Gateway) -> None:
    # Found by the fuzz test: converting this to UTC overflows datetime.
    response = gateway.post("/v1/events", [event_dict(occurred_at="0001-01-01T00:00:00+00:01")])
    assert response.status_code == 422
    assert response.json()["rejected"][0]["reason"].startswith("occurred_at: Value error, timestamp out of range")


def test_sends_move_to_the_loop_once_the_producer_has_metadata(gateway: Gateway) -> None:
    assert gateway.post("/v1/events", event_dict("a")).status_code == 202
    assert gateway.post("/v1/events", [event_dict("b"), event_dict("c")]).status_code == 202
    first, *later = gateway.publisher.threads
    assert first.startswith("gateway-publish")  # may wait for metadata: on the pool
    assert not any(name.startswith("gateway-publish") for name in later)  # CPU only: on the loop
    # No metadata in time (PublisherError): 503, and the next send waits on the pool again.
    gateway.publisher.raise_on_send = PublisherError("Kafka at 127.0.0.1:1 did not answer")
    assert gateway.post("/v1/events", event_dict("d")).status_code == 503
    gateway.publisher.raise_on_send = None
    assert gateway.post("/v1/events", event_dict("e")).status_code == 202
    assert gateway.publisher.threads[-1].startswith("gateway-publish")
