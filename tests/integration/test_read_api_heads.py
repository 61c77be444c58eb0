"""Who reads what, through real HTTP: the read API (the worker's ``ReadApi.handle``, on a loopback
stand-in server) over HR's simulated quarter on chdb, with a heads file.

A head's token reads their own department as provider and their department's rows as customer,
never another department's rows, comments or (without ``visibility: organisation``) the matrix;
forged, tampered and expired links are refused; error reasons hold no secret and no other
department; the served page ``/scorecard/hr`` renders in headless Chromium.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest
from pydantic import SecretStr

from deptpulse.settings import EXAMPLE_DIRECTORY, Settings
from producers.simulator import HR_RECRUITING_DAYS
from schemas.directory import Directory, load_directory
from stream_processors import storage
from stream_processors.access.heads import link_signature, parse_heads
from stream_processors.access.rules import ReadAccess
from stream_processors.reads import Reads
from stream_processors.scorecard.read_api import ReadApi
from tests.integration.test_hr_page_chromium import END, load_quarter
from tests.integration.test_report_html_chromium import run_chromium
from tests.read_api_server import serving

pytestmark = pytest.mark.integration

SECRETS = {
    "HEAD_HR_TOKEN": "hr-" + "t" * 40,
    "HEAD_HR_LINK": "hr-link-" + "s" * 40,
    "HEAD_IT_TOKEN": "it-" + "u" * 40,
    "HEAD_FINANCE_TOKEN": "finance-" + "v" * 40,
}
HEADS = {
    "heads": {
        "hr": {"token_env": "HEAD_HR_TOKEN", "link_secret_env": "HEAD_HR_LINK"},
        "it": {"token_env": "HEAD_IT_TOKEN"},
        "finance": {"token_env": "HEAD_FINANCE_TOKEN"},
    }
}
HR, IT = SECRETS["HEAD_HR_TOKEN"], SECRETS["HEAD_IT_TOKEN"]
WINDOW = {"since": (END - timedelta(days=28)).isoformat(), "until": END.isoformat()}


@pytest.fixture(scope="module")
def directory() -> Directory:
    """The example organisation, with IT's head granted the organisation matrix."""
    example = load_directory(EXAMPLE_DIRECTORY)
    departments = [
        department.model_copy(update={"visibility": "organisation"}) if department.id == "it" else department
        for department in example.departments
    ]
    return example.model_copy(update={"departments": departments})


@pytest.fixture(scope="module")
def port(chdb_path: Path, directory: Directory) -> Iterator[int]:
    """HR's quarter in a database of this module's own, served with the heads above."""
    settings = Settings(
        clickhouse_url=None, clickhouse_path=chdb_path, clickhouse_database=f"heads_{uuid.uuid4().hex[:8]}"
    )
    client = storage.connect(settings)
    try:
        load_quarter(client, directory)
        reads = Reads.over(client, directory, settings)
        access = ReadAccess(
            directory, parse_heads(HEADS, directory, SECRETS), anonymous=False, now=lambda: END
        )
        api = ReadApi(reads.scorecard, directory, lambda: END, reads.endpoints(), reads.page(), access)
        with serving(api) as served:
            yield served
    finally:
        client.command(f"DROP DATABASE IF EXISTS {settings.clickhouse_database} SYNC")
        client.close()


def get(port: int, path: str, token: str | None = None, **params: Any) -> tuple[int, Message, str]:
    """(status, headers, body) of a GET on the read API."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"http://127.0.0.1:{port}{path}?{urlencode(params)}"
    try:
        with urlopen(Request(url, headers=headers), timeout=60) as response:
            return response.status, response.headers, response.read().decode("utf-8")
    except HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode("utf-8")


def assert_refused_safely(body: str, directory: Directory, own: str = "hr") -> str:
    """The refusal's reason: no secret, and no other department's id or name in it."""
    reason: str = json.loads(body)["reason"]
    assert not any(secret in body for secret in SECRETS.values())
    for department in directory.departments:
        if department.id != own:
            assert department.name not in reason
            assert not any(f"{mark}{department.id}" in reason for mark in ("=", "'", "/", " ")), reason
    return reason


def test_a_heads_token_reads_its_own_department_as_provider(port: int) -> None:
    status, _, body = get(port, "/api/v1/scorecard", HR, **WINDOW)
    assert status == 200
    rows = json.loads(body)["rows"]
    assert rows and {row["provider_department"] for row in rows} == {"hr"}

    for path in ("/api/v1/services", "/api/v1/questions", "/api/v1/timeseries", "/api/v1/surveys"):
        params = {} if path == "/api/v1/surveys" else WINDOW
        assert get(port, path, HR, provider="hr", **params)[0] == 200, path
    status, _, body = get(port, "/api/v1/themes", HR, provider="hr", **WINDOW)
    assert status == 200 and json.loads(body)["provider_department"] == "hr"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/scorecard", {"provider": "it"}),
        ("/api/v1/scorecard", {"provider": "it", "customer": "finance"}),
        ("/api/v1/services", {"provider": "it"}),
        ("/api/v1/questions", {"provider": "finance"}),
        ("/api/v1/timeseries", {"provider": "it"}),
        ("/api/v1/comments", {"provider": "it"}),
        ("/api/v1/themes", {"provider": "it", "customer": "hr"}),
        ("/api/v1/surveys", {"provider": "it"}),
        ("/api/v1/actions", {"provider": "it"}),
        ("/api/v1/matrix", {}),
        ("/scorecard/it", {}),
    ],
)
def test_a_heads_token_cannot_read_another_departments_rows_comments_or_matrix(
    port: int, directory: Directory, path: str, params: dict[str, str]
) -> None:
    status, _, body = get(port, path, HR, **params)

    assert status == 403, body
    assert_refused_safely(body, directory)


def test_a_head_reads_every_providers_rows_where_their_department_is_the_customer(port: int) -> None:
    status, _, body = get(port, "/api/v1/scorecard", HR, customer="hr", **WINDOW)
    rows = json.loads(body)["rows"]

    assert status == 200
    assert rows and {row["customer_department"] for row in rows} == {"hr"}  # no provider's overall row
    assert len({row["provider_department"] for row in rows}) > 1
    status, _, body = get(port, "/api/v1/scorecard", HR, provider="it", customer="hr", **WINDOW)
    assert status == 200
    assert [(row["provider_department"], row["customer_department"]) for row in json.loads(body)["rows"]] == [
        ("it", "hr")
    ]


def test_the_matrix_only_where_the_directory_grants_it(port: int) -> None:
    status, _, body = get(port, "/api/v1/matrix", IT, **WINDOW)  # it: visibility organisation

    assert status == 200 and len({row["provider_department"] for row in json.loads(body)["rows"]}) > 1
    assert get(port, "/api/v1/matrix", HR, **WINDOW)[0] == 403


def test_no_credentials_or_wrong_ones_are_refused_with_401(port: int, directory: Directory) -> None:
    status, headers, body = get(port, "/api/v1/scorecard", provider="hr")
    assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="deptpulse"'
    assert "credentials needed" in assert_refused_safely(body, directory)

    for token in ("hr-" + "t" * 39 + "x", SECRETS["HEAD_HR_LINK"]):  # one character off; a link secret
        status, _, body = get(port, "/api/v1/scorecard", token, provider="hr")
        assert status == 401 and assert_refused_safely(body, directory) == "unknown token"
    request = Request(f"http://127.0.0.1:{port}/api/v1/matrix", headers={"Authorization": "Basic aHI6aHI="})
    with pytest.raises(HTTPError) as refused:
        urlopen(request, timeout=10)
    assert refused.value.code == 401


def link(department: str, expires: int, secret: str = SECRETS["HEAD_HR_LINK"]) -> dict[str, str]:
    return {
        "head": department,
        "expires": str(expires),
        "signature": link_signature(SecretStr(secret), department, expires),
    }


def test_a_valid_link_opens_the_heads_page_and_nothing_more(port: int, directory: Directory) -> None:
    valid = link("hr", int((END + timedelta(days=7)).timestamp()))

    status, headers, page = get(port, "/scorecard/hr", **valid, **WINDOW)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "人力资源部" in page and headers["Cache-Control"] == "private, no-store"
    assert get(port, "/api/v1/scorecard", **valid, **WINDOW)[0] == 200
    for path, params in (
        ("/scorecard/it", {}),
        ("/scorecard/hr", {"with_comments": "1"}),  # comments: the head's token, not a forwardable link
        ("/api/v1/comments", {"provider": "hr"}),
        ("/api/v1/scorecard", {"provider": "it"}),
    ):
        status, _, body = get(port, path, **valid, **params, **WINDOW)
        assert status == 403, (path, body)
        assert_refused_safely(body, directory)


@pytest.mark.parametrize(
    "case",
    ["forged", "expiry moved", "department changed", "expired", "another secret", "incomplete"],
)
def test_a_forged_tampered_or_expired_link_is_refused(port: int, directory: Directory, case: str) -> None:
    expires = int((END + timedelta(days=7)).timestamp())
    params = {
        "forged": {**link("hr", expires), "signature": "0" * 64},
        "expiry moved": {**link("hr", expires), "expires": str(expires + 86400)},
        "department changed": {**link("hr", expires), "head": "it"},
        "expired": link("hr", int(END.timestamp()) - 1),
        "another secret": link("hr", expires, secret="x" * 48),
        "incomplete": {"head": "hr", "expires": str(expires)},
    }[case]

    status, _, body = get(port, "/scorecard/hr", **params)

    assert status == 401, body
    reason = assert_refused_safely(body, directory)
    assert ("expired" in reason) == (case == "expired")


def test_the_served_page_is_the_reports_page_with_the_matrix_only_where_granted(port: int) -> None:
    status, headers, hr_page = get(port, "/scorecard/hr", HR, with_comments="1", **WINDOW)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "What customers say" in hr_page
    assert "The organisation matrix is not shared with this department" in hr_page
    assert "every provider × customer" not in hr_page

    status, _, it_page = get(port, "/scorecard/it", IT, **WINDOW)
    assert status == 200 and "every provider × customer" in it_page
    assert get(port, "/scorecard/hr", HR, with_comments="maybe")[0] == 400


def test_the_served_page_renders_in_headless_chromium(port: int, tmp_path: Path) -> None:
    since = (END - timedelta(days=HR_RECRUITING_DAYS)).isoformat()
    status, _, html = get(port, "/scorecard/hr", HR, since=since, until=END.isoformat())
    assert status == 200
    page = tmp_path / "served-hr.html"
    page.write_text(html, encoding="utf-8")

    dom = run_chromium(page, tmp_path / "profile", "--dump-dom").stdout.decode("utf-8")

    assert "人力资源部" in dom
    assert dom.count("<svg") >= 4 and "<polyline" in dom  # the four trend charts; no matrix for hr
    assert "<script" not in dom.lower()
