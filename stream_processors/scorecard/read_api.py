"""The scorecard read API, framework-agnostic: ``ReadApi.handle(path, query_params) -> (status, body)``.

Endpoints (GET; every one takes ``window=1h|24h|7d|28d`` ending now, or ``since`` [+ ``until``]
as RFC 3339 with an offset; default ``window=7d``):

- ``/api/v1/scorecard?provider=&customer=``: ``{"window", "previous_window", "rows": [ScorecardRow]}``,
  per provider (or every provider) its overall row then a row per customer;
- ``/api/v1/matrix``: ``{"window", "previous_window", "rows"}``, one row per (provider, customer) pair;
- ``/api/v1/timeseries?provider=&customer=``: ``Timeseries`` (``step_seconds``, ``points``);
- ``/api/v1/services?provider=&customer=``: ``{"window", "previous_window", "rows"}``, per provider its
  overall row then a row per service (``service_category``; "" for events without one);
- ``/api/v1/questions?provider=&customer=``: ``{"window", "previous_window", "rows": [QuestionRow]}``;
- ``/scorecard/<department>?with_comments=``: the HTML page ``deptpulse report --format html`` writes
  (when the API is given a :class:`ScorecardPage`).

Other features (comments, themes, survey questions and campaigns, actions) add their endpoints as
:class:`Endpoint` values: a parser that checks the parameters, then the answer.

Invalid input is a 400 ``{"error": "bad request", "reason": ...}`` decided BEFORE any query: an
unknown or repeated parameter, a department id the directory does not know, an unknown window, a
timestamp without an offset, until not after since. An unknown path is a 404; a failing query a
500 without details (they go to the log). :func:`register_faust_views` mounts the endpoints on a
Faust app's web server.

Who asks is decided first, from the request's headers and a signed link's parameters, and what they
may read next (:mod:`stream_processors.access.rules`): 401 without valid credentials (unless the
API is the local stack's), 403 for what is not the reader's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from pydantic import BaseModel

from schemas.directory import Directory
from stream_processors.access.heads import LINK_PARAMS
from stream_processors.access.rules import AccessRefused, ReadAccess, Scope, Target
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
PAGE_PREFIX: Final = "/scorecard/"
PAGE_PARAMS: Final = _WINDOW_PARAMS | {"with_comments"}
MAX_PARAM_LENGTH: Final = 200
_ERRORS: Final = {400: "bad request", 401: "unauthorized", 403: "forbidden"}
_BOOLEANS: Final = {"1": True, "true": True, "0": False, "false": False}

QueryParams = Mapping[str, str | Sequence[str]]
# (HTTP status, body): a JSON-serialisable value, or an :class:`HtmlPage`.
Response = tuple[int, Any]


@dataclass(frozen=True)
class HtmlPage:
    """A body served as ``text/html``."""

    text: str


class ScorecardPage(Protocol):
    """The served scorecard page (:class:`stream_processors.scorecard.page.ReportPage`)."""

    def render(
        self, provider: str, window: Window, with_comments: bool, matrix_shared: bool, generated_at: datetime
    ) -> str: ...


def response_headers(status: int) -> dict[str, str]:
    """Headers of every answer: nothing is cached (they are one reader's), and a 401 says how to
    authenticate."""
    headers = {"Cache-Control": "private, no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="deptpulse"'
    return headers


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
    comments: bool = False  # free text: a head reads it with a token, not through a link


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
        page: ScorecardPage | None = None,
        access: ReadAccess | None = None,
    ) -> None:
        self._source = source
        self._directory = directory
        self._now = now
        self._endpoints = dict(endpoints or {})
        self._page = page
        self._access = access or ReadAccess.local(directory)

    @property
    def paths(self) -> list[str]:
        return [*ENDPOINTS, *self._endpoints]

    def handle(
        self, path: str, query_params: QueryParams, headers: Mapping[str, str] | None = None
    ) -> Response:
        """(HTTP status, body) for a GET of ``path`` with ``query_params`` and the request's ``headers``."""
        try:
            query, link = _link_params(query_params)
            reader = self._access.authenticate({k.lower(): v for k, v in (headers or {}).items()}, link)
        except AccessRefused as exc:
            return _refused(exc)
        found = self._target(path)
        if found is None:
            listed = [*self.paths, f"{PAGE_PREFIX}<department>"] if self._page else self.paths
            return 404, {
                "error": "not found",
                "reason": f"no endpoint {shown(path)}; see {', '.join(listed)}",
            }
        target, allowed = found
        try:
            scope = self._access.authorise(reader, target, _single_values(query, allowed))
        except BadRequest as exc:
            return 400, {"error": "bad request", "reason": str(exc)}
        except AccessRefused as exc:
            return _refused(exc)
        if target.kind == "page":
            assert target.page_department is not None
            return self._handle_page(target.page_department, scope)
        endpoint = self._endpoints.get(path)
        if endpoint is not None:
            return self._handle_endpoint(path, endpoint, scope.params)
        return self._handle_builtin(path, scope)

    def _target(self, path: str) -> tuple[Target, frozenset[str]] | None:
        """What ``path`` reads, for access, and the parameters it takes; None for no such path."""
        if path.startswith(PAGE_PREFIX) and self._page is not None:
            return Target("page", page_department=path.removeprefix(PAGE_PREFIX)), PAGE_PARAMS
        if path == MATRIX_PATH:
            return Target("matrix"), ENDPOINTS[path]
        endpoint = self._endpoints.get(path)
        allowed = endpoint.params if endpoint is not None else ENDPOINTS.get(path)
        if allowed is None:
            return None
        if "provider" not in allowed:
            return Target("other"), allowed
        comments = endpoint is not None and endpoint.comments
        return Target("provider", customer_view=path == SCORECARD_PATH, comments=comments), allowed

    def _handle_builtin(self, path: str, scope: Scope) -> Response:
        params = scope.params
        try:
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
            return 200, self._answer(path, window, provider, customer, scope.only_customer)
        except Exception:  # a storage failure: details to the log, not to the caller
            logger.exception("read API %s failed", path)
            return 500, {"error": "internal error", "reason": "the query failed; see the worker's log"}

    def _handle_page(self, department: str, scope: Scope) -> Response:
        assert self._page is not None
        params = scope.params
        try:
            check_department(self._directory, department, "provider")
            window = parse_window(params, self._now())
            with_comments = _BOOLEANS.get(params.get("with_comments", "0").lower())
            if with_comments is None:
                raise BadRequest("with_comments is 1 or 0")
        except USER_ERRORS as exc:
            return 400, {"error": "bad request", "reason": str(exc)}
        try:
            return 200, HtmlPage(
                self._page.render(department, window, with_comments, scope.matrix_shared, self._now())
            )
        except Exception:  # a storage failure: details to the log, not to the caller
            logger.exception("read API %s%s failed", PAGE_PREFIX, department)
            return 500, {"error": "internal error", "reason": "the query failed; see the worker's log"}

    def _handle_endpoint(self, path: str, endpoint: Endpoint, params: dict[str, str]) -> Response:
        try:
            parsed = endpoint.parse(params, self._now())
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
        self, path: str, window: Window, provider: str | None, customer: str | None, only_customer: str | None
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
        if only_customer is not None:  # a head reading other providers' rows as their customer
            rows = [row for row in rows if getattr(row, "customer_department", None) == only_customer]
        return {
            "window": _window_json(window),
            "previous_window": _window_json(window.previous()),
            "rows": [row.model_dump(mode="json") for row in rows],
        }


def _link_params(query_params: QueryParams) -> tuple[dict[str, str | Sequence[str]], dict[str, str]]:
    """(the request's own parameters, a signed link's); a link parameter given twice is a 401."""
    query = dict(query_params)
    link: dict[str, str] = {}
    for name in LINK_PARAMS:
        raw = query.pop(name, None)
        if raw is None:
            continue
        if not isinstance(raw, str):
            if len(raw) != 1:
                raise AccessRefused(401, f"the link's {name} must be given once")
            raw = raw[0]
        link[name] = raw[:MAX_PARAM_LENGTH]
    return query, link


def _refused(exc: AccessRefused) -> Response:
    return exc.status, {"error": _ERRORS.get(exc.status, "refused"), "reason": exc.reason}


def register_faust_views(
    app: Any,
    service: ScorecardService,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    endpoints: Mapping[str, Endpoint] | None = None,
    page: ScorecardPage | None = None,
    access: ReadAccess | None = None,
) -> ReadApi:
    """Mount the endpoints on a ``faust.App``'s web server (call before the app starts).

    Queries block, so they run on one thread of their own: the event loop keeps serving, and
    the source's ClickHouse client is never used by two threads at once.
    """
    api = ReadApi(service, service.directory, now, endpoints, page, access)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deptpulse-read-api")

    def view_for(path: str | None) -> Callable[..., Any]:
        async def get(self: Any, request: Any, **match: str) -> Any:
            query = request.query
            getall = getattr(query, "getall", None)  # aiohttp's MultiDict keeps repeated parameters
            params = {key: getall(key) for key in set(query.keys())} if getall else dict(query)
            asked = path or f"{PAGE_PREFIX}{match.get('department', '')}"
            headers = dict(request.headers)
            status, body = await asyncio.get_running_loop().run_in_executor(
                executor, api.handle, asked, params, headers
            )
            if isinstance(body, HtmlPage):
                return self.html(body.text, status=status, headers=response_headers(status))
            return self.json(body, status=status, headers=response_headers(status))

        return get

    for path in api.paths:
        app.page(path, name=f"deptpulse_read_api_{path.rsplit('/', 1)[-1]}")(view_for(path))
    if page is not None:
        app.page(PAGE_PREFIX + "{department}", name="deptpulse_read_api_page")(view_for(None))
    return api
