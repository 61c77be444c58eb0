"""Comments and themes over HTTP: the worker's read API endpoints and the client of them.

``GET /api/v1/comments`` and ``/api/v1/themes`` take ``provider`` (required), ``service``,
``customer``, ``campaign``, ``max_csat`` (1-5), a window (``window`` or ``since``/``until``) and
``limit`` / ``top``; they answer a :class:`CommentsAnswer` / :class:`ThemesAnswer` as JSON.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Protocol

from schemas.directory import Directory
from stream_processors.comments.reading import CommentQuery, CommentsAnswer, CommentsService, ThemesAnswer
from stream_processors.scorecard.read_api import WINDOW_PARAMS, BadRequest, Endpoint, parse_window
from stream_processors.scorecard.remote import RemoteScorecard
from stream_processors.scorecard.service import check_department, check_service
from stream_processors.scorecard.windows import Window, shown

COMMENTS_PATH: Final = "/api/v1/comments"
THEMES_PATH: Final = "/api/v1/themes"
_SELECTION: Final = WINDOW_PARAMS | {"provider", "service", "customer", "campaign", "max_csat"}
MAX_LIMIT: Final = 1000


class CommentsSource(Protocol):
    """Comments and themes of a selection: :class:`CommentsService` or :class:`RemoteComments`."""

    def comments(self, query: CommentQuery, limit: int = 100) -> CommentsAnswer: ...

    def themes(self, query: CommentQuery, top: int = 10) -> ThemesAnswer: ...


def comment_query(
    directory: Directory,
    window: Window,
    provider: str | None,
    service: str | None = None,
    customer: str | None = None,
    max_csat: int | None = None,
    campaign: str | None = None,
) -> CommentQuery:
    """A checked selection: known provider (required), the provider's service, a known customer."""
    if not provider:
        raise BadRequest("provider is required: comments are read one provider department at a time")
    check_department(directory, provider, "provider")
    check_service(directory, service, provider)
    check_department(directory, customer, "customer")
    if max_csat is not None and not 1 <= max_csat <= 5:
        raise BadRequest(f"max_csat {max_csat} is not a CSAT score: give 1 to 5")
    return CommentQuery(provider, window, service, customer, max_csat, campaign)


def _integer(params: dict[str, str], name: str, low: int, high: int) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} {shown(raw)} is not a whole number") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, not {value}")
    return value


def endpoints(service: CommentsService, directory: Directory) -> dict[str, Endpoint]:
    """The read API's comments and themes endpoints over ``service``."""

    def parse(params: dict[str, str], now: datetime) -> tuple[CommentQuery, int]:
        query = comment_query(
            directory,
            parse_window(params, now),
            params.get("provider"),
            params.get("service"),
            params.get("customer"),
            _integer(params, "max_csat", 1, 5),
            params.get("campaign"),
        )
        return query, _integer(params, "limit", 1, MAX_LIMIT) or _integer(params, "top", 1, 100) or 0

    def comments(parsed: tuple[CommentQuery, int]) -> object:
        query, limit = parsed
        return service.comments(query, limit or 100).model_dump(mode="json")

    def themes(parsed: tuple[CommentQuery, int]) -> object:
        query, top = parsed
        return service.themes(query, top or 10).model_dump(mode="json")

    return {
        COMMENTS_PATH: Endpoint(_SELECTION | {"limit"}, parse, comments, comments=True),
        THEMES_PATH: Endpoint(_SELECTION | {"top"}, parse, themes, comments=True),
    }


def _params(query: CommentQuery) -> dict[str, str | None]:
    return {
        "provider": query.provider,
        "service": query.service,
        "customer": query.customer,
        "campaign": query.campaign,
        "max_csat": None if query.max_csat is None else str(query.max_csat),
        "since": query.window.since.isoformat(),
        "until": query.window.until.isoformat(),
    }


class RemoteComments:
    """:class:`CommentsSource` over the worker's read API."""

    def __init__(self, remote: RemoteScorecard) -> None:
        self.remote = remote

    def comments(self, query: CommentQuery, limit: int = 100) -> CommentsAnswer:
        body = self.remote.get_json(COMMENTS_PATH, {**_params(query), "limit": str(limit)})
        return CommentsAnswer.model_validate(body)

    def themes(self, query: CommentQuery, top: int = 10) -> ThemesAnswer:
        body = self.remote.get_json(THEMES_PATH, {**_params(query), "top": str(top)})
        return ThemesAnswer.model_validate(body)
