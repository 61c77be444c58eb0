"""The at-risk requests from ClickHouse: the running SLA clocks of the request facts, judged at ``now``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Final

from clickhouse_connect.driver.client import Client

from schemas.directory import Directory
from stream_processors.core.at_risk import AtRiskRequest, OpenRequest, at_risk
from stream_processors.sinks.clickhouse import as_utc

# Snapshots written before migration 007 carry no clock (sla_clock ''): open and not waiting on the
# customer counts as running, without the pauses that have ended (a warning can come early).
_RUNNING: Final = (
    "(sla_clock = 'running' OR (sla_clock = '' AND resolved_at IS NULL AND closed_at IS NULL "
    "AND status != 'waiting_on_customer'))"
)
MAX_OPEN_REQUESTS: Final = 100_000


def running_requests(
    client: Client, provider: str | None = None, limit: int = MAX_OPEN_REQUESTS
) -> list[OpenRequest]:
    """Requests whose SLA clock runs (the newest snapshot of each), of ``provider`` or every one."""
    where, parameters = _RUNNING, dict[str, object](limit=limit)
    if provider is not None:
        where += " AND provider_department = {provider:String}"
        parameters["provider"] = provider
    rows = client.query(
        "SELECT request_id, provider_department, customer_department, service_category, priority, opened_at, "
        "first_response_at IS NOT NULL, sla_paused_wall_s, sla_paused_business_s "
        f"FROM request_facts FINAL WHERE {where} LIMIT {{limit:UInt32}}",
        parameters=parameters,
    ).result_rows
    return [
        OpenRequest(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            as_utc(row[5]),
            bool(row[6]),
            "running",
            float(row[7]),
            float(row[8]),
        )
        for row in rows
    ]


class AtRiskService:
    """The at-risk requests of a provider (or every one) at an instant, from ``running``: the
    requests whose SLA clock runs, of a provider or every one (:func:`running_requests` of a client)."""

    def __init__(self, running: Callable[[str | None], Iterable[OpenRequest]], directory: Directory) -> None:
        self.running = running
        self.directory = directory

    @classmethod
    def over(cls, client: Client, directory: Directory) -> AtRiskService:
        return cls(lambda provider: running_requests(client, provider), directory)

    def at_risk(self, now: datetime, provider: str | None = None) -> list[AtRiskRequest]:
        return at_risk(self.running(provider), self.directory, now)
