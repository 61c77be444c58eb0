"""stream_processors.scorecard.read_api: answers, validation 400s decided before any query, and the
endpoints mounted on a Faust app's web server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
import pytest
from aiohttp.test_utils import TestClient, TestServer

from deptpulse.settings import EXAMPLE_DIRECTORY
from schemas.directory import Directory, load_directory
from stream_processors.scorecard.read_api import MAX_PARAM_LENGTH, ReadApi, register_faust_views
from stream_processors.scorecard.remote import ReadApiError, RemoteScorecard
from stream_processors.scorecard.rows import ScorecardRow, Timeseries
from stream_processors.scorecard.service import ScorecardService
from stream_processors.scorecard.windows import Window
from tests.read_api_server import serving
from tests.unit.test_scorecard_service import SINCE, FakeReader, csat, delta

pytestmark = pytest.mark.unit

NOW = SINCE + timedelta(days=7, seconds=30)  # window=7d ends at SINCE + 7 days + 1 minute


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory(EXAMPLE_DIRECTORY)


@pytest.fixture
def reader() -> FakeReader:
    return FakeReader([delta("it", "finance", SINCE + timedelta(hours=2), *[csat(4)] * 10)])


@pytest.fixture
def api(reader: FakeReader, directory: Directory) -> ReadApi:
    return ReadApi(ScorecardService(reader, directory), directory, now=lambda: NOW)


def test_the_scorecard_comes_in_an_envelope_with_both_windows(api: ReadApi, reader: FakeReader) -> None:
    status, body = api.handle("/api/v1/scorecard", {"provider": "it", "window": "7d"})

    end = SINCE + timedelta(days=7, minutes=1)
    assert status == 200
    assert body["window"] == {
        "since": (end - timedelta(days=7)).isoformat(),
        "until": end.isoformat(),
        "widened": False,
    }
    assert body["previous_window"]["until"] == body["window"]["since"]
    assert [row["customer_department"] for row in body["rows"]] == [None, "finance"]
    assert ScorecardRow.model_validate(body["rows"][1]).csat_avg == 4.0
    assert reader.calls == [("pair_sums", Window(end - timedelta(days=7), end), "it")]


def test_bounds_off_a_whole_minute_are_answered_with_the_effective_whole_minutes(api: ReadApi) -> None:
    status, body = api.handle(
        "/api/v1/scorecard", {"since": "2026-03-09T00:00:30Z", "until": "2026-03-10T00:00:00Z"}
    )

    assert status == 200
    assert body["window"] == {
        "since": "2026-03-09T00:00:00+00:00",
        "until": "2026-03-10T00:00:00+00:00",
        "widened": True,
    }
    assert {row["since"] for row in body["rows"]} == {"2026-03-09T00:00:00Z"}


def test_matrix_and_timeseries(api: ReadApi) -> None:
    bounds = {"since": "2026-03-09T00:00:00Z", "until": "2026-03-10T00:00:00+00:00"}

    matrix_status, matrix = api.handle("/api/v1/matrix", bounds)
    series_status, series = api.handle(
        "/api/v1/timeseries", {**bounds, "provider": "it", "customer": "finance"}
    )

    assert (matrix_status, series_status) == (200, 200)
    assert [(r["provider_department"], r["customer_department"]) for r in matrix["rows"]] == [
        ("it", "finance")
    ]
    parsed = Timeseries.model_validate(series)
    assert parsed.step_seconds == 3600 and len(parsed.points) == 24
    assert parsed.points[2].csat_count == 10 and parsed.points[2].start == datetime(2026, 3, 9, 2, tzinfo=UTC)


def test_a_list_with_one_value_is_a_value(api: ReadApi) -> None:
    # parse_qs and aiohttp's MultiDict give lists.
    assert api.handle("/api/v1/scorecard", {"provider": ["it"], "window": ["24h"]})[0] == 200


@pytest.mark.parametrize(
    ("path", "params", "reason"),
    [
        ("/api/v1/scorecard", {"provider": "it' OR '1'='1"}, "unknown provider department \"it' OR '1'='1\""),
        (
            "/api/v1/scorecard",
            {"customer": "x'); DROP TABLE minute_buckets; --"},
            "unknown customer department",
        ),
        ("/api/v1/timeseries", {"provider": "IT"}, "unknown provider department 'IT'"),
        ("/api/v1/scorecard", {"provider": ""}, "unknown provider department ''"),
        ("/api/v1/scorecard", {"window": "7d UNION SELECT 1"}, "unknown window"),
        ("/api/v1/scorecard", {"window": "30d"}, "choose one of 1h, 24h, 7d, 28d"),
        ("/api/v1/matrix", {"since": "2026-03-09T00:00:00"}, "has no UTC offset"),
        ("/api/v1/matrix", {"since": "2026-03-09"}, "not an RFC 3339 timestamp"),
        (
            "/api/v1/matrix",
            {"since": "2026-03-10T00:00:00Z", "until": "2026-03-09T00:00:00Z"},
            "not after since",
        ),
        ("/api/v1/matrix", {"until": "2026-03-09T00:00:00Z"}, "until needs since"),
        ("/api/v1/matrix", {"window": "7d", "since": "2026-03-09T00:00:00Z"}, "not both"),
        ("/api/v1/matrix", {"provider": "it"}, "unknown parameter 'provider'"),
        ("/api/v1/scorecard", {"provider; DROP": "it"}, "unknown parameter"),
        ("/api/v1/scorecard", {"provider": ["it", "hr"]}, "must be given once"),
        ("/api/v1/scorecard", {"provider": []}, "must be given once"),
        ("/api/v1/scorecard", {"provider": "a" * (MAX_PARAM_LENGTH + 1)}, "longer than"),
    ],
)
def test_bad_requests_are_400_with_a_reason_and_query_nothing(
    api: ReadApi, reader: FakeReader, path: str, params: dict[str, Any], reason: str
) -> None:
    status, body = api.handle(path, params)

    assert status == 400
    assert body["error"] == "bad request" and reason in body["reason"]
    assert reader.calls == []


def test_an_unknown_path_is_404(api: ReadApi) -> None:
    status, body = api.handle("/api/v1/scorecard/../../etc/passwd", {})

    assert status == 404 and "no endpoint" in body["reason"]


def test_a_storage_failure_is_a_500_without_details(
    directory: Directory, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(FakeReader):
        def pair_sums(self, window: Window, provider: str | None = None) -> Any:
            raise RuntimeError("Code: 60. DB::Exception: Unknown table deptpulse.minute_buckets")

    api = ReadApi(ScorecardService(Broken([]), directory), directory, now=lambda: NOW)

    status, body = api.handle("/api/v1/scorecard", {})

    assert status == 500 and "DB::Exception" not in str(body)
    assert "Unknown table" in caplog.text  # the details go to the log


def test_the_views_mount_on_a_faust_web_server(reader: FakeReader, directory: Directory) -> None:
    app = faust.App("scorecard-test", broker="memory://", web_enabled=True, web_port=16099)
    register_faust_views(app, ScorecardService(reader, directory), now=lambda: NOW)

    async def ask() -> list[tuple[int, Any]]:
        web_app = app.web.web_app  # type: ignore[attr-defined]  # faust's aiohttp Web has it; its stub does not
        async with TestClient(TestServer(web_app)) as client:
            answers = []
            for url in (
                "/api/v1/scorecard?provider=it&window=7d",
                "/api/v1/matrix?window=28d",
                "/api/v1/timeseries?provider=it&window=24h",
                "/api/v1/scorecard?provider=it&provider=hr",
                "/api/v1/scorecard?provider=it%27%20OR%201%3D1",
            ):
                response = await client.get(url)
                answers.append((response.status, await response.json()))
            return answers

    answers = asyncio.run(ask())

    assert [status for status, _ in answers] == [200, 200, 200, 400, 400]
    assert answers[0][1]["rows"][1]["csat_avg"] == 4.0
    assert len(answers[2][1]["points"]) == 25  # hourly from the hour since falls in: 00:01, 01:00, ... 00:00
    assert "must be given once" in answers[3][1]["reason"]
    assert "unknown provider department" in answers[4][1]["reason"]


# --- the HTTP client the report uses while the worker holds the chdb path ------------------------


@pytest.fixture
def served(api: ReadApi) -> Iterator[str]:
    """The API on a loopback stdlib server (a stand-in for the worker's web server); its base URL."""
    with serving(api) as port:
        yield f"http://127.0.0.1:{port}"


def test_the_remote_source_gives_what_the_local_one_does(
    served: str, reader: FakeReader, directory: Directory
) -> None:
    remote, local = RemoteScorecard(served), ScorecardService(reader, directory)
    window = Window(SINCE, SINCE + timedelta(days=7))

    assert remote.listening()
    assert remote.scorecard(window, "it", "finance") == local.scorecard(window, "it", "finance")
    assert remote.matrix(window) == local.matrix(window)
    assert remote.timeseries(window, "it") == local.timeseries(window, "it")


def test_the_remote_source_reports_refusals_and_silence(served: str) -> None:
    window = Window(SINCE, SINCE + timedelta(days=7))

    with pytest.raises(ReadApiError, match="answered 400: unknown provider department 'nope'"):
        RemoteScorecard(served).scorecard(window, "nope")
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    silent = RemoteScorecard(f"http://127.0.0.1:{port}", timeout_seconds=2)
    assert not silent.listening()
    with pytest.raises(ReadApiError, match="failed"):
        silent.matrix(window)
