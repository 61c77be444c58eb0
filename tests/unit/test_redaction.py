"""Redaction: e-mails, phones, ticket and employee ids, and the names of the people in the directory."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.directory import Directory
from stream_processors.core.redaction import DEFAULT_ID_PATTERNS, Redactor, redact

pytestmark = pytest.mark.unit


def department(department_id: str, head: str) -> dict[str, Any]:
    return {
        "id": department_id,
        "name": department_id.upper(),
        "head": {"name": head, "email": f"head@{department_id}.example.com"},
        "calendar": {"timezone": "Asia/Shanghai", "working_hours": {"mon": ["09:00-18:00"]}},
    }


DIRECTORY = Directory.model_validate(
    {
        "organisation": "Tiny Corp",
        "departments": [
            department("it", "Ada Park"),
            department("hr", "王芳"),
            department("legal", "Ann"),
            department("sales", "Jo Li"),
            department("finance", "Anne-Marie Dupont"),
        ],
    }
)
REDACTOR = Redactor.for_directory(DIRECTORY)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ada Park never replied", "[name] never replied"),
        ("ADA  PARK and ada park", "[name] and [name]"),
        ("ask Park, or Ada", "ask [name], or [name]"),
        ("王芳说下周处理", "[name]说下周处理"),
        ("我和Ann说过了", "我和[name]说过了"),
        ("Annual review with ann.", "Annual review with [name]."),
        ("Joanna and Annie", "Joanna and Annie"),
        # Parts shorter than 3 letters are not names on their own: "Jo", "Li" stay.
        ("Jo Li helped; Jo and Li did not", "[name] helped; Jo and Li did not"),
        ("Anne-Marie Dupont, Marie, Dupont's team", "[name], [name], [name]'s team"),
        ("王总和李伟", "王总和李伟"),
    ],
)
def test_names_from_the_directory(text: str, expected: str) -> None:
    assert REDACTOR.redact(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see HR-1234 and ITSD-7", "see [id] and [id]"),
        ("工单HR-1234还没关", "工单[id]还没关"),
        ("INC0012345, RITM0001234, REQ0000001, CHG1234567, PRB0000042, SCTASK0000001, TASK0000002",
         "[id], [id], [id], [id], [id], [id], [id]"),
        ("Zendesk #4821 and #12", "Zendesk [id] and #12"),
        ("it&#8217;s fine", "it&#8217;s fine"),
        ("employee E12345 or EMP-1234 or EMP0042", "employee [id] or [id] or [id]"),
        ("工号：12345，工号 88", "[id]，[id]"),
        ("HR-1234567", "[id]"),  # an id, not "HR-[phone]"
        ("INC001234 has six digits", "INC001234 has six digits"),
        ("E1234 and BE12345 are not employees", "E1234 and BE12345 are not employees"),
    ],
)  # fmt: skip
def test_ticket_and_employee_ids(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "on 2026-03-02 at 09:15",
        "2026/3/2 9:15-17:30",
        "02.03.2026, 14:00",
        "2026-03-02 14:00-15:30, 2026-03-02/2026-03-05",
        "Q3-2026 and H1-2025",
        "2026年3月2日下午3点",
        "waited 45 minutes, room 1204, version 1.2.3",
    ],
)
def test_dates_times_and_small_numbers_stay(text: str) -> None:
    assert REDACTOR.redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to ada.park@example.com please", "write to [email] please"),
        ("Ada <ADA_PARK+it@mail.example.co.uk>", "[name] <[email]>"),
        ("call +49 170 1234567 now", "call [phone] now"),
        ("电话13800138000谢谢", "电话[phone]谢谢"),
        ("138 0013 8000", "[phone]"),
    ],
)
def test_emails_and_phones_as_before(text: str, expected: str) -> None:
    assert REDACTOR.redact(text) == expected


def test_without_id_patterns_ids_stay_and_phones_do_not_eat_them() -> None:
    plain = Redactor(id_patterns=())
    assert plain.redact("ticket INC0012345, call 13800138000") == "ticket INC0012345, call [phone]"


def test_the_default_patterns_are_the_module_function() -> None:
    text = "HR-1234 E12345 a@b.example 13800138000 Ada Park"
    assert (
        redact(text)
        == Redactor(id_patterns=DEFAULT_ID_PATTERNS).redact(text)
        == "[id] [id] [email] [phone] Ada Park"
    )


def test_redaction_is_idempotent() -> None:
    once = REDACTOR.redact("Ada Park (ada@x.example, +1 212 555 0100) about HR-12 for 王芳")
    assert once == "[name] ([email], [phone]) about [id] for [name]"
    assert REDACTOR.redact(once) == once


def test_names_are_literal_text_not_patterns() -> None:
    redactor = Redactor(names=["J.R. (Bob) O'Neil", "  ", ""])
    assert redactor.redact("ask J.R. (Bob) O'Neil or JxR") == "ask [name] or JxR"
    assert redactor.redact("Bob and O'Neil") == "[name] and [name]"


def test_text_without_anything_to_redact_comes_back_unchanged() -> None:
    text = "服务很好 but slow, 谢谢 🙂"
    assert REDACTOR.redact(text) == text
    assert Redactor().redact("") == ""
