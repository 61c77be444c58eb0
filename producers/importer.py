"""File import: canonical events from JSONL or CSV, validated one by one, rejects kept with reasons.

JSONL (``.jsonl``, ``.ndjson``, ``.json``, or any file whose first character is ``{``): one
canonical event per line, exactly the wire format; blank lines are skipped.

CSV (``.csv``, or anything else): a header row, then one event per row. The columns are the
canonical fields flattened, in any order; an empty cell means the field is absent:

    schema_version, event_type, event_id, occurred_at (RFC 3339 with an offset), source,
    provider_department, customer_department, service_category, priority,
    request_id (request events), status (request.status_changed), csat (feedback.submitted),
    score (survey.answered), comment, and ``attributes.<name>`` for each attribute.

``schema_version``, ``csat`` and ``score`` are read as integers; any other column is refused
by validation, which names it. Each line is validated by the sink (the publisher validates
against the directory before sending; :class:`ValidatingSink` only validates) and a refused
line becomes one JSON line of the rejects file: ``{"line", "kind", "reason", "input"}``.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal, Protocol

import orjson

from schemas.directory import Directory
from schemas.events import InvalidEvent, parse_event

Format = Literal["jsonl", "csv"]
INTEGER_COLUMNS: Final = frozenset({"schema_version", "csat", "score"})
ATTRIBUTE_PREFIX: Final = "attributes."
_INPUT_KEPT_CHARS: Final = 2000
_BOM: Final = b"\xef\xbb\xbf"


class EventSink(Protocol):
    """Takes one JSON-encoded event; raises :class:`InvalidEvent` when it refuses it."""

    def send(self, event: bytes) -> object: ...


class ValidatingSink:
    """Validates against the directory and counts: ``deptpulse publish --dry-run``, and tests."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.accepted = 0

    def send(self, event: bytes) -> object:
        parsed = parse_event(event, self.directory)
        self.accepted += 1
        return parsed

    def __enter__(self) -> ValidatingSink:
        return self

    def __exit__(self, *_: object) -> None:
        return None


@dataclass(frozen=True)
class Rejected:
    """A line that is not a valid event: where, what kind of problem, why, and what it said."""

    line: int
    kind: str
    reason: str
    input: str

    def to_json(self) -> bytes:
        return orjson.dumps(
            {"line": self.line, "kind": self.kind, "reason": self.reason, "input": self.input}
        )


@dataclass
class ImportSummary:
    published: int = 0
    rejected: int = 0
    rejects_path: Path | None = None  # written only when something was rejected
    reject_kinds: Counter[str] = field(default_factory=Counter)


def detect_format(path: Path) -> Format:
    """By suffix; otherwise JSONL when the first non-blank byte opens a JSON object."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    with path.open("rb") as file:
        head = file.read(4096).removeprefix(_BOM).lstrip()
    return "jsonl" if head.startswith(b"{") else "csv"


def default_rejects_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.rejects.jsonl")


def read_records(
    path: Path, file_format: Format | None = None, progress: Callable[[int], None] | None = None
) -> Iterator[tuple[int, bytes | Rejected]]:
    """(line number, one event as JSON bytes) per record; a CSV row that cannot be one is Rejected.

    ``progress`` is called with the number of bytes read since its previous call.
    """
    file_format = file_format or detect_format(path)
    with path.open("rb") as file:
        lines = _counted_lines(file, progress)
        yield from (_jsonl_records(lines) if file_format == "jsonl" else _csv_records(lines))


def import_file(
    path: Path,
    sink: EventSink,
    *,
    rejects_path: Path | None = None,
    file_format: Format | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Send every valid event of ``path`` to ``sink``; write the others to the rejects file.

    The rejects file (default ``<path>.rejects.jsonl``) is replaced: after the call it exists
    exactly when something was rejected.
    """
    rejects_path = rejects_path or default_rejects_path(path)
    rejects_path.unlink(missing_ok=True)
    summary = ImportSummary()
    rejects: IO[bytes] | None = None
    try:
        for line, record in read_records(path, file_format, progress):
            if isinstance(record, bytes):
                try:
                    sink.send(record)
                    summary.published += 1
                    continue
                except InvalidEvent as exc:
                    record = Rejected(line, exc.kind, exc.reason, _shown(record))
            if rejects is None:
                rejects = rejects_path.open("wb")
                summary.rejects_path = rejects_path
            rejects.write(record.to_json() + b"\n")
            summary.rejected += 1
            summary.reject_kinds[record.kind] += 1
    finally:
        if rejects is not None:
            rejects.close()
    return summary


def _counted_lines(file: IO[bytes], progress: Callable[[int], None] | None) -> Iterator[bytes]:
    first = True
    pending = 0
    for raw in file:
        if first:
            raw, first = raw.removeprefix(_BOM), False
        if progress is not None:
            pending += len(raw)
            if pending >= 1 << 20:  # a callback per MiB keeps a progress bar cheap
                progress(pending)
                pending = 0
        yield raw
    if progress is not None and pending:
        progress(pending)


def _jsonl_records(lines: Iterator[bytes]) -> Iterator[tuple[int, bytes | Rejected]]:
    for number, raw in enumerate(lines, start=1):
        record = raw.strip()
        if record:
            yield number, record


def _csv_records(lines: Iterator[bytes]) -> Iterator[tuple[int, bytes | Rejected]]:
    reader = csv.DictReader((raw.decode("utf-8", errors="replace") for raw in lines), restkey=None)
    for row in reader:
        line = reader.line_num  # the row's last physical line: the line itself unless cells span lines
        extra = row.pop(None, None)
        if extra:
            yield line, Rejected(line, "schema", f"{len(extra)} more cell(s) than header columns", _row(row))
            continue
        yield line, orjson.dumps(_event_fields(row))


def _event_fields(row: dict[str, Any]) -> dict[str, Any]:
    """A CSV row as canonical fields: empty cells dropped, integers read, attributes nested."""
    event: dict[str, Any] = {}
    attributes: dict[str, str] = {}
    for column, cell in row.items():
        if cell is None or cell == "":
            continue
        if column.startswith(ATTRIBUTE_PREFIX):
            attributes[column.removeprefix(ATTRIBUTE_PREFIX)] = cell
        elif column in INTEGER_COLUMNS:
            event[column] = _integer(cell)
        else:
            event[column] = cell
    if attributes:
        event["attributes"] = attributes
    return event


def _integer(cell: str) -> int | str:
    """An integer cell as int; anything else stays a string so validation names the field."""
    text = cell.strip()
    return int(text) if text.lstrip("-").isdigit() else cell


def _shown(record: bytes) -> str:
    return record.decode("utf-8", errors="replace")[:_INPUT_KEPT_CHARS]


def _row(row: dict[str, Any]) -> str:
    return orjson.dumps(row).decode()[:_INPUT_KEPT_CHARS]
