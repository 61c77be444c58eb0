"""Source adapters: one module per vendor, each a pure ``adapt(payload, directory) -> [event]``.

``ADAPTERS`` is the registry by source name; :func:`read_payloads` parses a file's text into payloads
and :func:`convert` runs an adapter over them, returning the events and the rejects (bad input is a
value: a reject names the record and the reason, it does not stop the others).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from producers.sources import hr_survey, jira_sm, servicenow, zendesk
from producers.sources.common import REJECTIONS, Adapter, AdapterError, Event
from schemas.directory import Directory

ADAPTERS: Final[dict[str, Adapter]] = {
    jira_sm.SOURCE: jira_sm.adapt,
    servicenow.SOURCE: servicenow.adapt,
    zendesk.SOURCE: zendesk.adapt,
    hr_survey.SOURCE: hr_survey.adapt,
}
# How a file of each source is read; JSON (one payload or a list of payloads) unless named here.
_READERS: Final[dict[str, Callable[[str], list[Any]]]] = {hr_survey.SOURCE: hr_survey.read_csv}


@dataclass(frozen=True)
class Reject:
    """A payload no event came from: its 1-based position in the file and why."""

    record: int
    reason: str


def read_payloads(source: str, text: str) -> list[Any]:
    """The payloads in a file's text; ValueError when it is not valid JSON (or CSV)."""
    reader = _READERS.get(source)
    if reader is not None:
        return reader(text)
    document = json.loads(text)
    return document if isinstance(document, list) else [document]


def convert(source: str, payloads: Sequence[Any], directory: Directory) -> tuple[list[Event], list[Reject]]:
    """Run ``source``'s adapter over ``payloads``: the events, and a reject for each payload that failed."""
    adapter = ADAPTERS[source]
    events: list[Event] = []
    rejects: list[Reject] = []
    for number, payload in enumerate(payloads, start=1):
        try:
            if not isinstance(payload, Mapping):
                raise AdapterError(f"expected a JSON object, got {type(payload).__name__}")
            events.extend(adapter(payload, directory))
        except REJECTIONS as exc:
            rejects.append(Reject(number, str(exc)))
    return events, rejects


__all__ = ["ADAPTERS", "Adapter", "AdapterError", "Event", "Reject", "convert", "read_payloads"]
