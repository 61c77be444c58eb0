"""Who may read the read API, through real HTTP on loopback (no ClickHouse): the local stack's
anonymous rule, tokens through the worker's Faust views, a trusted proxy's header, and the CLI's
client sending DEPTPULSE_READ_API_TOKEN."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

import faust
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from deptpulse.settings import EXAMPLE_DIRECTORY
from schemas.directory import Directory, load_directory
from stream_processors.access.heads import Heads, parse_heads
from stream_processors.access.rules import ReadAccess, is_loopback
from stream_processors.scorecard.read_api import ReadApi, register_faust_views
from stream_processors.scorecard.remote import ReadApiError, RemoteScorecard
from stream_processors.scorecard.service import ScorecardService
from stream_processors.scorecard.windows import Window
from tests.read_api_server import serving
from tests.unit.test_scorecard_service import SINCE, FakeReader, csat, delta

pytestmark = pytest.mark.unit

NOW = SINCE + timedelta(days=7, seconds=30)
HR_TOKEN = "hr-token-" + "h" * 32
ENVIRON = {"HEAD_HR_TOKEN": HR_TOKEN}
HEADS = {"heads": {"hr": {"token_env": "HEAD_HR_TOKEN", "proxy_users": ["wang.fang@example.com"]}}}


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory(EXAMPLE_DIRECTORY)


@pytest.fixture
def service(directory: Directory) -> ScorecardService:
    reader = FakeReader(
        [
            delta("hr", "it", SINCE + timedelta(hours=2), *[csat(4)] * 10),
            delta("it", "finance", SINCE + timedelta(hours=2), *[csat(2)] * 10),
        ]
    )
    return ScorecardService(reader, directory)


@pytest.fixture
def heads(directory: Directory) -> Heads:
    return parse_heads(HEADS, directory, ENVIRON)


@pytest.fixture
def heads_file(tmp_path: Path) -> Path:
    path = tmp_path / "heads.yaml"
    path.write_text("heads:\n  hr: {token_env: HEAD_HR_TOKEN}\n", encoding="utf-8")
    return path


class StubPage:
    """The served page without ClickHouse: says what it was asked."""

    def render(
        self, provider: str, window: Window, with_comments: bool, matrix_shared: bool, generated_at: datetime
    ) -> str:
        return f"<!DOCTYPE html><p>{provider} comments={with_comments} matrix={matrix_shared}</p>"


def status_of(port: int, headers: dict[str, str] | None = None) -> int:
    """The status of a GET of IT's scorecard."""
    from urllib.error import HTTPError
    from urllib.request import Request, urlopen

    request = Request(
        f"http://127.0.0.1:{port}/api/v1/scorecard?provider=it&window=7d", headers=headers or {}
    )
    try:
        with urlopen(request, timeout=10) as response:
            return int(response.status)
    except HTTPError as exc:
        return exc.code


@pytest.mark.parametrize(
    ("bind_host", "with_heads", "anonymous"),
    [
        ("127.0.0.1", False, True),  # the local stack, `make demo`
        ("::1", False, True),
        ("localhost", False, True),
        ("0.0.0.0", False, False),
        ("10.1.2.3", False, False),
        ("127.0.0.1", True, False),
    ],
)
def test_anonymous_reads_only_on_loopback_without_a_heads_file(
    service: ScorecardService,
    directory: Directory,
    heads_file: Path,
    bind_host: str,
    with_heads: bool,
    anonymous: bool,
) -> None:
    access = ReadAccess.configured(
        directory, bind_host=bind_host, heads_path=heads_file if with_heads else None, environ=ENVIRON
    )
    api = ReadApi(service, directory, lambda: NOW, access=access)

    with serving(api) as port:
        assert status_of(port) == (200 if anonymous else 401)
    assert is_loopback(bind_host) == (bind_host in ("127.0.0.1", "::1", "localhost"))


def test_the_worker_views_pass_the_headers_and_serve_the_page(
    service: ScorecardService, directory: Directory, heads: Heads
) -> None:
    app = faust.App("access-test", broker="memory://", web_enabled=True, web_port=16098)
    access = ReadAccess(directory, heads, anonymous=False, now=lambda: NOW)
    register_faust_views(app, service, now=lambda: NOW, page=StubPage(), access=access)
    token = {"Authorization": f"Bearer {HR_TOKEN}"}

    async def ask() -> list[tuple[int, str, str, str]]:
        web_app = app.web.web_app  # type: ignore[attr-defined]  # faust's aiohttp Web has it; its stub does not
        async with TestClient(TestServer(web_app)) as client:
            answers = []
            for url, headers in (
                ("/api/v1/scorecard?window=7d", {}),
                ("/api/v1/scorecard?window=7d", token),
                ("/api/v1/scorecard?provider=it&window=7d", token),
                ("/scorecard/hr?with_comments=1", token),
                ("/scorecard/it", token),
            ):
                response = await client.get(url, headers=headers)
                answers.append(
                    (
                        response.status,
                        response.content_type,
                        response.headers.get("WWW-Authenticate", ""),
                        await response.text(),
                    )
                )
            return answers

    answers = asyncio.run(ask())

    assert [status for status, *_ in answers] == [401, 200, 403, 200, 403]
    assert answers[0][2] == 'Bearer realm="deptpulse"'
    assert {row["provider_department"] for row in json.loads(answers[1][3])["rows"]} == {"hr"}
    assert answers[3][1] == "text/html" and "hr comments=True matrix=False" in answers[3][3]
    assert all(HR_TOKEN not in text for *_, text in answers)


def test_a_trusted_proxy_header_is_a_head_only_when_the_setting_names_it(
    service: ScorecardService, directory: Directory, heads: Heads
) -> None:
    proxied = ReadAccess(directory, heads, anonymous=False, trusted_user_header="X-Forwarded-User")
    ignoring = ReadAccess(directory, heads, anonymous=False)
    user = {"X-Forwarded-User": "wang.fang@example.com"}

    with serving(ReadApi(service, directory, lambda: NOW, access=proxied)) as port:
        assert status_of(port, user) == 403  # hr's head, asking for it's rows
        assert status_of(port, {"X-Forwarded-User": "mallory"}) == 401
    with serving(ReadApi(service, directory, lambda: NOW, access=ignoring)) as port:
        assert status_of(port, user) == 401
    status, body = ReadApi(service, directory, lambda: NOW, access=proxied).handle(
        "/api/v1/scorecard", {"window": "7d"}, user
    )
    assert status == 200 and {row["provider_department"] for row in body["rows"]} == {"hr"}


def test_the_clis_client_sends_the_token(
    service: ScorecardService, directory: Directory, heads: Heads
) -> None:
    api = ReadApi(service, directory, lambda: NOW, access=ReadAccess(directory, heads, anonymous=False))
    window = Window(SINCE, SINCE + timedelta(days=7))

    with serving(api) as port:
        url = f"http://127.0.0.1:{port}"
        rows = RemoteScorecard(url, token=SecretStr(HR_TOKEN)).scorecard(window, "hr")
        with pytest.raises(ReadApiError, match=r"answered 401: .*set DEPTPULSE_READ_API_TOKEN") as refused:
            RemoteScorecard(url).scorecard(window, "hr")
        with pytest.raises(ReadApiError, match="answered 403") as forbidden:
            RemoteScorecard(url, token=SecretStr(HR_TOKEN)).scorecard(window, "it")

    assert [row.customer_department for row in rows] == [None, "it"]
    assert HR_TOKEN not in str(refused.value) + str(forbidden.value)
