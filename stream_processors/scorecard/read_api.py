"""The scorecard read API, framework-agnostic: ``ReadApi.handle(path, query_params) -> (status, body)``.

Endpoints (GET; every one takes ``window=1h|24h|7d|28d`` ending now, or ``since`` [+ ``until``]
as RFC 3339 with an offset; default ``window=7d``):

- ``/api/v1/scorecard?provider=&customer=``: ``{"window", "previous_window", "rows": [ScorecardRow]}``,
  per provider (or every provider) its overall row then a row per customer;
- ``/api/v1/matrix``: ``{"window", "previous_window", "rows"}``, one row per (provider, customer) pair;
- ``/api/v1/timeseries?provider=&customer=``: ``Timeseries`` (``step_seconds``, ``points``);
- ``/api/v1/services?provider=&customer=``: ``{"window", "previous_window", "rows"}``, per provider its
  overall row then a row per service (``service_category``; "" for events without one);
- ``/api/v1/questions?provider=&customer=``: ``{"window", "previous_window", "rows": [QuestionRow]}``.

Other features (comments, themes, survey questions and campaigns, actions) add their endpoints as
:class:`Endpoint` values: a parser that checks the parameters, then the answer.

Invalid input is a 400 ``{"error": "bad request", "reason": ...}`` decided BEFORE any query: an
unknown or repeated parameter, a department id the directory does not know, an unknown window, a
timestamp without an offset, until not after since. An unknown path is a 404; a failing query a
500 without details (they go to the log). :func:`register_faust_views` mounts the endpoints on a
Faust app's web server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import BaseModel

from schemas.directory import Directory
from stream_processors.scorecard.service import (
    ScorecardService,
    ScorecardSource,
    UnknownDepartment,
    UnknownService,
    check_department,
)
from stream_processors.scorecard.windows import Window, WindowError, resolve_window, shown

logger = logging.getLogger(__name__)

SCORECARD_PATH: Final = "/api/v1/scorecard"
MATRIX_PATH: Final = "/api/v1/matrix"
TIMESERIES_PATH: Final = "/api/v1/timeseries"
SERVICES_PATH: Final = "/api/v1/services"
QUESTIONS_PATH: Final = "/api/v1/questions"
WINDOW_PARAMS: Final = frozenset({"window", "since", "until"})
_WINDOW_PARAMS: Final = WINDOW_PARAMS
ENDPOINTS: Final = {
    SCORECARD_PATH: _WINDOW_PARAMS | {"provider", "customer"},
    MATRIX_PATH: _WINDOW_PARAMS,
    TIMESERIES_PATH: _WINDOW_PARAMS | {"provider", "customer"},
    SERVICES_PATH: _WINDOW_PARAMS | {"provider", "customer"},
    QUESTIONS_PATH: _WINDOW_PARAMS | {"provider", "customer"},
}
MAX_PARAM_LENGTH: Final = 200

QueryParams = Mapping[str, str | Sequence[str]]
Response = tuple[int, dict[str, Any]]


class BadRequest(ValueError):
    """A request the API refuses; the message is the reason returned with the 400."""


# What a parser may raise for a request the caller must fix: a 400 with the message as the reason.
USER_ERRORS: Final = (BadRequest, WindowError, UnknownDepartment, UnknownService)


@dataclass(frozen=True)
class Endpoint:
    """A GET endpoint of another feature: ``parse(params, now)`` checks the parameters (raising one of
    :data:`USER_ERRORS`) before ``answer(parsed)`` queries; the answer is a JSON-serialisable body, or
    one of :data:`USER_ERRORS` (a 400) for what only the data can refuse."""

    params: frozenset[str]
    parse: Callable[[dict[str, str], datetime], Any]
    answer: Callable[[Any], Any]


def _single_values(query_params: QueryParams, allowed: frozenset[str]) -> dict[str, str]:
    """One string per parameter, each known and of sane length."""
    values: dict[str, str] = {}
    for name, raw in query_params.items():
        if name not in allowed:
            raise BadRequest(f"unknown parameter {shown(name)}; allowed: {', '.join(sorted(allowed))}")
        if not isinstance(raw, str):
            if len(raw) != 1:
                raise BadRequest(f"parameter {name!r} must be given once")
            raw = raw[0]
        if len(raw) > MAX_PARAM_LENGTH:
            raise BadRequest(f"parameter {name!r} is longer than {MAX_PARAM_LENGTH} characters")
        values[name] = raw
    return values


def parse_window(params: Mapping[str, str], now: datetime) -> Window:
    """The window of ``window=`` or ``since``/``until`` parameters (raises WindowError)."""
    return resolve_window(
        window=params.get("window"), since=params.get("since"), until=params.get("until"), now=now
    )


def _window_json(window: Window) -> dict[str, Any]:
    """The effective bounds (whole minutes), and whether the bounds asked for were widened to them."""
    return {"since": window.since.isoformat(), "until": window.until.isoformat(), "widened": window.widened}


class ReadApi:
    """The endpoints over any :class:`ScorecardSource`; ``now`` is injected (the clock of ``window=``)."""

    def __init__(
        self,
        source: ScorecardSource,
        directory: Directory,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        endpoints: Mapping[str, Endpoint] | None = None,
    ) -> None:
        self._source = source
        self._directory = directory
        self._now = now
        self._endpoints = dict(endpoints or {})

    @property
    def paths(self) -> list[str]:
        return [*ENDPOINTS, *self._endpoints]

    def handle(self, path: str, query_params: QueryParams) -> Response:
        """(HTTP status, JSON-serialisable body) for a GET of ``path`` with ``query_params``."""
        endpoint = self._endpoints.get(path)
        if endpoint is not None:
            return self._handle_endpoint(path, endpoint, query_params)
        allowed = ENDPOINTS.get(path)
        if allowed is None:
            return 404, {
                "error": "not found",
                "reason": f"no endpoint {shown(path)}; see {', '.join(self.paths)}",
            }
        try:
            params = _single_values(query_params, allowed)
            window = resolve_window(
                window=params.get("window"),
                since=params.get("since"),
                until=params.get("until"),
                now=self._now(),
            )
            provider, customer = params.get("provider"), params.get("customer")
            check_department(self._directory, provider, "provider")
            check_department(self._directory, customer, "customer")
        except (BadRequest, WindowError, UnknownDepartment) as exc:
            return 400, {"error": "bad request", "reason": str(exc)}
        try:
            return 200, self._answer(path, window, provider, customer)
        except Exception:  # a storage failure: details to the log, not to the caller
            logger.exception("read API %s failed", path)
            return 500, {"error": "internal error", "reason": "the query failed; see the worker's log"}

    def _handle_endpoint(self, path: str, endpoint: Endpoint, query_params: QueryParams) -> Response:
        try:
            parsed = endpoint.parse(_single_values(query_params, endpoint.params), self._now())
        except USER_ERRORS as exc:
            return 400, {"error": "bad request", "reason": str(exc)}
        try:
            return 200, endpoint.answer(parsed)
        except USER_ERRORS as exc:  # refusable only once the data is read, e.g. an unknown campaign id
            return 400, {"error": "bad request", "reason": str(exc)}
        except Exception:  # a storage failure: details to the log, not to the caller
            logger.exception("read API %s failed", path)
            return 500, {"error": "internal error", "reason": "the query failed; see the worker's log"}

    def _answer(
        self, path: str, window: Window, provider: str | None, customer: str | None
    ) -> dict[str, Any]:
        if path == TIMESERIES_PATH:
            return self._source.timeseries(window, provider, customer).model_dump(mode="json")
        rows: Sequence[BaseModel]
        if path == MATRIX_PATH:
            rows = self._source.matrix(window)
        elif path == QUESTIONS_PATH:
            rows = self._source.questions(window, provider, customer)
        elif path == SERVICES_PATH:
            rows = self._source.services(window, provider, customer)
        else:
            rows = self._source.scorecard(window, provider, customer)
        return {
            "window": _window_json(window),
            "previous_window": _window_json(window.previous()),
            "rows": [row.model_dump(mode="json") for row in rows],
        }


def register_faust_views(
    app: Any,
    service: ScorecardService,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    endpoints: Mapping[str, Endpoint] | None = None,
) -> ReadApi:
    """Mount the endpoints on a ``faust.App``'s web server (call before the app starts).

    Queries block, so they run on one thread of their own: the event loop keeps serving, and
    the source's ClickHouse client is never used by two threads at once.
    """
    api = ReadApi(service, service.directory, now, endpoints)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deptpulse-read-api")

    def view_for(path: str) -> Callable[..., Any]:
        async def get(self: Any, request: Any) -> Any:
            query = request.query
            getall = getattr(query, "getall", None)  # aiohttp's MultiDict keeps repeated parameters
            params = {key: getall(key) for key in set(query.keys())} if getall else dict(query)
            status, body = await asyncio.get_running_loop().run_in_executor(
                executor, api.handle, path, params
            )
            return self.json(body, status=status)

        return get

    for path in api.paths:
        app.page(path, name=f"deptpulse_read_api_{path.rsplit('/', 1)[-1]}")(view_for(path))
    return api
