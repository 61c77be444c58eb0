"""`deptpulse surveys` and `deptpulse actions`: did it work? Survey campaigns, and improvement actions
with their measured effect. deptpulse.cli registers these commands once it has defined UserError and
settings_of, which the commands import when they run (so importing this module needs neither)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from deptpulse.settings import Settings
    from schemas.directory import Directory
    from stream_processors.scorecard.remote import RemoteScorecard

Rows = TypeVar("Rows")

_FORMATS = ("table", "json", "csv")
_out = click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write to this file."
)


def _emit(text: str, out: Path | None, origin: str) -> None:
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out} ({origin})", err=True)


def _checked(ctx: click.Context, provider: str | None) -> tuple[Settings, Directory]:
    """The settings and the directory, ``provider`` known: checked before anything is opened."""
    from deptpulse.cli import UserError, settings_of
    from schemas.directory import load_directory
    from stream_processors.scorecard.service import check_department

    settings = settings_of(ctx)
    try:
        directory = load_directory(settings.directory_path)
        check_department(directory, provider, "provider")
    except ValueError as exc:  # DirectoryError, UnknownDepartment
        raise UserError(str(exc)) from exc
    return settings, directory


def _read(settings: Settings, read: Callable[[RemoteScorecard | Client], Rows]) -> tuple[Rows, str]:
    """``read`` of the worker's read API or of ClickHouse (chosen as for `report`: open_backend), and
    where from; failures and refusals become a UserError."""
    from deptpulse.cli import UserError
    from stream_processors.scorecard.read_api import USER_ERRORS
    from stream_processors.scorecard.report import ReportError, open_backend, query_errors

    try:
        with open_backend(settings) as (backend, origin), query_errors():
            return read(backend), origin
    except (ReportError, *USER_ERRORS) as exc:
        raise UserError(str(exc)) from exc


def _styled(out: Path | None) -> tuple[bool, int]:
    import shutil

    styled = out is None and sys.stdout.isatty()
    return styled, shutil.get_terminal_size().columns if styled else 200


# --- deptpulse surveys ------------------------------------------------------------------------------


@click.command("surveys")
@click.option("--provider", default=None, metavar="ID", help="Provider department id; default: every one.")
@click.option("--campaign", default=None, metavar="ID", help="Only this campaign (an id answers name).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice([*_FORMATS, "html"]),
    default="table",
    show_default=True,
    help="json: a list of campaign rows; html: one self-contained page.",
)
@_out
@click.pass_context
def surveys(
    ctx: click.Context, provider: str | None, campaign: str | None, output_format: str, out: Path | None
) -> None:
    """Survey campaigns in the order they started: per campaign and provider, overall then per customer,
    invited, answered, the response rate (flagged below the policy's survey_min_response_rate), the NPS
    with its 95 % margin and its change against the provider's previous campaign with a verdict."""
    from stream_processors.scorecard.export import json_text
    from stream_processors.scorecard.report import comments_source
    from stream_processors.surveys import render
    from stream_processors.surveys.api import campaigns_source

    settings, directory = _checked(ctx, provider)
    rows, origin = _read(
        settings,
        lambda backend: campaigns_source(backend, directory, comments_source(backend, settings)).campaigns(
            provider, campaign
        ),
    )
    styled, width = _styled(out)
    if output_format == "json":
        text = json_text(rows)
    elif output_format == "csv":
        text = render.campaigns_csv(rows)
    elif output_format == "html":
        text = render.render_campaigns_page(rows, directory, datetime.now(UTC))
    else:
        text = render.campaigns_text(rows, directory, width, styled)
    _emit(text, out, origin)


# --- deptpulse actions ------------------------------------------------------------------------------


@click.group("actions")
def actions() -> None:
    """Improvement actions: record one, and see whether it worked (the figures before against after)."""


@actions.command("add")
@click.option("--provider", required=True, metavar="ID", help="The department that took the action.")
@click.option("--service", default=None, metavar="ID", help="The provider's service it is about.")
@click.option("--customer", default=None, metavar="ID", help="The customer department it is for.")
@click.option("--title", required=True, help="What was done, e.g. 'recruiting reorganised' (1-200 chars).")
@click.option("--started", required=True, metavar="YYYY-MM-DD", help="The day the change took effect.")
@click.option("--owner", default=None, metavar="EMAIL", help="Who owns the action.")
@click.pass_context
def actions_add(
    ctx: click.Context,
    provider: str,
    service: str | None,
    customer: str | None,
    title: str,
    started: str,
    owner: str | None,
) -> None:
    """Record an action: an action.recorded event, checked against the directory, published to Kafka
    (the worker stores it). Prints the event id."""
    from deptpulse.cli import UserError, settings_of
    from producers.publisher import Publisher, PublisherError
    from schemas.directory import load_directory
    from stream_processors.actions.recording import action_event

    settings = settings_of(ctx)
    try:  # everything is checked before Kafka is contacted
        try:
            started_on = date.fromisoformat(started)
        except ValueError:
            raise UserError(f"--started {started!r} is not a date: give YYYY-MM-DD") from None
        directory = load_directory(settings.directory_path)
        event = action_event(
            directory,
            provider=provider,
            title=title,
            started_on=started_on,
            now=datetime.now(UTC),
            service=service,
            customer=customer,
            owner=owner,
        )
    except ValueError as exc:  # DirectoryError, UnknownDepartment, UnknownService, ActionRefused
        raise UserError(str(exc)) from exc
    try:
        with Publisher.from_settings(settings, directory) as publisher:  # flushes on exit
            publisher.send(event)
    except PublisherError as exc:
        raise UserError(f"the action was not recorded: {exc}") from exc
    click.echo(event.event_id)
    click.echo(f"published to {settings.events_topic}; the worker stores it", err=True)


@actions.command("list")
@click.option("--provider", default=None, metavar="ID", help="Provider department id; default: every one.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(_FORMATS),
    default="table",
    show_default=True,
    help="json: a list of actions with their effects; csv: a line per action and figure.",
)
@_out
@click.pass_context
def actions_list(ctx: click.Context, provider: str | None, output_format: str, out: Path | None) -> None:
    """Every action, newest start first, with its effect: DEPTPULSE_ACTION_WINDOW_DAYS (28) before the
    start (UTC midnight) against as many days after DEPTPULSE_ACTION_SETTLING_DAYS (7), per figure the
    difference, its 95 % interval and a verdict; "measuring" until the after window has ended."""
    from stream_processors.actions import render
    from stream_processors.actions.api import actions_source
    from stream_processors.scorecard.export import json_text

    settings, directory = _checked(ctx, provider)
    rows, origin = _read(
        settings,
        lambda backend: actions_source(
            backend, directory, settings.action_window_days, settings.action_settling_days
        ).actions(datetime.now(UTC), provider),
    )
    styled, width = _styled(out)
    if output_format == "json":
        text = json_text(rows)
    elif output_format == "csv":
        text = render.actions_csv(rows)
    else:
        text = render.actions_text(rows, directory, width, styled)
    _emit(text, out, origin)
