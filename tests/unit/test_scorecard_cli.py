"""`deptpulse report` without a database: bad parameters exit 2 with one clear line before anything
is opened; the formats, over an in-memory source."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from deptpulse.cli import main
from deptpulse.settings import EXAMPLE_DIRECTORY, Settings
from stream_processors.actions import api as actions_api
from stream_processors.at_risk import api as at_risk_api
from stream_processors.scorecard import report as report_module
from stream_processors.scorecard.rows import ROW_FIELDS
from stream_processors.scorecard.service import ScorecardService
from stream_processors.surveys import api as surveys_api
from tests.unit.test_scorecard_service import OPENED, SINCE, FakeReader, csat, delta

pytestmark = pytest.mark.unit

BOUNDS = ("--since", "2026-03-09T00:00:00Z", "--until", "2026-03-16T00:00:00Z")
ENV = {"DEPTPULSE_DIRECTORY_PATH": str(EXAMPLE_DIRECTORY), "DEPTPULSE_CLICKHOUSE_URL": None}


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """Replace the report's storage with an in-memory source; records every time it is opened."""
    calls: list[Settings] = []
    reader = FakeReader(
        [
            delta("hr", "it", SINCE + timedelta(hours=3), OPENED, *[csat(5)] * 9, csat(3)),
            delta("hr", "sales", SINCE + timedelta(days=1), OPENED, csat(2)),
            delta("it", "hr", SINCE + timedelta(days=2), OPENED, OPENED),
        ]
    )

    @contextmanager
    def fake_open_backend(settings: Settings) -> Iterator[tuple[Any, str]]:
        calls.append(settings)
        yield reader, "memory"

    monkeypatch.setattr(report_module, "open_backend", fake_open_backend)
    monkeypatch.setattr(report_module, "scorecard_source", ScorecardService)
    # No campaigns, actions or requests at risk in memory: the page shows that there are none.
    monkeypatch.setattr(surveys_api, "campaigns_source", lambda backend, directory, comments=None: NoRecords())
    monkeypatch.setattr(actions_api, "actions_source", lambda backend, directory, *days: NoRecords())
    monkeypatch.setattr(at_risk_api, "at_risk_source", lambda backend, directory: NoRecords())
    return calls


class NoRecords:
    def campaigns(self, provider: str | None = None, campaign: str | None = None) -> list[Any]:
        return []

    def actions(self, now: datetime, provider: str | None = None) -> list[Any]:
        return []

    def at_risk(self, now: datetime, provider: str | None = None) -> list[Any]:
        return []


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(main, ["report", *args], env=ENV | (env or {}))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--provider", "nope"], "unknown provider department 'nope': known are it, hr,"),
        (["--provider", "it' OR 1=1 --"], 'unknown provider department "it\' OR 1=1 --"'),
        (["--customer", "x'); DROP TABLE minute_buckets; --"], "unknown customer department"),
        (["--provider", "it", "--customer", "IT"], "unknown customer department 'IT'"),
        (["--since", "2026-03-16T00:00:00Z", "--until", "2026-03-09T00:00:00Z"], "is not after since"),
        (["--window", "30d"], "unknown window '30d': choose one of 1h, 24h, 7d, 28d"),
        (["--window", "7d; DROP TABLE minute_buckets"], "unknown window"),
        (["--since", "2026-03-09T00:00:00"], "has no UTC offset: add Z or e.g. +08:00"),
        (["--since", "last tuesday"], "not an RFC 3339 timestamp"),
        (["--until", "2026-03-09T00:00:00Z"], "until needs since"),
        (["--window", "7d", *BOUNDS], "not both"),
        (["--format", "html"], "--format html is a page for one department: give --provider"),
        (["--format", "pdf"], "'pdf' is not one of"),
    ],
)
def test_bad_parameters_exit_2_with_one_clear_line_and_open_nothing(
    opened: list[Settings], args: list[str], message: str
) -> None:
    result = run(*args)

    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert opened == []


def test_an_unreadable_directory_exits_2(opened: list[Settings], tmp_path: Path) -> None:
    result = run(env={"DEPTPULSE_DIRECTORY_PATH": str(tmp_path / "missing.yaml")})

    assert result.exit_code == 2 and "cannot read directory" in result.output


def test_json_is_a_list_of_rows(opened: list[Settings]) -> None:
    result = run("--format", "json", "--provider", "hr", *BOUNDS)

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["customer_department"], r["csat_count"], r["csat_avg"]) for r in rows] == [
        (None, 11, pytest.approx((45 + 3 + 2) / 11)),
        ("it", 10, 4.8),
        ("sales", 1, None),  # below the minimum: the count, no figure
    ]
    assert rows[2]["csat_insufficient"] is True
    assert len(opened) == 1


def test_csv_has_a_header_and_empty_cells_for_null(opened: list[Settings]) -> None:
    result = run("--format", "csv", "--provider", "hr", *BOUNDS)

    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert tuple(rows[0]) == ROW_FIELDS
    assert (rows[2]["customer_department"], rows[2]["csat_avg"], rows[2]["csat_insufficient"]) == (
        "sales",
        "",
        "true",
    )
    assert rows[0]["customer_department"] == ""


def test_the_table_names_departments_and_marks_thin_samples(opened: list[Settings]) -> None:
    result = run(*BOUNDS)

    assert result.exit_code == 0
    assert "人力资源部 (hr): all customers" in result.stdout and "IT (it): all customers" in result.stdout
    assert "n=1 (<10)" in result.stdout  # hr -> sales CSAT


def test_html_goes_to_the_out_file(opened: list[Settings], tmp_path: Path) -> None:
    page = tmp_path / "hr.html"

    result = run("--format", "html", "--provider", "hr", "--out", str(page), *BOUNDS)

    assert result.exit_code == 0 and result.stdout == ""
    assert f"wrote {page} (memory)" in result.output
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "人力资源部" in html and "<svg" in html


def test_a_storage_problem_exits_2_without_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    @contextmanager
    def failing(settings: Settings) -> Iterator[tuple[Any, str]]:
        raise report_module.ReportError("cannot open chdb path /x: held by another process")
        yield  # pragma: no cover

    monkeypatch.setattr(report_module, "open_backend", failing)

    result = run("--format", "json")

    assert result.exit_code == 2 and "held by another process" in result.output
    assert "Traceback" not in result.output


def test_the_read_api_url_reaches_a_wildcard_bind_on_loopback() -> None:
    assert report_module.read_api_url(Settings(bind_host="0.0.0.0", worker_port=1)) == "http://127.0.0.1:1"
    assert report_module.read_api_url(Settings(bind_host="::", worker_port=2)) == "http://[::1]:2"
    assert report_module.read_api_url(Settings(bind_host="10.0.0.5", worker_port=3)) == "http://10.0.0.5:3"


def test_bounds_off_a_whole_minute_are_widened_and_every_format_says_so(opened: list[Settings]) -> None:
    bounds = ("--since", "2026-03-09T00:00:30Z", "--until", "2026-03-16T00:00:00Z")

    table = run("--provider", "hr", *bounds)
    rows = json.loads(run("--provider", "hr", "--format", "json", *bounds).stdout)

    assert table.exit_code == 0 and "widened to whole minutes" in table.output
    assert "note: the window was widened to whole minutes, 2026-03-09T00:00:00+00:00" in table.output
    assert {row["since"] for row in rows} == {"2026-03-09T00:00:00Z"}
