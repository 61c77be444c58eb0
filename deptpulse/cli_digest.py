"""`deptpulse digest`: each department head's weekly scorecard by e-mail (stream_processors/digest/).
deptpulse.cli registers the command once it has defined UserError and settings_of."""

from __future__ import annotations

from datetime import timedelta

import click

# A signed link in the mail stays valid for two weeks: the next Monday's mail brings a new one.
LINK_LIFETIME = timedelta(days=14)
REFUSED_HINT = (
    "the digest reads each department through the read API with its head's token: give the head a "
    "token_env in the heads file (DEPTPULSE_READ_API_HEADS_PATH), or run the digest against ClickHouse"
)


@click.command("digest")
@click.option(
    "--department",
    "departments",
    multiple=True,
    metavar="ID",
    help="Only this department's head (repeatable); default: every department.",
)
@click.option("--dry-run", is_flag=True, help="Print each mail that would be sent; send nothing.")
@click.option(
    "--week-ending",
    metavar="YYYY-MM-DD",
    default=None,
    help="The Sunday that ends the week (for backfills); default: the last full week in each "
    "department's timezone.",
)
@click.pass_context
def digest(ctx: click.Context, departments: tuple[str, ...], dry_run: bool, week_ending: str | None) -> None:
    """Mail each department head last week's scorecard in their language: the headline figures and
    their change, the weakest service, the top theme of the comments, the active alerts and a link
    to the live page. Sent through the SMTP relay Alertmanager uses (DEPTPULSE_SMTP_*).

    Exit code 1 when any head did not get their mail (each is printed with the reason)."""
    import os
    from datetime import UTC, datetime
    from functools import partial

    from deptpulse.cli import UserError, settings_of
    from schemas.directory import load_directory
    from stream_processors.access.heads import Heads, load_heads, signed_link
    from stream_processors.digest.alerts import fetch_alerts
    from stream_processors.digest.mail import SmtpRelay, deliver
    from stream_processors.digest.run import digest_department, scorecard_link
    from stream_processors.digest.weeks import ReportWeek, last_full_week, parse_week_ending
    from stream_processors.scorecard.remote import RemoteScorecard
    from stream_processors.scorecard.report import (
        ReportError,
        comments_source,
        open_backend,
        read_api_url,
        scorecard_source,
    )
    from stream_processors.scorecard.service import check_department

    settings = settings_of(ctx)
    now = datetime.now(UTC)
    try:  # everything the user gave is checked before anything is read or sent
        directory = load_directory(settings.directory_path)
        for department in departments:
            check_department(directory, department, "provider")
        ending = parse_week_ending(week_ending) if week_ending is not None else None
        # The read API's heads file: each head's token reads their own department, and their link
        # secret signs the mail's link (read here, in the composition root, as `deptpulse link` does).
        heads = (
            load_heads(settings.read_api_heads_path, directory, os.environ)
            if settings.read_api_heads_path is not None
            else Heads({})
        )
    except ValueError as exc:  # DirectoryError, UnknownDepartment, WeekError, HeadsError
        raise UserError(str(exc)) from exc
    password = settings.smtp_auth_password
    if settings.smtp_auth_username and password is None and settings.smtp_auth_password_file is not None:
        from pydantic import SecretStr

        try:
            password = SecretStr(settings.smtp_auth_password_file.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise UserError(
                f"cannot read DEPTPULSE_SMTP_AUTH_PASSWORD_FILE {settings.smtp_auth_password_file}: "
                f"{exc.strerror or exc}"
            ) from exc
    relay = SmtpRelay(
        smarthost=settings.smtp_smarthost,
        sender=settings.smtp_from,
        hello=settings.smtp_hello,
        require_tls=settings.smtp_require_tls,
        username=settings.smtp_auth_username,
        password=password,
    )
    alertmanager = settings.alertmanager_url or f"http://127.0.0.1:{settings.alertmanager_port}"
    public_url = settings.public_url or read_api_url(settings)
    selected = list(dict.fromkeys(departments)) or directory.department_ids()

    def link(department: str) -> str:
        credentials = heads.by_department.get(department)
        if credentials is None or credentials.link_secret is None:
            return scorecard_link(public_url, department)
        return signed_link(public_url, department, credentials.link_secret, now + LINK_LIFETIME)

    failed: list[str] = []
    try:
        with open_backend(settings) as (backend, origin):
            click.echo(f"reading from {origin}; mail through {relay.smarthost}", err=True)
            shared = scorecard_source(backend, directory), comments_source(backend, settings)
            for department in selected:
                credentials = heads.by_department.get(department)
                if isinstance(backend, RemoteScorecard) and credentials is not None and credentials.token:
                    # Through the read API a head's own token: their mail holds what they may read.
                    own = RemoteScorecard(backend.base_url, backend.timeout_seconds, credentials.token)
                    source, comments = scorecard_source(own, directory), comments_source(own, settings)
                else:
                    source, comments = shared
                timezone = directory.department(department).calendar.timezone
                week = ReportWeek(ending, timezone) if ending else last_full_week(now, timezone)
                outcome = digest_department(
                    directory,
                    department,
                    week,
                    source=source,
                    comments=comments,
                    alerts=partial(fetch_alerts, alertmanager),
                    link=link(department),
                    sender_address=relay.sender,
                    now=now,
                    send=None if dry_run else partial(deliver, relay),
                )
                for warning in outcome.warnings:
                    click.echo(f"{department}: warning: {warning}", err=True)
                if outcome.error:
                    failed.append(department)
                    not_sent = "WOULD NOT BE SENT" if dry_run else "NOT SENT"
                    refused = isinstance(backend, RemoteScorecard) and any(
                        f"answered {code}" in outcome.error for code in (401, 403)
                    )
                    hint = f"; {REFUSED_HINT}" if refused else ""
                    click.echo(f"{department}: {not_sent} to {outcome.to!r}: {outcome.error}{hint}", err=True)
                elif dry_run and outcome.message is not None:
                    click.echo(f"--- {department}: would send to {outcome.to}")
                    click.echo(f"Subject: {outcome.subject}\n")
                    body = outcome.message.get_body(preferencelist=("plain",))
                    click.echo(body.get_content() if body is not None else "")
                else:
                    click.echo(f"{department}: sent {outcome.subject!r} to {outcome.to}")
    except ReportError as exc:  # nothing can be read at all (the database or the read API)
        raise UserError(str(exc)) from exc
    done = len(selected) - len(failed)
    verb = "composed" if dry_run else "sent"
    click.echo(
        f"{done} of {len(selected)} digests {verb}"
        + (f"; not {verb}: {', '.join(failed)}" if failed else ""),
        err=True,
    )
    if failed:
        ctx.exit(1)
