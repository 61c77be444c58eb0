"""The HTML scorecard in headless Chromium: it renders offline, names the department and draws charts.

Chromium comes from Debian (``make setup`` installs it as root). Also a script that refreshes the
README's screenshot from the example organisation's simulated data:

    .venv/bin/python -m tests.integration.test_report_html_chromium docs/img/scorecard.png
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from clickhouse_connect.driver.client import Client

from deptpulse.cli import main
from deptpulse.settings import EXAMPLE_DIRECTORY, Settings
from schemas.directory import load_directory
from stream_processors import storage
from tests.integration.test_report import WINDOW_ARGS, env_for, load_simulation

pytestmark = pytest.mark.integration

WIDTH, HEIGHT = 1280, 1800


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed: `make setup` as root, or `apt-get install -y chromium`")
    return found


def run_chromium(page: Path, profile: Path, *mode: str) -> subprocess.CompletedProcess[bytes]:
    """Headless Chromium on a local file: no sandbox (containers), no GPU, nothing phoning home."""
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
        *mode,
        page.resolve().as_uri(),
    ]
    return subprocess.run(command, capture_output=True, timeout=120, check=True)


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_the_page_renders_offline_with_the_department_name_and_charts(
    clickhouse_client: Client, clickhouse_settings: Settings, tmp_path: Path
) -> None:
    load_simulation(clickhouse_client, load_directory(EXAMPLE_DIRECTORY))
    page = tmp_path / "hr.html"
    result = CliRunner().invoke(
        main,
        ["report", "--format", "html", "--provider", "hr", "--out", str(page), *WINDOW_ARGS],
        env=env_for(clickhouse_settings),
    )
    assert result.exit_code == 0, result.output
    screenshot = tmp_path / "hr.png"

    run_chromium(page, tmp_path / "profile", f"--screenshot={screenshot}")
    dom = run_chromium(page, tmp_path / "profile", "--dump-dom").stdout.decode("utf-8")

    assert png_size(screenshot) == (WIDTH, HEIGHT)
    assert screenshot.stat().st_size > 50_000  # a blank or error page compresses to a few KB
    assert "人力资源部" in dom
    assert dom.count("<svg") >= 6 and "<polyline" in dom  # four trend charts and two matrices


def save_example_screenshot(target: Path) -> None:
    """The IT department's 28-day page on 56 simulated days of the it-degradation scenario."""
    directory = load_directory(EXAMPLE_DIRECTORY)
    end = datetime(2026, 3, 30, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(
            clickhouse_url=None, clickhouse_path=Path(home) / "chdb", clickhouse_database="example"
        )
        client = storage.connect(settings)
        load_simulation(client, directory, start=end - timedelta(days=56), days=56, batch=5000)
        client.close()
        page = Path(home) / "scorecard.html"
        args = ["--since", (end - timedelta(days=28)).isoformat(), "--until", end.isoformat()]
        result = CliRunner().invoke(
            main,
            ["report", "--format", "html", "--provider", "it", "--out", str(page), *args],
            env=env_for(settings),
        )
        assert result.exit_code == 0, result.output
        screenshot = Path(home) / "scorecard.png"
        run_chromium(page, Path(home) / "profile", f"--screenshot={screenshot}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, target)
    print(f"wrote {target}")


if __name__ == "__main__":
    save_example_screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img/scorecard.png"))
