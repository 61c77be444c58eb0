"""The at-risk requests over HTTP: the worker's ``/api/v1/at-risk`` endpoint and its client.

``GET /api/v1/at-risk?provider=`` answers ``{"at", "rows": [AtRiskRequest as an object]}``: the
provider's open requests with at most its ``sla_at_risk_share`` of a target left, the least time
left first, measured at the worker's clock. A head reads their own department's (as the other
provider endpoints).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Protocol

from clickhouse_connect.driver.client import Client

from schemas.directory import Directory
from schemas.observability import names
from stream_processors.at_risk.reading import AtRiskService
from stream_processors.core.at_risk import AtRiskRequest
from stream_processors.scorecard.read_api import Endpoint
from stream_processors.scorecard.remote import RemoteScorecard
from stream_processors.scorecard.service import check_department

AT_RISK_PATH: Final = names.AT_RISK_PATH


class AtRiskSource(Protocol):
    """:class:`AtRiskService` (ClickHouse) or :class:`RemoteAtRisk` (the worker's read API)."""

    def at_risk(self, now: datetime, provider: str | None = None) -> list[AtRiskRequest]: ...


def endpoints(service: AtRiskService, directory: Directory) -> dict[str, Endpoint]:
    """The read API's at-risk endpoint over ``service``."""

    def parse(params: dict[str, str], now: datetime) -> tuple[datetime, str | None]:
        provider = params.get("provider")
        check_department(directory, provider, "provider")
        return now, provider

    def answer(parsed: tuple[datetime, str | None]) -> object:
        now, provider = parsed
        return {"at": now.isoformat(), "rows": [risk._asdict() for risk in service.at_risk(now, provider)]}

    return {AT_RISK_PATH: Endpoint(frozenset({"provider"}), parse, answer)}


def at_risk_source(backend: RemoteScorecard | Client, directory: Directory) -> AtRiskSource:
    """The at-risk requests from the worker's read API (a :class:`RemoteScorecard`: the worker's
    clock) or from a ClickHouse client."""
    if isinstance(backend, RemoteScorecard):
        return RemoteAtRisk(backend)
    return AtRiskService.over(backend, directory)


class RemoteAtRisk:
    """:class:`AtRiskSource` over the worker's read API (measured at the worker's clock, not ``now``)."""

    def __init__(self, remote: RemoteScorecard) -> None:
        self.remote = remote

    def at_risk(self, now: datetime, provider: str | None = None) -> list[AtRiskRequest]:
        body = self.remote.get_json(AT_RISK_PATH, {"provider": provider})
        return [AtRiskRequest(**row) for row in body["rows"]]
