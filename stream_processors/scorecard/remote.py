"""A :class:`~stream_processors.scorecard.service.ScorecardSource` over the worker's read API (HTTP).

Embedded ClickHouse (chdb) lets one process hold a data path: while the worker runs, a report
cannot open the path, so it asks the worker instead (``deptpulse report`` decides which, see
:mod:`stream_processors.scorecard.report`).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urlsplit
from urllib.request import Request, urlopen

from pydantic import SecretStr

from stream_processors.scorecard.questions import QuestionRow
from stream_processors.scorecard.rows import ScorecardRow, Timeseries
from stream_processors.scorecard.windows import Window


class ReadApiError(RuntimeError):
    """The read API answered with an error, or could not be reached mid-report."""


def _window_params(window: Window) -> dict[str, str]:
    return {"since": window.since.isoformat(), "until": window.until.isoformat()}


class RemoteScorecard:
    """Scorecards from ``base_url`` (e.g. ``http://127.0.0.1:16066``), the worker's web server;
    ``token`` (a head's, ``DEPTPULSE_READ_API_TOKEN``) is sent as ``Authorization: Bearer``."""

    def __init__(self, base_url: str, timeout_seconds: float = 60.0, token: SecretStr | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self._token = token

    def listening(self, timeout_seconds: float = 0.5) -> bool:
        """Whether anything accepts connections at the API's host and port."""
        parts = urlsplit(self.base_url)
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout_seconds):
                return True
        except OSError:
            return False

    def get_json(self, path: str, params: Mapping[str, str | None]) -> Any:
        """GET ``path`` with ``params`` (None values left out): the decoded JSON body."""
        query = urlencode({key: value for key, value in params.items() if value is not None})
        url = f"{self.base_url}{path}?{query}"
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"} if self._token else {}
        try:
            with urlopen(Request(url, headers=headers), timeout=self.timeout_seconds) as response:
                return json.loads(response.read())
        except HTTPError as exc:
            try:
                body = json.loads(exc.read())
                reason = body.get("reason") or body.get("error") or exc.reason
            except ValueError:
                reason = exc.reason
            hint = {
                404: " (is the read API mounted on the worker? see register_faust_views)",
                401: " (set DEPTPULSE_READ_API_TOKEN to your token)",
            }.get(exc.code, "")
            raise ReadApiError(f"the read API at {url} answered {exc.code}: {reason}{hint}") from None
        except (URLError, OSError, ValueError) as exc:
            raise ReadApiError(f"the read API at {self.base_url} failed: {exc}") from None

    def scorecard(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> list[ScorecardRow]:
        body = self.get_json(
            "/api/v1/scorecard", {**_window_params(window), "provider": provider, "customer": customer}
        )
        return [ScorecardRow.model_validate(row) for row in body["rows"]]

    def services(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> list[ScorecardRow]:
        body = self.get_json(
            "/api/v1/services", {**_window_params(window), "provider": provider, "customer": customer}
        )
        return [ScorecardRow.model_validate(row) for row in body["rows"]]

    def questions(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> list[QuestionRow]:
        body = self.get_json(
            "/api/v1/questions", {**_window_params(window), "provider": provider, "customer": customer}
        )
        return [QuestionRow.model_validate(row) for row in body["rows"]]

    def matrix(self, window: Window) -> list[ScorecardRow]:
        body = self.get_json("/api/v1/matrix", _window_params(window))
        return [ScorecardRow.model_validate(row) for row in body["rows"]]

    def timeseries(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> Timeseries:
        body = self.get_json(
            "/api/v1/timeseries", {**_window_params(window), "provider": provider, "customer": customer}
        )
        return Timeseries.model_validate(body)
