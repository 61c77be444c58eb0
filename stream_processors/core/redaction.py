"""Redaction of free-text comments before they are stored: what is replaced, and by which mark.

- ``[email]``: e-mail addresses (``local@domain.tld``).
- ``[id]``: ticket and employee ids, :data:`DEFAULT_ID_PATTERNS` (case-sensitive, whole tokens):
  Jira keys ``HR-1234`` (two capitals first, so ``Q3-2026`` stays); ServiceNow numbers
  ``INC0012345`` (INC, RITM, REQ, CHG, PRB, SCTASK, TASK + 7 digits); Zendesk ``#1234`` (3+ digits,
  not an HTML entity ``&#8217;``); employee ids ``E12345`` (5+ digits), ``EMP-1234`` / ``EMP1234``
  (4+ digits), ``工号 1234``. Whatever else is shaped like a Jira key is taken for one (``UTF-8``,
  ``COVID-19``, ``FY-2026``): over-redacting a comment is the safe side.
- ``[phone]``: runs of 7+ digits with the usual separators (``+49 170 1234567``, ``(030) 123-4567``,
  ``电话13800138000``), not dates (``2026-03-02``, ``2026/3/2 9:15``) or times, and not digits
  touching a Latin letter.
- ``[name]``: people's names given to :class:`Redactor` (every department head's, by
  :meth:`Redactor.for_directory`). A Latin-script name matches case-insensitively as whole words
  (``Ann`` is not redacted inside ``Annual``), with any whitespace between its parts; each part of
  3+ letters is redacted on its own too (``Ada Park``: ``Ada``, ``Park``), shorter parts are not
  (too many ordinary words). A name in a script written without spaces (``王芳``) matches wherever it
  occurs, and only whole.

Order: e-mails, ids, phones, names (an address that holds a name or an id goes whole as ``[email]``;
``HR-1234567`` is an id, not ``HR-[phone]``). Id patterns must require a digit: a comment without
``@``, ``#`` or a digit (most of them) is only searched for names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from schemas.directory import Directory

EMAIL_MARK: Final = "[email]"
PHONE_MARK: Final = "[phone]"
ID_MARK: Final = "[id]"
NAME_MARK: Final = "[name]"

# Each pattern is a whole token: no Latin letter or digit may touch it, but CJK text may ("工单HR-12").
DEFAULT_ID_PATTERNS: Final[tuple[str, ...]] = (
    r"(?<![A-Za-z0-9_])[A-Z]{2}[A-Z0-9_]{0,8}-\d+(?![A-Za-z0-9_])",  # Jira keys: HR-1234, ITSD-7
    r"(?<![A-Za-z0-9_])(?:INC|RITM|REQ|CHG|PRB|SCTASK|TASK)\d{7}(?![A-Za-z0-9_])",  # ServiceNow numbers
    r"(?<![A-Za-z0-9_&])#\d{3,}(?![A-Za-z0-9_])",  # Zendesk tickets: #1234, not the entity &#8217;
    r"(?<![A-Za-z0-9_])(?:E\d{5,}|EMP-?\d{4,})(?![A-Za-z0-9_])",  # employee ids: E12345, EMP-1234
    r"工号[:：\s]*\d+",  # employee number written in Chinese: 工号 1234, 工号：1234
)

_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Runs of digits with the usual separators; a digit or Latin letter must not touch either end (so an
# id without a pattern, like ABC12345678, stays whole), but CJK text may ("电话13800138000").
_PHONE = re.compile(r"(?<![A-Za-z0-9])\+?\(?\d[\d\s().\-/]{5,}\d(?![A-Za-z0-9])")
_DATE_OR_TIME = re.compile(
    r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}$|^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$|^\d{1,2}:\d{2}"
)
# Dates inside a run of digits, so "2026/3/2 9" (before ":15") is not 7 digits of a phone number.
_DATE = re.compile(
    r"(?<!\d)(?:(?:19|20)\d\d[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.](?:19|20)\d\d)(?!\d)"
)
_MAYBE_PII = re.compile(r"[@#\d]")
# Letters of scripts written with spaces between words (Latin, Greek, Cyrillic) and digits: a Latin
# name must not touch one. Not `\b`: Python counts CJK characters as word characters, so `\bAnn\b`
# would miss the name in "我和Ann说".
_SPACED_LETTER = r"0-9A-Za-z\u00C0-\u024F\u0370-\u03FF\u0400-\u04FF"
# Scripts written without spaces between words (Han, kana, Thai): such names match as plain substrings.
_UNSPACED_SCRIPT = re.compile(r"[\u0E00-\u0E7F\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF]")
_NAME_PART = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")  # "O'Neil", "Anne" and "Marie" of "Anne-Marie"
_MIN_PART_LETTERS: Final = 3


def _phone(match: re.Match[str]) -> str:
    candidate = match.group(0)
    digits = sum(char.isdigit() for char in _DATE.sub("", candidate))
    if digits < 7 or _DATE_OR_TIME.match(candidate.strip()):
        return candidate
    return PHONE_MARK


def _names_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    """One alternation of every name (longest first, so a full name wins over its parts)."""
    spaced: set[str] = set()
    unspaced: set[str] = set()
    for raw in names:
        name = " ".join(raw.split())
        if not name:
            continue
        if _UNSPACED_SCRIPT.search(name):
            unspaced.add(name)
            continue
        spaced.add(r"\s+".join(re.escape(word) for word in name.split(" ")))
        parts = _NAME_PART.findall(name)
        if len(parts) > 1:
            spaced.update(re.escape(part) for part in parts if len(part) >= _MIN_PART_LETTERS)
    if not spaced and not unspaced:
        return None
    alternatives: list[str] = []
    if spaced:
        # Sorting by pattern length puts "Ada\s+Park" before "Ada"; re tries alternatives in order.
        words = "|".join(sorted(spaced, key=lambda p: (-len(p), p)))
        alternatives.append(rf"(?<![{_SPACED_LETTER}])(?:{words})(?![{_SPACED_LETTER}])")
    if unspaced:
        alternatives.append("|".join(re.escape(n) for n in sorted(unspaced, key=lambda n: (-len(n), n))))
    return re.compile("|".join(alternatives), re.IGNORECASE)


class Redactor:
    """Redacts e-mail addresses, phone numbers, ticket and employee ids, and people's names."""

    def __init__(self, names: Iterable[str] = (), id_patterns: Iterable[str] = DEFAULT_ID_PATTERNS) -> None:
        patterns = list(id_patterns)
        self._ids = re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None
        self._names = _names_pattern(names)

    @classmethod
    def for_directory(cls, directory: Directory) -> Redactor:
        """A redactor for the names of the people the directory holds (each department's head)."""
        return cls(names=[department.head.name for department in directory.departments])

    def redact(self, text: str) -> str:
        """The text with every e-mail, id, phone number and known name replaced by its mark."""
        if _MAYBE_PII.search(text):  # most comments have no '@', '#' or digit
            text = _EMAIL.sub(EMAIL_MARK, text)
            if self._ids is not None:
                text = self._ids.sub(ID_MARK, text)
            text = _PHONE.sub(_phone, text)
        if self._names is not None:
            text = self._names.sub(NAME_MARK, text)
        return text


_DEFAULT: Final = Redactor()


def redact(text: str) -> str:
    """The text with e-mail addresses, phone numbers (7+ digits, not dates) and ids replaced by marks."""
    return _DEFAULT.redact(text)
