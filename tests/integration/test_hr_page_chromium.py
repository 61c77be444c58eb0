"""HR's page on its simulated quarter (the hr-recruiting story) in headless Chromium: the "By service"
section marks recruiting the weakest, "Survey questions", "What customers say" (with
--with-comments), the latest campaign and the action with its effect, a marker on the charts.

The quarter is stored the way the worker stores it (the core's deltas, raw_events, redacted comments
through the sink's row functions). Also a script that refreshes the screenshot in
docs/department-heads.md:

    .venv/bin/python -m tests.integration.test_hr_page_chromium docs/img/hr-scorecard.png
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from clickhouse_connect.driver.client import Client

from deptpulse.cli import main
from deptpulse.settings import EXAMPLE_DIRECTORY, Settings
from producers.simulator import HR_RECRUITING, HR_RECRUITING_DAYS, HR_RECRUITING_RATE_PER_S, history
from schemas.directory import Directory, load_directory
from stream_processors import storage
from stream_processors.core import PartitionProcessor
from stream_processors.core.redaction import Redactor
from stream_processors.sinks.clickhouse import COMMENT_COLUMNS, RAW_EVENT_COLUMNS, comment_row, raw_event_row
from tests.integration.test_report import env_for, insert_deltas
from tests.integration.test_report_html_chromium import png_size, run_chromium

pytestmark = pytest.mark.integration

END = datetime(2026, 6, 15, 12, tzinfo=UTC)  # a fixed quarter: the same page every run
BATCH = 5_000


def load_quarter(client: Client, directory: Directory, end: datetime = END) -> int:
    """HR's quarter processed and stored as the worker does; returns the events stored."""
    storage.migrate(client)
    events = list(
        history(directory, end, HR_RECRUITING_DAYS, HR_RECRUITING_RATE_PER_S, seed=2, scenario=HR_RECRUITING)
    )
    processor = PartitionProcessor(directory)
    redactor = Redactor.for_directory(directory)
    stored = 0
    for first in range(0, len(events), BATCH):
        result = processor.process_batch(enumerate(events[first : first + BATCH], start=first), end)
        assert not result.dead_letters, result.dead_letters[:3]
        insert_deltas(client, result.deltas)
        applied = result.applied_events
        client.insert(
            "raw_events",
            [raw_event_row("deptpulse.events", 0, offset, event, end) for offset, event in applied],
            column_names=RAW_EVENT_COLUMNS,
        )
        comments = [row for _, event in applied if (row := comment_row(event, redactor)) is not None]
        if comments:
            client.insert("comments", comments, column_names=COMMENT_COLUMNS)
        stored += len(applied)
    return stored


def write_page(settings: Settings, page: Path) -> None:
    since = END - timedelta(days=HR_RECRUITING_DAYS)
    args = ["--since", since.isoformat(), "--until", END.isoformat()]
    result = CliRunner().invoke(
        main,
        ["report", "--format", "html", "--provider", "hr", "--with-comments", "--out", str(page), *args],
        env=env_for(settings),
    )
    assert result.exit_code == 0, result.output


def test_hrs_page_shows_where_why_what_was_done_and_whether_it_worked(
    clickhouse_client: Client, clickhouse_settings: Settings, tmp_path: Path
) -> None:
    assert load_quarter(clickhouse_client, load_directory(EXAMPLE_DIRECTORY)) > 20_000
    page = tmp_path / "hr.html"
    write_page(clickhouse_settings, page)
    screenshot = tmp_path / "hr.png"

    run_chromium(page, tmp_path / "profile", f"--screenshot={screenshot}")
    dom = run_chromium(page, tmp_path / "profile", "--dump-dom").stdout.decode("utf-8")

    assert png_size(screenshot)[0] > 0 and screenshot.stat().st_size > 50_000
    weak_row = next(part for part in dom.split("<tr") if 'class="weak"' in part)
    assert "hr.recruiting" in weak_row and "weakest" in weak_row
    assert "Survey questions" in dom and "recruiting-speed" in dom
    assert "What customers say" in dom and ("招聘" in dom or "recruiting" in dom)
    # The latest campaign, after the fix: legal answered below the policy minimum.
    assert "Survey campaign hr-pulse-" in dom and "low response (below 30.0 %)" in dom
    assert "Actions and their effect" in dom and "improved" in dom
    assert 'stroke="#7a4fb5"' in dom  # the action's marker on the trend charts
    assert "<script" not in dom.lower()


def save_hr_screenshot(target: Path) -> None:
    """HR's 91-day page with comments on the simulated quarter, as a PNG."""
    directory = load_directory(EXAMPLE_DIRECTORY)
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(
            clickhouse_url=None, clickhouse_path=Path(home) / "chdb", clickhouse_database="hr"
        )
        client = storage.connect(settings)
        load_quarter(client, directory)
        client.close()
        page = Path(home) / "hr.html"
        write_page(settings, page)
        screenshot = Path(home) / "hr.png"
        run_chromium(page, Path(home) / "profile", "--window-size=1280,4200", f"--screenshot={screenshot}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, target)
    print(f"wrote {target}")


if __name__ == "__main__":
    save_hr_screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img/hr-scorecard.png"))
