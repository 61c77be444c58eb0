"""The at-risk requests read back from ClickHouse: the newest snapshot of each request, its running
SLA clock with the pauses that have ended, and snapshots written before the clock columns existed."""

from __future__ import annotations

from datetime import datetime

import pytest
from clickhouse_connect.driver.client import Client

from stream_processors.at_risk.reading import AtRiskService, running_requests
from stream_processors.core import FACT_COLUMNS, RequestFact
from stream_processors.sinks.clickhouse import ClickHouseSink, SinkBatch
from stream_processors.storage import migrate
from tests.unit.test_core_at_risk import DIRECTORY, answered_at, fact_of, open_request
from tests.unit.test_core_builders import HOUR, MINUTE, MONDAY_9, make_request_event

pytestmark = pytest.mark.integration

NOW = MONDAY_9 + 25 * HOUR + 30 * MINUTE  # Tuesday 10:30 in Berlin


@pytest.fixture
def client(clickhouse_client: Client) -> Client:
    migrate(clickhouse_client)
    return clickhouse_client


def write(client: Client, facts: list[RequestFact]) -> None:
    batch = SinkBatch("deptpulse.events")
    batch.facts = facts
    ClickHouseSink(client).write_side_tables(batch)


def test_running_clocks_are_read_back_as_the_core_left_them(client: Client) -> None:
    paused_then_resumed = answered_at(
        MONDAY_9,
        make_request_event("request.status_changed", MONDAY_9 + 5 * HOUR, status="waiting_on_customer"),
        make_request_event("request.status_changed", MONDAY_9 + 24 * HOUR, status="in_progress"),
        request_id="paused",
    )
    facts = [
        fact_of(paused_then_resumed[:2]),  # an older snapshot: replaced by the newest
        fact_of(paused_then_resumed),
        fact_of(
            [
                *answered_at(MONDAY_9, request_id="waiting"),
                make_request_event(
                    "request.status_changed",
                    MONDAY_9 + HOUR,
                    request_id="waiting",
                    status="waiting_on_customer",
                ),
            ]
        ),
        fact_of(
            [
                *answered_at(MONDAY_9, request_id="resolved"),
                make_request_event("request.resolved", MONDAY_9 + HOUR, request_id="resolved"),
            ]
        ),
        fact_of(answered_at(MONDAY_9, request_id="hr-served", provider="hr", service="hr.payroll")),
    ]
    write(client, facts)

    read = sorted(running_requests(client), key=lambda request: request.request_id)

    assert read == sorted(
        [open_request(facts[1]), open_request(facts[4])], key=lambda request: request.request_id
    )
    assert read[1].paused_business_s == 5 * 3600  # waiting Monday 14:00-18:00 and Tuesday 08:00-09:00
    assert [request.request_id for request in running_requests(client, "it")] == ["paused"]

    [risk] = AtRiskService.over(client, DIRECTORY).at_risk(NOW, "it")
    assert (risk.request_id, risk.sla, risk.left_s) == ("paused", "resolution", 5400)


def test_snapshots_from_before_the_clock_columns_count_as_running_unless_closed_or_waiting(
    client: Client,
) -> None:
    old_columns = (*FACT_COLUMNS[: FACT_COLUMNS.index("sla_clock")], "last_event_at")

    def legacy(request_id: str, status: str, resolved_at: datetime | None = None) -> tuple[object, ...]:
        fact = fact_of(answered_at(MONDAY_9, request_id=request_id))._replace(
            status=status, resolved_at=resolved_at
        )
        return tuple(getattr(fact, column) for column in old_columns)

    rows = [
        legacy("open", "in_progress"),
        legacy("waiting", "waiting_on_customer"),
        legacy("done", "resolved", NOW),
    ]
    client.insert("request_facts", rows, column_names=old_columns)

    [request] = running_requests(client)

    assert (request.request_id, request.clock, request.paused_business_s, request.answered) == (
        "open",
        "running",
        0,
        True,
    )
