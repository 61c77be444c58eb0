"""The gateway against a real broker: signed Zendesk webhooks end up in Kafka, or nothing does."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from deptpulse.kafka_clients import kafka_python_kwargs
from deptpulse.settings import EXAMPLE_DIRECTORY, Settings
from deptpulse.stack import LocalStack, create_topics
from producers.gateway import GATEWAY_TUNING, create_app
from producers.gateway_auth import zendesk_signature
from producers.integrations import Integrations, parse_integrations
from producers.publisher import ProducerTuning, Publisher, PublisherError, PublisherMetrics
from schemas.directory import load_directory
from schemas.events import parse_event

pytestmark = pytest.mark.integration

DIRECTORY = load_directory(EXAMPLE_DIRECTORY)
ZENDESK_SECRET = "zendesk-secret-0123456789"
HR_TOKEN = "hr-token-0123456789abcdef"


def integrations() -> Integrations:
    return parse_integrations(
        {
            "integrations": [
                {
                    "name": "zendesk",
                    "sources": ["zendesk"],
                    "credentials": [{"type": "zendesk-signature", "secret": ZENDESK_SECRET}],
                },
                {
                    "name": "hr",
                    "sources": ["hr-survey"],
                    "credentials": [{"type": "bearer", "token": HR_TOKEN}],
                },
            ]
        }
    ).with_secrets({})


def ticket_created(ticket_id: str) -> bytes:
    """A Zendesk event webhook (the vendor's envelope) for a new IT ticket from HR."""
    return orjson.dumps(
        {
            "type": "zen:event-type:ticket.created",
            "account_id": 88888888,
            "id": f"01HN-{ticket_id}",
            "time": datetime.now(UTC).isoformat(),
            "zendesk_event_version": "2022-11-06",
            "subject": f"zen:ticket:{ticket_id}",
            "detail": {
                "id": ticket_id,
                "status": "NEW",
                "priority": "HIGH",
                "group_id": "360007335272",
                "organization_id": "HR",
                "requester_id": "1",
                "via": {"channel": "web"},
                "created_at": "2024-04-17T17:18:10Z",
            },
            "event": {},
        }
    )


def signed_headers(body: bytes, secret: str = ZENDESK_SECRET) -> dict[str, str]:
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "content-type": "application/json",
        "x-zendesk-webhook-signature": zendesk_signature(secret.encode(), timestamp, body),
        "x-zendesk-webhook-signature-timestamp": timestamp,
    }


def read_topic(settings: Settings) -> tuple[dict[TopicPartition, int], list[Any]]:
    """Every record of the events topic, consumed to the end offsets taken first."""
    consumer = KafkaConsumer(**kafka_python_kwargs(settings), enable_auto_commit=False, group_id=None)
    try:
        partitions = [
            TopicPartition(settings.events_topic, p)
            for p in consumer.partitions_for_topic(settings.events_topic)
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + 30
        while any(consumer.position(p) < end[p] for p in partitions):
            assert time.monotonic() < deadline, "could not read the topic to its end in 30 s"
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return end, records
    finally:
        consumer.close()


@pytest.fixture
def gateway(kafka_stack: Settings) -> Iterator[TestClient]:
    publisher = Publisher.from_settings(kafka_stack, DIRECTORY, tuning=GATEWAY_TUNING)
    app = create_app(kafka_stack, DIRECTORY, integrations(), publisher, registry=CollectorRegistry())
    try:
        with TestClient(app) as client:
            yield client
    finally:
        publisher.close(timeout=10)


def test_a_wrong_signature_is_401_and_nothing_reaches_kafka(
    kafka_stack: Settings, gateway: TestClient
) -> None:
    ticket_id = f"t-{uuid.uuid4().hex[:12]}"
    body = ticket_created(ticket_id)
    end_before, _ = read_topic(kafka_stack)

    response = gateway.post(
        "/v1/webhooks/zendesk", content=body, headers=signed_headers(body, "not-the-secret-0123456789")
    )

    assert response.status_code == 401
    end_after, records = read_topic(kafka_stack)
    assert end_after == end_before
    assert not [record for record in records if ticket_id.encode() in record.value]


def test_a_right_signature_is_202_after_the_canonical_events_are_in_kafka(
    kafka_stack: Settings, gateway: TestClient
) -> None:
    ticket_id = f"t-{uuid.uuid4().hex[:12]}"
    body = ticket_created(ticket_id)

    response = gateway.post("/v1/webhooks/zendesk", content=body, headers=signed_headers(body))

    assert response.status_code == 202, response.text
    [event_id] = response.json()["event_ids"]
    # 202 came after the acks: the record is readable at once, no waiting.
    _, records = read_topic(kafka_stack)
    [record] = [record for record in records if ticket_id.encode() in record.value]
    event = parse_event(record.value, DIRECTORY)
    assert event.event_id == event_id
    assert (event.event_type, event.source, event.provider_department, event.customer_department) == (
        "request.opened",
        "zendesk",
        "it",
        "hr",
    )
    assert event.priority == "P2"
    assert record.key == f"zendesk:{ticket_id}".encode()
    assert dict(record.headers)["source"] == b"zendesk"


def test_a_batch_is_in_kafka_when_accepted(kafka_stack: Settings, gateway: TestClient) -> None:
    marker = uuid.uuid4().hex
    batch = [
        {
            "schema_version": 1,
            "event_id": f"{marker}-{index}",
            "event_type": "survey.answered",
            "occurred_at": "2026-03-02T09:00:00+01:00",
            "source": "hr-survey",
            "provider_department": "it",
            "customer_department": "finance",
            "score": index,
        }
        for index in range(10)
    ]
    headers = {"authorization": f"Bearer {HR_TOKEN}", "content-type": "application/json"}
    response = gateway.post("/v1/events", content=orjson.dumps(batch), headers=headers)
    assert response.status_code == 202
    _, records = read_topic(kafka_stack)
    found = sorted(parse_event(r.value).event_id for r in records if marker.encode() in r.value)
    assert found == sorted(str(item["event_id"]) for item in batch)


# --- Kafka down ---------------------------------------------------------------------------------------


def test_kafka_down_is_503_with_nothing_accepted_and_not_ready(
    make_stack_settings: Callable[..., Settings],
) -> None:
    # A broker of its own, so stopping it leaves the session's broker alone. (Pointing a publisher
    # at a closed port does not get that far: the producer refuses to start without a broker.)
    settings = make_stack_settings(gateway_publish_timeout_seconds=3.0)
    stack = LocalStack(settings)
    stack.up(["kafka"])
    create_topics(settings)
    registry = CollectorRegistry()
    publisher = Publisher.from_settings(
        settings,
        DIRECTORY,
        tuning=ProducerTuning(linger_ms=2, max_block_ms=1000, connect_timeout_ms=2000),
        metrics=PublisherMetrics.create(registry),
        request_timeout_ms=1000,
        delivery_timeout_ms=2000,
        reconnect_backoff_max_ms=200,
    )
    clock = [0.0]
    app = create_app(
        settings, DIRECTORY, integrations(), publisher, registry=registry, monotonic=lambda: clock[0]
    )
    # The same gateway without the readiness short-cut: the publish itself must fail.
    unguarded = create_app(
        settings, DIRECTORY, integrations(), publisher, registry=CollectorRegistry(), kafka_ready=lambda: True
    )
    handed_to_kafka = "deptpulse_publisher_value_bytes_total"
    try:
        with TestClient(app) as client, TestClient(unguarded) as unguarded_client:
            first = ticket_created(f"t-{uuid.uuid4().hex[:12]}")
            assert (
                client.post("/v1/webhooks/zendesk", content=first, headers=signed_headers(first)).status_code
                == 202
            )
            assert client.get("/readyz").status_code == 200

            stack.down(["kafka"])
            clock[0] += 1.5  # the readiness answer is cached for a second

            assert client.get("/readyz").status_code == 503
            written = registry.get_sample_value(handed_to_kafka)
            second = ticket_created(f"t-{uuid.uuid4().hex[:12]}")
            response = client.post("/v1/webhooks/zendesk", content=second, headers=signed_headers(second))
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
            assert "nothing was accepted" in response.json()["error"]
            assert registry.get_sample_value(handed_to_kafka) == written  # not even handed to the producer
            assert (
                registry.get_sample_value("deptpulse_gateway_events_published_total", {"source": "zendesk"})
                == 1
            )

            started = time.monotonic()
            third = ticket_created(f"t-{uuid.uuid4().hex[:12]}")
            response = unguarded_client.post(
                "/v1/webhooks/zendesk", content=third, headers=signed_headers(third)
            )
            assert response.status_code == 503
            assert "retry the whole request" in response.json()["error"]
            assert time.monotonic() - started < 10
    finally:
        # The broker is gone: the third request's record cannot be delivered.
        with contextlib.suppress(PublisherError):
            publisher.close(timeout=1)
        stack.down(["kafka"])
