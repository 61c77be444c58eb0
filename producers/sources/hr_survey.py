"""HR pulse survey exports (CSV) -> survey.answered and survey.invited events; one call per row.

:func:`read_csv` turns an export into rows; :func:`adapt` maps one row. Columns (first found wins):

- response id: ``response_id``, ``ResponseId`` (Qualtrics), ``id`` (PulseStage);
- answered at: ``answered_at``, ``RecordedDate`` (Qualtrics), ``created_at`` (PulseStage); with an offset;
- the respondent's department (the customer): ``department``, ``Department``, ``team`` (PulseStage);
  mapping field ``department``;
- long exports, one answer a row: ``score`` (0-10) or PulseStage's ``response_value`` (its documented
  1-5 scale, rescaled 1->0, 2->3, 3->5, 4->8, 5->10 so that 5 is a promoter, 4 passive, 1-3 detractors;
  the raw value stays in attributes); the provider department it is about from ``provider_department``
  / ``about`` (mapping field ``department``), else the question text ``question`` / ``question_text``,
  else ``question_id`` (mapping field ``question``); the service it is about from ``service`` /
  ``service_category``: a service id of that provider in the directory (the directory maps questions
  to departments, not to services);
- wide exports (Qualtrics: one row a respondent, one column a question): every column whose name the
  directory maps under field ``question`` is a 0-10 score about that department;
- ``question_id``: the answer's question; without it, the question text (long) or the column name
  (wide), slugged; none for a bare ``score``;
- the campaign (survey round): ``campaign_id``, ``campaign``, ``survey_id`` (in Qualtrics, an
  embedded-data field named ``campaign_id`` exports as that column);
- the respondent: ``respondent_id``, else the response id (one respondent a response);
- ``comment``: optional free text.

Invitations (``survey.invited``): a row whose ``record_type`` is ``invitation``, or that has an
``invited`` value (``record_type`` ``answer``, or neither column: an answer). It needs a campaign, the
customer and provider departments (columns as above) and a time (``invited_at``, ``sent_at``, else
the answer-time columns). ``invited`` is how many people of the customer department the row invites, a
whole number from 1; without it the row is one invitee (one row per invitee; no other column of it is
kept, so e-mail addresses in an invitee list go nowhere).

Event ids are ``hr-survey:<response id>:<question id or text, slugged>`` and
``hr-survey:invited:<campaign>:<customer>:<provider>:<invitation_id column, else a digest of the row>``:
importing the same export twice repeats them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, NamedTuple
from zoneinfo import ZoneInfo

from producers.sources.common import (
    AdapterError,
    Event,
    attributes,
    first_present,
    integer,
    make_event,
    parse_time,
    present,
    resolve_department,
    slug,
    stable_id,
    survey_answer,
    text,
)
from schemas.directory import Directory, UnmappedValue

SOURCE: Final = "hr-survey"
_RESPONSE_ID: Final = ("response_id", "ResponseId", "id")
_ANSWERED_AT: Final = ("answered_at", "RecordedDate", "created_at")
_INVITED_AT: Final = ("invited_at", "sent_at", *_ANSWERED_AT)
_RESPONDENT_DEPARTMENT: Final = ("department", "Department", "team")
_PROVIDER: Final = ("provider_department", "about")
_QUESTION: Final = ("question", "question_text")
_QUESTION_ID: Final = "question_id"
_SERVICE: Final = ("service", "service_category")
_CAMPAIGN: Final = ("campaign_id", "campaign", "survey_id")
_RESPONDENT: Final = "respondent_id"
_RECORD_TYPE: Final = "record_type"
_INVITED: Final = "invited"
_INVITATION_ID: Final = "invitation_id"
_SCORES: Final = ("score", "response_value")
_ONE_TO_FIVE_AS_ZERO_TO_TEN: Final = {1: 0, 2: 3, 3: 5, 4: 8, 5: 10}


class _Answer(NamedTuple):
    id_part: str  # what the event id names the answer by (slugged)
    question_id: str | None
    provider: str
    service: str | None
    score: int
    extra: dict[str, Any]


def adapt(row: Mapping[str, Any], directory: Directory) -> list[Event]:
    """survey.answered events for one answer row (one per answered question), or one survey.invited."""
    if _is_invitation(row):
        return [_invitation(row, directory)]
    response_id = _column(row, _RESPONSE_ID)
    answered_column = _column_name(row, _ANSWERED_AT)
    answered = parse_time(row[answered_column], answered_column)
    customer = _customer(row, directory)
    respondent = first_present(row, _RESPONDENT)
    campaign = first_present(row, *_CAMPAIGN)
    comment = row.get("comment") or None
    return [
        survey_answer(
            SOURCE,
            stable_id(SOURCE, response_id, answer.id_part),
            answered,
            answer.provider,
            customer,
            answer.score,
            comment,
            attributes(answer.extra),
            service_category=answer.service,
            question_id=answer.question_id,
            campaign_id=stable_id(text(campaign[1]).strip()) if campaign else None,
            respondent_id=stable_id(text(respondent[1]).strip() if respondent else response_id),
        )
        for answer in _answers(row, directory)
    ]


def _answers(row: Mapping[str, Any], directory: Directory) -> list[_Answer]:
    """The answers in the row: one for a long export's row, one per mapped question column for a wide one."""
    if any(present(row.get(column)) for column in _SCORES):
        question_column, question = first_present(row, *_QUESTION) or (_QUESTION[0], None)
        question_id = text(row[_QUESTION_ID]).strip() if present(row.get(_QUESTION_ID)) else None
        provider = resolve_department(
            directory,
            SOURCE,
            "provider",
            *(("department", column, row.get(column)) for column in _PROVIDER),
            ("question", question_column, question),
            ("question", _QUESTION_ID, question_id),
        )
        if present(row.get("score")):
            score, extra, bare = integer(row["score"], "score"), {"question": question}, "score"
        else:
            raw = integer(row["response_value"], "response_value")
            if raw not in _ONE_TO_FIVE_AS_ZERO_TO_TEN:
                raise AdapterError(f"invalid response_value {raw}: PulseStage answers are 1-5")
            score, bare = _ONE_TO_FIVE_AS_ZERO_TO_TEN[raw], "response_value"
            extra = {"question": question, "vendor_score": raw, "vendor_scale": "1-5"}
        return [
            _Answer(
                slug(question_id or question or bare),
                question_id or _question_slug(question),
                provider,
                _service(row, directory, provider),
                score,
                extra,
            )
        ]
    answers: list[_Answer] = []
    for column, value in row.items():
        try:
            provider = directory.resolve(SOURCE, "question", str(column))
        except UnmappedValue:
            continue  # not a question about a department (metadata, demographics, ...)
        if present(value):
            score = integer(value, str(column))
            answers.append(
                _Answer(slug(column), _question_slug(column), provider, None, score, {"question": column})
            )
    if not answers:
        raise AdapterError(
            "no score: expected a 'score' or 'response_value' column, "
            f"or columns mapped under {SOURCE} field 'question'"
        )
    return answers


def _question_slug(question: Any) -> str | None:
    return stable_id(slug(question)) if present(question) else None


def _service(row: Mapping[str, Any], directory: Directory, provider: str) -> str | None:
    """The service the answer is about: a service id of the provider, or None without the column."""
    found = first_present(row, *_SERVICE)
    if found is None:
        return None
    column, value = found
    service = text(value).strip()
    services = [s.id for s in directory.department(provider).services]
    if service not in services:
        raise AdapterError(
            f"unknown service {column}={service!r}: {provider}'s services are {', '.join(services) or 'none'}"
        )
    return service


def _is_invitation(row: Mapping[str, Any]) -> bool:
    """A row is an invitation when record_type says so or it has an invited count; never both kinds."""
    invited = present(row.get(_INVITED))
    if present(row.get(_RECORD_TYPE)):
        kind = text(row[_RECORD_TYPE]).strip().lower()
        if kind not in ("invitation", "answer"):
            raise AdapterError(
                f"invalid {_RECORD_TYPE} {row[_RECORD_TYPE]!r}: expected 'invitation' or 'answer'"
            )
        if kind == "answer" and invited:
            raise AdapterError(f"an answer row ({_RECORD_TYPE} answer) has an {_INVITED!r} count")
        invited = kind == "invitation"
    if invited and any(present(row.get(column)) for column in _SCORES):
        raise AdapterError(
            f"a row with both an invitation ({_RECORD_TYPE} or {_INVITED!r}) and a score: "
            "put invitations and answers in rows of their own"
        )
    return invited


def _invitation(row: Mapping[str, Any], directory: Directory) -> Event:
    """One survey.invited event: ``invited`` people (1 without the column) of a customer department."""
    campaign = text(row[_column_name(row, _CAMPAIGN)]).strip()
    invited_column = _column_name(row, _INVITED_AT)
    customer = _customer(row, directory)
    provider = resolve_department(
        directory, SOURCE, "provider", *(("department", column, row.get(column)) for column in _PROVIDER)
    )
    invited = 1
    if present(row.get(_INVITED)):
        invited = integer(row[_INVITED], _INVITED)
        if invited < 1:
            raise AdapterError(
                f"invalid {_INVITED} {row[_INVITED]!r}: an invitation row invites 1 or more people"
            )
    if present(row.get(_INVITATION_ID)):
        key = text(row[_INVITATION_ID]).strip()
    else:  # rows of an invitee list differ in the invitee; the digest keeps who it is out of the id
        content = json.dumps(dict(row), sort_keys=True, ensure_ascii=False, default=str)
        key = "row-" + hashlib.sha256(content.encode()).hexdigest()[:16]
    return make_event(
        event_type="survey.invited",
        event_id=stable_id(SOURCE, "invited", campaign, customer, provider, key),
        occurred_at=parse_time(row[invited_column], invited_column),
        source=SOURCE,
        provider_department=provider,
        customer_department=customer,
        campaign_id=stable_id(campaign),
        invited=invited,
    )


def _customer(row: Mapping[str, Any], directory: Directory) -> str:
    return resolve_department(
        directory,
        SOURCE,
        "customer",
        *(("department", column, row.get(column)) for column in _RESPONDENT_DEPARTMENT),
    )


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
