"""Actions over HTTP: the worker's ``/api/v1/actions`` endpoint and its client.

``GET /api/v1/actions?provider=`` answers ``{"window_days", "settling_days", "rows": [ActionRow]}``,
measured at the worker's clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Protocol

from clickhouse_connect.driver.client import Client

from schemas.directory import Directory
from stream_processors.actions.measuring import ActionRow, ActionsService, ClickHouseActions
from stream_processors.scorecard.read_api import Endpoint
from stream_processors.scorecard.remote import RemoteScorecard
from stream_processors.scorecard.service import check_department

ACTIONS_PATH: Final = "/api/v1/actions"


class ActionsSource(Protocol):
    """:class:`ActionsService` (ClickHouse) or :class:`RemoteActions` (the worker's read API)."""

    def actions(self, now: datetime, provider: str | None = None) -> list[ActionRow]: ...


def endpoints(service: ActionsService, directory: Directory) -> dict[str, Endpoint]:
    """The read API's actions endpoint over ``service``."""

    def parse(params: dict[str, str], now: datetime) -> tuple[datetime, str | None]:
        provider = params.get("provider")
        check_department(directory, provider, "provider")
        return now, provider

    def answer(parsed: tuple[datetime, str | None]) -> object:
        now, provider = parsed
        return {
            "window_days": service.window_days,
            "settling_days": service.settling_days,
            "rows": [row.model_dump(mode="json") for row in service.actions(now, provider)],
        }

    return {ACTIONS_PATH: Endpoint(frozenset({"provider"}), parse, answer)}


def actions_source(
    backend: RemoteScorecard | Client, directory: Directory, window_days: int, settling_days: int
) -> ActionsSource:
    """Actions from the worker's read API (a :class:`RemoteScorecard`: the worker's windows) or from a
    ClickHouse client (these windows)."""
    if isinstance(backend, RemoteScorecard):
        return RemoteActions(backend)
    return ActionsService(ClickHouseActions(backend), directory, window_days, settling_days)


class RemoteActions:
    """:class:`ActionsSource` over the worker's read API (measured at the worker's clock, not ``now``)."""

    def __init__(self, remote: RemoteScorecard) -> None:
        self.remote = remote

    def actions(self, now: datetime, provider: str | None = None) -> list[ActionRow]:
        body = self.remote.get_json(ACTIONS_PATH, {"provider": provider})
        return [ActionRow.model_validate(row) for row in body["rows"]]
