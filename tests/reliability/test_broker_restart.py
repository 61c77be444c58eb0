"""The Kafka broker restarted mid-stream (a broker of this test's own; the others keep theirs).

The worker and the gateway's Publisher must recover on their own: the gateway answers 503 while
the broker is down and 202 once it is back, with the same Publisher; the worker resumes, and the
totals equal the independent computation over everything published, before and after.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from deptpulse.settings import Settings
from deptpulse.stack import LocalStack, create_topics
from producers.gateway import create_app
from producers.publisher import ProducerTuning, Publisher
from tests.integration.test_gateway_kafka import DIRECTORY, HR_TOKEN, integrations
from tests.reliability.harness import (
    FaultyRun,
    Mix,
    assert_dead_letters_exact,
    assert_totals,
    expected_dead_letters,
    generate,
    publish,
    wait_until,
)

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
HEADERS = {"authorization": f"Bearer {HR_TOKEN}", "content-type": "application/json"}


def survey(at: datetime, score: int) -> dict[str, Any]:
    return {"schema_version": 1, "event_id": uuid.uuid4().hex, "event_type": "survey.answered",
            "occurred_at": at.isoformat(), "source": "hr-survey", "provider_department": "it",
            "customer_department": "finance", "score": score}


def test_broker_restart_mid_stream(make_stack_settings: Callable[..., Settings],
                                   make_run: Callable[..., FaultyRun]) -> None:
    own = make_stack_settings(gateway_publish_timeout_seconds=3.0)
    stack = LocalStack(own)
    stack.up(["kafka"])
    publisher: Publisher | None = None
    try:
        create_topics(own)
        start = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
        mix = generate(seed=61, requests=1500, start=start)
        half = len(mix.messages) // 2
        run = make_run("broker", settings=own)
        publisher = Publisher.from_settings(
            run.settings, DIRECTORY, tuning=ProducerTuning(linger_ms=2, max_block_ms=1000, connect_timeout_ms=2000),
            request_timeout_ms=1000, delivery_timeout_ms=2000, reconnect_backoff_max_ms=500,
        )
        clock = [0.0]
        app = create_app(run.settings, DIRECTORY, integrations(), publisher, registry=CollectorRegistry(),
                         monotonic=lambda: clock[0])
        with TestClient(app) as gateway:

            def post(score: int) -> int:
                event = survey(start + timedelta(hours=1), score)
                clock[0] += 1.5  # past the cached readiness answer
                status = int(gateway.post("/v1/events", content=orjson.dumps([event]), headers=HEADERS).status_code)
                if status == 202:
                    mix.valid.append(event)
                return status

            run.start()
            run.wait_done(publish(run.settings, Mix(mix.messages[:half])), 180)
            assert post(9) == 202

            stopped = time.monotonic()
            stack.down(["kafka"])
            assert post(3) == 503, "the gateway accepted an event while the broker was down"
            time.sleep(3)
            assert run.alive(), f"the worker died with the broker. {run.log_tail()}"
            stack.up(["kafka"])
            up_at = time.monotonic()
            wait_until(lambda: post(10) == 202, 60, "the gateway to answer 202 again")
            gateway_s = time.monotonic() - up_at
            before_second = publish(run.settings, Mix([]))  # end offsets now: the gateway's events moved them
            ends = publish(run.settings, Mix(mix.messages[half:]))
            worker_s = run.wait_done(ends, 240)
        run.stop()
        assert_totals(run.pair_totals(), mix, "after the broker restart:")
        dead = expected_dead_letters(Mix(mix.messages[:half]))
        dead |= expected_dead_letters(Mix(mix.messages[half:]), already=before_second)
        resent = assert_dead_letters_exact(run.settings, dead)
        print(f"broker restart: down {up_at - stopped:.1f}s (incl. restart); gateway 202 again {gateway_s:.1f}s "
              f"after the broker was up; worker caught up {worker_s:.1f}s after the second half was published; "
              f"dead-letter re-sends {resent}")
    finally:
        if publisher is not None:
            publisher.close(timeout=5)
        stack.down(["kafka"])

