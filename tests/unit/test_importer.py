"""producers.importer: JSONL and CSV files, validated line by line, rejects with line numbers and reasons."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from producers.importer import (
    ValidatingSink,
    default_rejects_path,
    detect_format,
    import_file,
    read_records,
)
from schemas.directory import Directory, load_directory
from schemas.events import FeedbackSubmitted, RequestOpened, RequestStatusChanged, SurveyAnswered, parse_event

pytestmark = pytest.mark.unit

EXAMPLE_ORG = Path(__file__).parents[2] / "deploy" / "directory" / "example-org.yaml"

OPENED: dict[str, Any] = {
    "schema_version": 1,
    "event_type": "request.opened",
    "event_id": "e-1",
    "occurred_at": "2026-03-02T09:15:00+01:00",
    "source": "jira-sm",
    "provider_department": "it",
    "customer_department": "finance",
    "service_category": "it.access",
    "priority": "P3",
    "request_id": "ITSD-1",
    "attributes": {"channel": "portal"},
}
FEEDBACK: dict[str, Any] = {
    **{k: v for k, v in OPENED.items() if k != "attributes"},
    "event_type": "feedback.submitted",
    "event_id": "e-2",
    "csat": 2,
    "comment": "slow, but polite",
}


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory(EXAMPLE_ORG)


class RecordingSink(ValidatingSink):
    """Validates like the publisher, and keeps what it would have sent."""

    def __init__(self, directory: Directory) -> None:
        super().__init__(directory)
        self.sent: list[bytes] = []

    def send(self, event: bytes) -> object:
        parsed = super().send(event)
        self.sent.append(event)
        return parsed


def jsonl(*lines: dict[str, Any] | str) -> bytes:
    return b"".join(
        (line.encode() if isinstance(line, str) else orjson.dumps(line)) + b"\n" for line in lines
    )


def read_rejects(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_clean_jsonl_file_is_sent_whole_and_leaves_no_rejects_file(
    tmp_path: Path, directory: Directory
) -> None:
    source = tmp_path / "events.jsonl"
    source.write_bytes(jsonl(OPENED, "", FEEDBACK))  # blank lines are skipped, not rejected
    sink = RecordingSink(directory)
    summary = import_file(source, sink)
    assert (summary.published, summary.rejected, summary.rejects_path) == (2, 0, None)
    assert [parse_event(raw).event_id for raw in sink.sent] == ["e-1", "e-2"]
    assert not default_rejects_path(source).exists()


def test_bad_lines_are_rejected_with_their_line_numbers_and_reasons(
    tmp_path: Path, directory: Directory
) -> None:
    source = tmp_path / "events.jsonl"
    source.write_bytes(
        jsonl(
            OPENED,
            {**OPENED, "event_id": "e-3", "customer_department": "marketing"},  # line 2: unknown department
            "{not json",  # line 3
            FEEDBACK,
            "",
            {**FEEDBACK, "event_id": "e-4", "csat": 7},  # line 6
            {**OPENED, "event_id": "e-5", "occurred_at": "2026-03-02T09:15:00"},  # line 7: no offset
        )
    )
    sink = RecordingSink(directory)
    summary = import_file(source, sink)
    assert (summary.published, summary.rejected) == (2, 4)
    assert summary.rejects_path == tmp_path / "events.jsonl.rejects.jsonl"
    rejects = read_rejects(summary.rejects_path)
    assert [(r["line"], r["kind"]) for r in rejects] == [
        (2, "unknown_department"),
        (3, "decode"),
        (6, "schema"),
        (7, "schema"),
    ]
    assert "customer_department: Value error, unknown department 'marketing'" in rejects[0]["reason"]
    assert rejects[2]["reason"].startswith("csat:")
    assert rejects[3]["reason"].startswith("occurred_at:")
    assert rejects[1]["input"] == "{not json"
    assert json.loads(rejects[0]["input"])["event_id"] == "e-3"
    assert summary.reject_kinds == {"unknown_department": 1, "decode": 1, "schema": 2}


def test_an_explicit_rejects_path_is_used_and_a_stale_one_is_replaced(
    tmp_path: Path, directory: Directory
) -> None:
    source = tmp_path / "events.jsonl"
    rejects = tmp_path / "out" / "bad.jsonl"
    rejects.parent.mkdir()
    rejects.write_text("stale\n")
    source.write_bytes(jsonl("[]"))
    summary = import_file(source, ValidatingSink(directory), rejects_path=rejects)
    assert summary.rejects_path == rejects
    assert [r["line"] for r in read_rejects(rejects)] == [1]
    source.write_bytes(jsonl(OPENED))
    assert import_file(source, ValidatingSink(directory), rejects_path=rejects).rejected == 0
    assert not rejects.exists()


CSV_HEADER = (
    "event_type,event_id,occurred_at,schema_version,source,provider_department,customer_department,"
    "service_category,priority,request_id,status,csat,score,comment,attributes.channel,attributes.ticket_url\n"
)


def test_csv_rows_become_canonical_events(tmp_path: Path, directory: Directory) -> None:
    source = tmp_path / "export.csv"
    source.write_text(
        CSV_HEADER
        + "request.opened,c-1,2026-03-02T09:15:00Z,1,jira-sm,it,finance,it.access,P3,ITSD-9,,,,,portal,https://x/9\n"
        + 'feedback.submitted,c-2,2026-03-03T10:00:00+01:00,1,jira-sm,it,finance,,,ITSD-9,,4,,"fine, thanks",,\n'
        + "request.status_changed,c-3,2026-03-02T10:00:00Z,1,jira-sm,it,finance,,,ITSD-9,waiting_on_customer,,,,,\n"
        + "survey.answered,c-4,2026-03-02T10:00:00Z,1,hr-survey,hr,sales,,,,,,9,,,\n",
        encoding="utf-8",
    )
    sink = RecordingSink(directory)
    summary = import_file(source, sink)
    assert (summary.published, summary.rejected) == (4, 0)
    opened, feedback, status, survey = (parse_event(raw, directory) for raw in sink.sent)
    assert isinstance(opened, RequestOpened) and isinstance(feedback, FeedbackSubmitted)
    assert isinstance(status, RequestStatusChanged) and isinstance(survey, SurveyAnswered)
    assert opened.attributes == {"channel": "portal", "ticket_url": "https://x/9"}
    assert opened.service_category == "it.access" and opened.priority == "P3"
    assert feedback.csat == 4 and feedback.comment == "fine, thanks" and feedback.service_category is None
    assert feedback.occurred_at.isoformat() == "2026-03-03T09:00:00+00:00"
    assert status.status == "waiting_on_customer"
    assert survey.score == 9 and survey.provider_department == "hr"


def test_bad_csv_rows_are_rejected_with_their_line_numbers(tmp_path: Path, directory: Directory) -> None:
    source = tmp_path / "export.csv"
    source.write_text(
        CSV_HEADER
        + "request.opened,c-1,2026-03-02T09:15:00Z,1,jira-sm,it,finance,it.access,P3,ITSD-9,,,,,,\n"  # 2: ok
        + "request.opened,c-2,2026-03-02T09:15:00Z,1,jira-sm,it,finance,it.nope,P3,ITSD-9,,,,,,\n"  # 3
        + "feedback.submitted,c-3,2026-03-02T09:15:00Z,1,jira-sm,it,finance,,,ITSD-9,,four,,,,\n"  # 4
        + "request.opened,c-4,2026-03-02T09:15:00Z,1,jira-sm,it,finance,,,ITSD-9,,,,,,,extra\n"  # 5
        + 'request.opened,c-5,2026-03-02T09:15:00Z,1,jira-sm,it,finance,,,ITSD-9,,,,"two\nlines",,\n'  # 6-7
        + "request.opened,c-6,2026-03-02T09:15:00Z,1,jira-sm,it,finance,,P9,ITSD-9,,,,,,\n",  # 8
        encoding="utf-8",
    )
    summary = import_file(source, ValidatingSink(directory))
    assert (summary.published, summary.rejected) == (1, 5)
    rejects = read_rejects(default_rejects_path(source))
    assert [r["line"] for r in rejects] == [3, 4, 5, 7, 8]
    assert "unknown service 'it.nope'" in rejects[0]["reason"]
    assert rejects[1]["reason"].startswith("csat:")
    assert rejects[2]["reason"] == "1 more cell(s) than header columns"
    assert rejects[3]["reason"].startswith("comment: Extra inputs are not permitted")  # opened has no comment
    assert rejects[4]["reason"].startswith("priority:")


def test_unknown_csv_columns_are_named_by_validation(tmp_path: Path, directory: Directory) -> None:
    source = tmp_path / "export.csv"
    source.write_text(
        "event_type,event_id,occurred_at,schema_version,source,provider_department,customer_department,"
        "request_id,ticket\n"
        "request.opened,c-1,2026-03-02T09:15:00Z,1,jira-sm,it,finance,ITSD-9,42\n",
        encoding="utf-8",
    )
    assert import_file(source, ValidatingSink(directory)).rejected == 1
    assert read_rejects(default_rejects_path(source))[0]["reason"] == "ticket: Extra inputs are not permitted"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.jsonl", b"", "jsonl"),
        ("a.ndjson", b"", "jsonl"),
        ("a.csv", b"{", "csv"),
        ("a.txt", b'\xef\xbb\xbf  \n{"event_type": 1}', "jsonl"),
        ("a.export", b"event_type,event_id\n", "csv"),
    ],
)
def test_the_format_comes_from_the_suffix_or_the_first_character(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert detect_format(path) == expected


def test_a_byte_order_mark_is_ignored_and_progress_counts_every_byte(
    tmp_path: Path, directory: Directory
) -> None:
    source = tmp_path / "events.jsonl"
    body = jsonl(*({**OPENED, "event_id": f"e-{n}"} for n in range(5000)))
    source.write_bytes(b"\xef\xbb\xbf" + body)
    seen: list[int] = []
    records = list(read_records(source, progress=seen.append))
    assert len(records) == 5000 and all(isinstance(record, bytes) for _, record in records)
    assert sum(seen) == len(body) and len(seen) >= 2  # a call per MiB and one for the rest


def test_invalid_utf8_is_a_decode_reject(tmp_path: Path, directory: Directory) -> None:
    source = tmp_path / "events.jsonl"
    source.write_bytes(jsonl(OPENED) + b'{"event_id": "\xff"}\n')
    summary = import_file(source, ValidatingSink(directory))
    assert summary.rejected == 1
    (reject,) = read_rejects(default_rejects_path(source))
    assert (reject["line"], reject["kind"]) == (2, "decode")


def test_sink_errors_other_than_invalid_events_stop_the_import(tmp_path: Path, directory: Directory) -> None:
    class BrokenSink:
        def send(self, event: bytes) -> object:
            raise ConnectionError("broker gone")

    source = tmp_path / "events.jsonl"
    source.write_bytes(jsonl(OPENED, "{bad"))
    with pytest.raises(ConnectionError):
        import_file(source, BrokenSink())
    assert not default_rejects_path(source).exists()


def test_publish_dry_run_keeps_its_summary_on_stdout_and_reports_events_per_s_on_stderr(
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from deptpulse.cli import main
    from producers.simulator import simulate
    from schemas.events import event_to_json

    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    events = list(simulate(load_directory(EXAMPLE_ORG), start, timedelta(minutes=30), 2.0, 4))
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(event_to_json(event) + b"\n" for event in events))
    env = {"DEPTPULSE_DIRECTORY_PATH": str(EXAMPLE_ORG), "DEPTPULSE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}
    result = CliRunner().invoke(main, ["publish", "--dry-run", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{len(events)} events valid, 0 rejected\n"
    assert re.fullmatch(rf"{len(events):,} events validated in \d+\.\d s: [\d,]+ events/s\n", result.stderr)
