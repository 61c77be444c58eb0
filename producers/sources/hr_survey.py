"""HR pulse survey exports (CSV) -> survey.answered events; one call per row.

:func:`read_csv` turns an export into rows; :func:`adapt` maps one row. Columns (first found wins):

- response id: ``response_id``, ``ResponseId`` (Qualtrics), ``id`` (PulseStage);
- answered at: ``answered_at``, ``RecordedDate`` (Qualtrics), ``created_at`` (PulseStage); with an offset;
- the respondent's department (the customer): ``department``, ``Department``, ``team`` (PulseStage);
  mapping field ``department``;
- long exports, one answer a row: ``score`` (0-10) or PulseStage's ``response_value`` (its documented
  1-5 scale, rescaled 1->0, 2->3, 3->5, 4->8, 5->10 so that 5 is a promoter, 4 passive, 1-3 detractors;
  the raw value stays in attributes); the provider department it is about from ``provider_department``
  / ``about`` (mapping field ``department``), else the question text ``question`` / ``question_text``
  (mapping field ``question``);
- wide exports (Qualtrics: one row a respondent, one column a question): every column whose name the
  directory maps under field ``question`` is a 0-10 score about that department;
- ``comment``: optional free text.

Event ids are ``hr-survey:<response id>:<question, slugged>``: importing the same export twice repeats them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from producers.sources.common import (
    AdapterError,
    Event,
    attributes,
    first_present,
    integer,
    parse_time,
    present,
    resolve_department,
    slug,
    stable_id,
    survey_answer,
)
from schemas.directory import Directory, UnmappedValue

SOURCE: Final = "hr-survey"
_RESPONSE_ID: Final = ("response_id", "ResponseId", "id")
_ANSWERED_AT: Final = ("answered_at", "RecordedDate", "created_at")
_RESPONDENT_DEPARTMENT: Final = ("department", "Department", "team")
_PROVIDER: Final = ("provider_department", "about")
_QUESTION: Final = ("question", "question_text")
_ONE_TO_FIVE_AS_ZERO_TO_TEN: Final = {1: 0, 2: 3, 3: 5, 4: 8, 5: 10}


def adapt(row: Mapping[str, Any], directory: Directory) -> list[Event]:
    """survey.answered events for one export row (one per answered question)."""
    response_id = _column(row, _RESPONSE_ID)
    answered_column = _column_name(row, _ANSWERED_AT)
    answered = parse_time(row[answered_column], answered_column)
    customer = resolve_department(
        directory,
        SOURCE,
        "customer",
        *(("department", column, row.get(column)) for column in _RESPONDENT_DEPARTMENT),
    )
    comment = row.get("comment") or None
    return [
        survey_answer(
            SOURCE,
            stable_id(SOURCE, response_id, slug(question)),
            answered,
            provider,
            customer,
            score,
            comment,
            attributes(extra),
        )
        for question, provider, score, extra in _answers(row, directory)
    ]


def _answers(row: Mapping[str, Any], directory: Directory) -> list[tuple[str, str, int, dict[str, Any]]]:
    """(question, provider department, 0-10 score, attributes) for each answer in the row."""
    if present(row.get("score")) or present(row.get("response_value")):
        question_column, question = first_present(row, *_QUESTION) or (_QUESTION[0], None)
        provider = resolve_department(
            directory,
            SOURCE,
            "provider",
            *(("department", column, row.get(column)) for column in _PROVIDER),
            ("question", question_column, question),
        )
        if present(row.get("score")):
            return [(question or "score", provider, integer(row["score"], "score"), {"question": question})]
        raw = integer(row["response_value"], "response_value")
        if raw not in _ONE_TO_FIVE_AS_ZERO_TO_TEN:
            raise AdapterError(f"invalid response_value {raw}: PulseStage answers are 1-5")
        extra = {"question": question, "vendor_score": raw, "vendor_scale": "1-5"}
        return [(question or "response_value", provider, _ONE_TO_FIVE_AS_ZERO_TO_TEN[raw], extra)]
    answers: list[tuple[str, str, int, dict[str, Any]]] = []
    for column, value in row.items():
        try:
            provider = directory.resolve(SOURCE, "question", str(column))
        except UnmappedValue:
            continue  # not a question about a department (metadata, demographics, ...)
        if present(value):
            answers.append((str(column), provider, integer(value, str(column)), {"question": column}))
    if not answers:
        raise AdapterError(
            "no score: expected a 'score' or 'response_value' column, "
            f"or columns mapped under {SOURCE} field 'question'"
        )
    return answers


def _column_name(row: Mapping[str, Any], columns: tuple[str, ...]) -> str:
    found = first_present(row, *columns)
    if found is None:
        raise AdapterError(f"missing column: one of {', '.join(repr(column) for column in columns)}")
    return found[0]


def _column(row: Mapping[str, Any], columns: tuple[str, ...]) -> str:
    return str(row[_column_name(row, columns)])


def read_csv(text: str) -> list[dict[str, Any]]:
    """Rows of a survey export.

    Qualtrics exports carry two more header rows (question texts, then ``{"ImportId": ...}`` JSON);
    they are dropped, and naive date columns get the time zone their ImportId names.
    """
    rows = list(csv.DictReader(io.StringIO(text)))
    for index, row in enumerate(rows[:2]):
        import_ids = _import_ids(row)
        if import_ids is not None:
            return [_localised(data, import_ids) for data in rows[index + 1 :]]
    return rows


def _import_ids(row: Mapping[str, Any]) -> dict[str, dict[str, Any]] | None:
    """Qualtrics' ImportId header row as {column: {"ImportId": ..., "timeZone": ...}}, else None."""
    try:
        parsed = {
            column: json.loads(value) for column, value in row.items() if isinstance(value, str) and value
        }
    except json.JSONDecodeError:
        return None
    if parsed and all(isinstance(value, dict) and "ImportId" in value for value in parsed.values()):
        return parsed
    return None


def _localised(row: dict[str, Any], import_ids: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    for column, meta in import_ids.items():
        value = row.get(column)
        if "timeZone" in meta and isinstance(value, str) and value:
            try:
                naive = datetime.fromisoformat(value)
                zone = ZoneInfo(meta["timeZone"])
            except (ValueError, KeyError):  # KeyError: an unknown zone
                continue  # left naive: the adapter rejects the row, naming the column
            if naive.tzinfo is None:
                row[column] = naive.replace(tzinfo=zone).isoformat()
    return row
