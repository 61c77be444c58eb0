"""Rows as JSON text, CSV text and terminal text, one way for every reading command (surveys, actions)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from rich.console import Console, RenderableType


def json_text(rows: Sequence[BaseModel]) -> str:
    """A JSON list of the rows (dates as ISO 8601), indented, non-ASCII kept."""
    return json.dumps([row.model_dump(mode="json") for row in rows], ensure_ascii=False, indent=2) + "\n"


def cell(value: Any) -> str:
    """A CSV cell: empty for null, true/false for booleans, "; " between the items of a list."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "; ".join(cell(item) for item in value)
    return str(value)


def csv_text(records: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> str:
    """CSV with a header of ``fields``; each record is a JSON-mode dump (``model_dump(mode="json")``)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for record in records:
        writer.writerow({field: cell(record.get(field)) for field in fields})
    return out.getvalue()


def terminal_text(renderable: RenderableType, width: int = 200, styled: bool = False) -> str:
    """A rich table as text ``width`` columns wide; ANSI styles only when ``styled`` (a terminal)."""
    buffer = io.StringIO()
    Console(file=buffer, width=width, force_terminal=styled, no_color=not styled).print(renderable)
    return buffer.getvalue()
