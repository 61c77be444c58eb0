"""`deptpulse convert --source SOURCE FILE`: events on stdout, rejects on stderr, exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from deptpulse.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
TEST_DIRECTORY = str(FIXTURES / "directory.yaml")

pytestmark = pytest.mark.unit


def convert(*args: str) -> Result:
    return CliRunner().invoke(main, ["convert", *args])


def test_one_payload_with_the_configured_example_directory() -> None:
    result = convert("--source", "jira-sm", str(FIXTURES / "jira-sm" / "issue_created.json"))
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    event = json.loads(line)
    # ITSD and the Finance organisation are mapped in deploy/directory/example-org.yaml too
    assert (event["event_type"], event["provider_department"], event["customer_department"]) == (
        "request.opened",
        "it",
        "finance",
    )
    assert result.stderr == "1 records, 1 events, 0 rejected\n"


def test_a_list_of_payloads_with_rejects(tmp_path: Path) -> None:
    good = json.loads((FIXTURES / "zendesk" / "ticket_created.json").read_text(encoding="utf-8"))
    unmapped = json.loads(json.dumps(good))
    unmapped["detail"]["group_id"] = "123"
    file = tmp_path / "zendesk.json"
    file.write_text(json.dumps([good, unmapped, 7]), encoding="utf-8")
    result = convert("--source", "zendesk", "--directory", TEST_DIRECTORY, str(file))
    assert result.exit_code == 1
    assert [json.loads(line)["event_type"] for line in result.stdout.splitlines()] == ["request.opened"]
    assert result.stderr.splitlines() == [
        f"{file}: record 2 rejected: no department mapping for zendesk field 'group' value '123'",
        f"{file}: record 3 rejected: expected a JSON object, got int",
        "3 records, 1 events, 2 rejected",
    ]


def test_a_survey_csv() -> None:
    result = convert(
        "--source",
        "hr-survey",
        "--directory",
        TEST_DIRECTORY,
        str(FIXTURES / "hr-survey" / "qualtrics_export.csv"),
    )
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["score"] for line in result.stdout.splitlines()] == [8, 10, 3]


def test_a_table_api_envelope_is_one_record_of_several_events() -> None:
    file = FIXTURES / "servicenow" / "incident_resolved_after_reopen.json"
    result = convert("--source", "servicenow", "--directory", TEST_DIRECTORY, str(file))
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 3
    assert result.stderr == "1 records, 3 events, 0 rejected\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "Error: cannot read"),
        (b"\xff\xfe\x00", "Error: cannot read"),
    ],
)
def test_an_unreadable_file_exits_2(tmp_path: Path, content: str | bytes, message: str) -> None:
    file = tmp_path / "payload.json"
    if isinstance(content, bytes):
        file.write_bytes(content)
    else:
        file.write_text(content, encoding="utf-8")
    result = convert("--source", "jira-sm", str(file))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{message} {file}")
    assert "Traceback" not in result.output


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    result = convert("--source", "jira-sm", str(tmp_path / "nope.json"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_an_unknown_source_exits_2() -> None:
    result = convert("--source", "freshdesk", str(FIXTURES / "jira-sm" / "issue_created.json"))
    assert result.exit_code == 2
    assert (
        result.stderr
        == "Error: unknown source 'freshdesk': choose one of jira-sm, servicenow, zendesk, hr-survey\n"
    )


def test_a_bad_directory_exits_2(tmp_path: Path) -> None:
    directory = tmp_path / "org.yaml"
    directory.write_text("organisation: [unclosed", encoding="utf-8")
    result = convert(
        "--source", "jira-sm", "--directory", str(directory), str(FIXTURES / "jira-sm" / "issue_created.json")
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: directory {directory} is not valid YAML")
