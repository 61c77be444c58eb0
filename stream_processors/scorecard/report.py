"""``deptpulse report``: where the scorecard comes from, and the four output formats.

Where from (:func:`open_source`):

- a ClickHouse server (``DEPTPULSE_CLICKHOUSE_URL`` set): queried directly, whatever else runs;
- embedded chdb: one process can hold a chdb path, and while the worker runs it holds it. So the
  report first asks the worker's read API (``http://<bind_host>:<worker_port>/api/v1/...``) and
  only when nothing listens there opens the path itself (the worker is down, so it is free).

Formats: ``table`` (rich, the default), ``json`` (a list of :class:`ScorecardRow`), ``csv`` (the
same fields, :data:`ROW_FIELDS` order, empty for null) and ``html`` (one self-contained page for a
department head: needs a provider).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from pydantic import BaseModel

from deptpulse.settings import Settings
from schemas.directory import Directory
from stream_processors.actions.api import ActionsSource
from stream_processors.at_risk.api import AtRiskSource
from stream_processors.comments.api import CommentsSource, RemoteComments
from stream_processors.comments.reading import ClickHouseComments, CommentQuery, CommentsService
from stream_processors.scorecard.export import csv_text, json_text, terminal_text
from stream_processors.scorecard.queries import ClickHouseAggregates
from stream_processors.scorecard.questions import QuestionRow
from stream_processors.scorecard.remote import ReadApiError, RemoteScorecard
from stream_processors.scorecard.render_html import HtmlReport, render_html
from stream_processors.scorecard.render_table import questions_table, scorecard_table
from stream_processors.scorecard.rows import ROW_FIELDS, ScorecardRow
from stream_processors.scorecard.service import ScorecardService, ScorecardSource, check_department
from stream_processors.scorecard.windows import Window
from stream_processors.surveys.api import CampaignsSource

FORMATS: Final = ("table", "json", "csv", "html")
BY: Final = ("customer", "service", "question")
_TABLE_WIDTH: Final = 200  # columns when the table goes to a file


QUESTION_FIELDS: Final = tuple(QuestionRow.model_fields)


class ReportError(RuntimeError):
    """Something the user can act on (the message says what); the CLI prints it without a traceback."""


@dataclass(frozen=True)
class ReportRequest:
    window: Window
    provider: str | None = None
    customer: str | None = None
    output_format: str = "table"
    by: str = "customer"  # rows per customer department, per service, or per survey question
    with_comments: bool = False  # the HTML page shows themes and quotes

    def check(self, directory: Directory) -> None:
        """Raise ValueError for a request that cannot be answered, before anything is opened."""
        if self.output_format not in FORMATS:
            raise ValueError(f"unknown format {self.output_format!r}: choose one of {', '.join(FORMATS)}")
        if self.by not in BY:
            raise ValueError(f"unknown --by {self.by!r}: choose one of {', '.join(BY)}")
        check_department(directory, self.provider, "provider")
        check_department(directory, self.customer, "customer")
        if self.output_format == "html" and self.provider is None:
            raise ValueError("--format html is a page for one department: give --provider")
        if self.with_comments and self.output_format != "html":
            raise ValueError("--with-comments adds themes and quotes to the HTML page: use --format html")


def read_api_url(settings: Settings) -> str:
    """The worker's read API base URL; a wildcard bind address is reached on loopback."""
    host = settings.bind_host
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.worker_port}"


@contextmanager
def open_backend(settings: Settings) -> Iterator[tuple[Client | RemoteScorecard, str]]:
    """(backend, what it is): the worker's read API (a :class:`RemoteScorecard`) when chdb is in use
    and the worker listens, else a ClickHouse client from :func:`stream_processors.storage.connect`
    (closed on exit). Every reading command (report, comments, themes, surveys, actions) uses this."""
    from stream_processors import storage  # imports clickhouse_connect's client stack: only when needed

    if settings.clickhouse_url is None:
        remote = RemoteScorecard(read_api_url(settings), token=settings.read_api_token)
        if remote.listening():
            yield remote, f"the worker's read API at {remote.base_url}"
            return
    try:
        client = storage.connect(settings)
    except ClickHouseError as exc:
        where = (
            f"chdb path {settings.chdb_path}" if settings.clickhouse_url is None else "the ClickHouse server"
        )
        hint = (
            f" Another process (the worker?) may hold it, and its read API at {read_api_url(settings)} "
            "did not answer: start the worker with its web server, or stop it."
            if settings.clickhouse_url is None and "lock" in str(exc).lower()
            else ""
        )
        raise ReportError(f"cannot open {where}: {_first_line(exc)}.{hint}") from None
    try:
        yield client, f"database {client.database}"
    finally:
        client.close()


@contextmanager
def open_source(settings: Settings, directory: Directory) -> Iterator[tuple[ScorecardSource, str]]:
    """(source, what it is): the scorecard over :func:`open_backend`."""
    with open_backend(settings) as (backend, origin):
        yield scorecard_source(backend, directory), origin


def scorecard_source(backend: Client | RemoteScorecard, directory: Directory) -> ScorecardSource:
    if isinstance(backend, RemoteScorecard):
        return backend
    return ScorecardService(ClickHouseAggregates(backend), directory)


def comments_source(backend: Client | RemoteScorecard, settings: Settings) -> CommentsSource:
    if isinstance(backend, RemoteScorecard):
        return RemoteComments(backend)
    return CommentsService(
        ClickHouseComments(backend), settings.comments_min_respondents, settings.themes_min_comments
    )


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def render_json(rows: Sequence[BaseModel]) -> str:
    return json_text(rows)


def render_csv(rows: Sequence[ScorecardRow]) -> str:
    return csv_text((row.model_dump(mode="json") for row in rows), ROW_FIELDS)


def _questions(
    rows: Sequence[QuestionRow], directory: Directory, request: ReportRequest, width: int, styled: bool
) -> str:
    if request.output_format == "json":
        return render_json(rows)
    if request.output_format == "csv":
        # The distribution as one cell, its counts for scores 0..10 apart by spaces.
        records = [
            {
                **row.model_dump(mode="json"),
                "distribution": " ".join(str(count) for count in row.distribution),
            }
            for row in rows
        ]
        return csv_text(records, QUESTION_FIELDS)
    window = request.window
    title = (
        f"deptpulse survey questions {window.since:%Y-%m-%d %H:%M} – {window.until:%Y-%m-%d %H:%M} UTC "
        "(lowest mean first; change against the window of the same length before)"
        + (" — widened to whole minutes" if window.widened else "")
    )
    return terminal_text(questions_table(rows, directory, title), width, styled)


def render_table(
    rows: Sequence[ScorecardRow],
    directory: Directory,
    window: Window,
    width: int = _TABLE_WIDTH,
    styled: bool = False,
) -> str:
    """The rich table as text ``width`` columns wide; ANSI styles only when ``styled`` (a terminal)."""
    title = (
        f"deptpulse scorecard {window.since:%Y-%m-%d %H:%M} – {window.until:%Y-%m-%d %H:%M} UTC "
        "(changes against the window of the same length before)"
        + (" — widened to whole minutes" if window.widened else "")
    )
    return terminal_text(scorecard_table(rows, directory, title), width, styled)


def produce(
    source: ScorecardSource,
    directory: Directory,
    request: ReportRequest,
    generated_at: datetime,
    table_width: int = _TABLE_WIDTH,
    styled: bool = False,
    comments: CommentsSource | None = None,
    campaigns: CampaignsSource | None = None,
    actions: ActionsSource | None = None,
    matrix_shared: bool = True,
    at_risk: AtRiskSource | None = None,
) -> str:
    """The report in the requested format; storage and API failures become :class:`ReportError`.
    ``comments`` gives the HTML page its themes and quotes (``request.with_comments``); ``campaigns``
    and ``actions`` its latest survey campaign and its actions with their effect; ``at_risk`` its
    open requests about to breach a target (of ``request.customer`` only, when given). Without
    ``matrix_shared`` the page neither reads nor shows the organisation matrix."""
    with query_errors():
        if request.by == "question" and request.output_format != "html":
            return _questions(
                source.questions(request.window, request.provider, request.customer),
                directory,
                request,
                table_width,
                styled,
            )
        by_service = request.by == "service"
        rows = (source.services if by_service else source.scorecard)(
            request.window, request.provider, request.customer
        )
        if request.output_format == "json":
            return render_json(rows)
        if request.output_format == "csv":
            return render_csv(rows)
        if request.output_format == "table":
            return render_table(rows, directory, request.window, table_width, styled)
        assert request.provider is not None  # checked by ReportRequest.check
        return render_html(
            HtmlReport(
                directory=directory,
                provider=request.provider,
                customer=request.customer,
                window=request.window,
                rows=source.scorecard(request.window, request.provider, request.customer)
                if by_service
                else rows,
                services=rows
                if by_service
                else source.services(request.window, request.provider, request.customer),
                matrix=source.matrix(request.window) if matrix_shared else (),
                timeseries=source.timeseries(request.window, request.provider, request.customer),
                generated_at=generated_at,
                questions=source.questions(request.window, request.provider, request.customer),
                themes=comments.themes(
                    CommentQuery(request.provider, request.window, customer=request.customer)
                )
                if comments is not None and request.with_comments
                else None,
                campaigns=campaigns.campaigns(request.provider) if campaigns is not None else (),
                actions=actions.actions(generated_at, request.provider) if actions is not None else (),
                at_risk=[
                    risk
                    for risk in at_risk.at_risk(generated_at, request.provider)
                    if request.customer in (None, risk.customer_department)
                ]
                if at_risk is not None
                else (),
                matrix_shared=matrix_shared,
            )
        )


@contextmanager
def query_errors() -> Iterator[None]:
    """Read API and ClickHouse failures as :class:`ReportError` (a message the user can act on)."""
    try:
        yield
    except ReadApiError as exc:
        raise ReportError(str(exc)) from None
    except ClickHouseError as exc:
        text = str(exc)
        if "UNKNOWN_TABLE" in text or "Unknown table" in text:
            # Name the table the reading command needed (surveys and actions read raw_events).
            table = next((t for t in ("raw_events", "comments") if t in text), "minute_buckets")
            raise ReportError(
                f"no {table} table in the database: the worker creates it (the migrations) when it starts"
            ) from None
        raise ReportError(f"the ClickHouse query failed: {_first_line(exc)}") from None
