"""The one Jinja2 environment every HTML page and mail is rendered with (templates in ``templates/``).

Autoescaping is on for every template and undefined names fail (``StrictUndefined``). Values are
escaped as :func:`html.escape` writes them (``&quot;``, ``&#x27;``) rather than MarkupSafe's
``&#34;``/``&#39;``: the same characters, and the pages stay byte-for-byte what they were before the
templates. Text from the directory, comments and actions is never marked safe in Python; a template
that needs markup builds it with a macro.
"""

from __future__ import annotations

import html
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, Template, select_autoescape
from markupsafe import Markup


def _escaped(value: object) -> object:
    """Every ``{{ value }}``: markup (a macro's output, a ``Markup``) as it is, anything else escaped."""
    if hasattr(value, "__html__"):
        return value
    return Markup(html.escape(str(value), quote=True))


def _coordinate(value: float) -> str:
    """An SVG coordinate with one decimal: ``{{ y|coord }}``."""
    return f"{value:.1f}"


@cache
def environment() -> Environment:
    """Templates as package data; a template file's last newline is dropped (Jinja's default), so a
    section included on its own line of a page adds exactly that line."""
    env = Environment(
        loader=PackageLoader("stream_processors", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default=True, default_for_string=True),
        undefined=StrictUndefined,
        finalize=_escaped,
    )
    env.filters["coord"] = _coordinate
    return env


def template(name: str) -> Template:
    """A template under ``stream_processors/templates/``, e.g. ``scorecard/page.html``."""
    return environment().get_template(name)
