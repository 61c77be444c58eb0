"""Survey campaigns over HTTP: the worker's ``/api/v1/surveys`` endpoint and its client.

``GET /api/v1/surveys?provider=&campaign=`` answers ``{"provider", "campaign", "rows": [CampaignRow]}``;
an unknown department or campaign is a 400 whose reason lists the known ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Protocol

from clickhouse_connect.driver.client import Client

from schemas.directory import Directory
from stream_processors.scorecard.read_api import Endpoint
from stream_processors.scorecard.remote import RemoteScorecard
from stream_processors.scorecard.service import check_department
from stream_processors.surveys.campaigns import (
    CampaignRow,
    CampaignsService,
    CampaignThemes,
    ClickHouseCampaigns,
)

SURVEYS_PATH: Final = "/api/v1/surveys"


class CampaignsSource(Protocol):
    """:class:`CampaignsService` (ClickHouse) or :class:`RemoteCampaigns` (the worker's read API)."""

    def campaigns(self, provider: str | None = None, campaign: str | None = None) -> list[CampaignRow]: ...


def endpoints(service: CampaignsService, directory: Directory) -> dict[str, Endpoint]:
    """The read API's surveys endpoint over ``service``."""

    def parse(params: dict[str, str], now: datetime) -> tuple[str | None, str | None]:
        provider = params.get("provider")
        check_department(directory, provider, "provider")
        return provider, params.get("campaign")

    def answer(parsed: tuple[str | None, str | None]) -> object:
        provider, campaign = parsed
        rows = service.campaigns(provider, campaign)
        return {
            "provider": provider,
            "campaign": campaign,
            "rows": [row.model_dump(mode="json") for row in rows],
        }

    return {SURVEYS_PATH: Endpoint(frozenset({"provider", "campaign"}), parse, answer)}


def campaigns_source(
    backend: RemoteScorecard | Client, directory: Directory, comments: CampaignThemes | None = None
) -> CampaignsSource:
    """Campaigns from the worker's read API (a :class:`RemoteScorecard`) or from a ClickHouse client
    (with their themes when ``comments`` is given)."""
    if isinstance(backend, RemoteScorecard):
        return RemoteCampaigns(backend)
    return CampaignsService(ClickHouseCampaigns(backend), directory, comments)


class RemoteCampaigns:
    """:class:`CampaignsSource` over the worker's read API."""

    def __init__(self, remote: RemoteScorecard) -> None:
        self.remote = remote

    def campaigns(self, provider: str | None = None, campaign: str | None = None) -> list[CampaignRow]:
        body = self.remote.get_json(SURVEYS_PATH, {"provider": provider, "campaign": campaign})
        return [CampaignRow.model_validate(row) for row in body["rows"]]
