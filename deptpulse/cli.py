"""The `deptpulse` command: one click group, thin subcommands that call into the packages."""

from __future__ import annotations

import sys

import click

from deptpulse.settings import Settings, load_settings


class UserError(click.ClickException):
    """A mistake of the user's or of the set-up: printed as one clear line, exit code 2."""

    exit_code = 2


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """deptpulse: how the departments of an organisation serve each other."""
    try:
        ctx.obj = load_settings()
    except Exception as exc:  # pydantic ValidationError: name the bad setting, no traceback
        raise UserError(f"invalid settings: {exc}") from exc


def settings_of(ctx: click.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


if __name__ == "__main__":
    sys.exit(main())
