"""`deptpulse digest` end to end: simulated weeks in embedded ClickHouse (chdb), a stand-in for
Alertmanager's API on loopback, and the local mail sink (deptpulse/mailsink.py) on a free port.

Every head gets exactly one mail, to their own address, in their language, with their own
department's figures; a head whose address cannot receive mail, an unreachable relay and an
unreachable Alertmanager are reported with the department and the reason, never a traceback.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from click.testing import CliRunner, Result

from deptpulse.cli import main
from deptpulse.mailsink import OutboxHandler, OutboxMessage, read_outbox
from deptpulse.settings import EXAMPLE_DIRECTORY, Settings
from schemas.directory import Directory, load_directory
from stream_processors import storage
from stream_processors.digest.weeks import ReportWeek
from stream_processors.scorecard.queries import ClickHouseAggregates
from stream_processors.scorecard.rows import ScorecardRow
from stream_processors.scorecard.service import ScorecardService
from tests.integration.conftest import free_ports
from tests.integration.test_report import env_for, load_simulation

pytestmark = pytest.mark.integration

WEEK_ENDING = date(2026, 11, 29)  # a Sunday: ISO week 2026-W48
PUBLIC_URL = "https://deptpulse.example.com"
# Two alerts about IT and one about HR; Alertmanager's answer is not filtered here, so the digest's
# own filter by provider_department is what keeps HR's alert out of IT's mail.
ALERTS = [
    {
        "labels": {"alertname": "DeptpulseSlaBudgetBurnFast", "severity": "page",
                   "provider_department": "it", "customer_department": "*"},
        "annotations": {"summary": "IT burns its SLA error budget fast"},
        "status": {"state": "active"},
        "startsAt": "2026-11-29T10:00:00Z",
    },
    {
        "labels": {"alertname": "DeptpulseSatisfactionBelowTarget", "severity": "ticket",
                   "provider_department": "it", "customer_department": "finance"},
        "annotations": {"summary": "Finance is less satisfied with IT"},
        "status": {"state": "active"},
        "startsAt": "2026-11-28T10:00:00Z",
    },
    {
        "labels": {"alertname": "DeptpulseSatisfactionBelowTarget", "severity": "ticket",
                   "provider_department": "hr", "customer_department": "*"},
        "annotations": {"summary": "HR satisfaction below target", "summary_zh": "人力资源部满意率低于目标"},
        "status": {"state": "active"},
        "startsAt": "2026-11-28T10:00:00Z",
    },
]  # fmt: skip


@dataclass(frozen=True)
class Weeks:
    settings: Settings
    directory: Directory


@pytest.fixture(scope="module")
def weeks(chdb_path: Path) -> Iterator[Weeks]:
    """Weeks 47 and 48 of 2026 (and a margin for every department's timezone), loaded once."""
    settings = Settings(
        clickhouse_url=None,
        clickhouse_path=chdb_path,
        clickhouse_database=f"test_digest_{uuid.uuid4().hex[:8]}",
    )
    directory = load_directory(EXAMPLE_DIRECTORY)
    client = storage.connect(settings)
    try:
        load_simulation(client, directory, start=datetime(2026, 11, 15, tzinfo=UTC), days=16, rate=0.02)
        yield Weeks(settings, directory)
    finally:
        client.command(f"DROP DATABASE IF EXISTS {settings.clickhouse_database} SYNC")
        client.close()


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """The mail sink on a free loopback port: (its outbox, its port)."""
    [port] = free_ports(1)
    controller = Controller(OutboxHandler(tmp_path / "outbox"), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield tmp_path / "outbox", port
    finally:
        controller.stop()


@pytest.fixture
def alertmanager() -> Iterator[tuple[str, list[str]]]:
    """A stand-in for Alertmanager's GET /api/v2/alerts: (its URL, the queries it was asked)."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = json.dumps(ALERTS).encode() if self.path.startswith("/api/v2/alerts") else b"[]"
            self.send_response(200 if self.path.startswith("/api/v2/alerts") else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def digest(env: dict[str, str | None], *args: str) -> Result:
    return CliRunner().invoke(main, ["digest", "--week-ending", WEEK_ENDING.isoformat(), *args], env=env)


def environment(weeks: Weeks, smtp_port: int, alertmanager_url: str) -> dict[str, str | None]:
    return env_for(weeks.settings) | {
        "DEPTPULSE_SMTP_SMARTHOST": f"127.0.0.1:{smtp_port}",
        "DEPTPULSE_SMTP_FROM": "deptpulse@corp.example",
        "DEPTPULSE_ALERTMANAGER_URL": alertmanager_url,
        "DEPTPULSE_PUBLIC_URL": PUBLIC_URL,
    }


def overall_row(weeks: Weeks, department: str) -> ScorecardRow:
    week = ReportWeek(WEEK_ENDING, weeks.directory.department(department).calendar.timezone)
    client = storage.connect(weeks.settings)
    try:
        rows = ScorecardService(ClickHouseAggregates(client), weeks.directory).scorecard(
            week.window(), department
        )
    finally:
        client.close()
    return rows[0]


def by_recipient(messages: list[OutboxMessage]) -> dict[str, OutboxMessage]:
    return {message.envelope_to[0]: message for message in messages}


def test_every_head_gets_exactly_their_own_mail(
    weeks: Weeks, outbox: tuple[Path, int], alertmanager: tuple[str, list[str]]
) -> None:
    directory = weeks.directory
    result = digest(environment(weeks, outbox[1], alertmanager[0]))
    assert result.exit_code == 0, result.output
    messages = read_outbox(outbox[0])
    assert len(messages) == len(directory.departments)
    assert sorted(len(message.envelope_to) for message in messages) == [1] * len(messages)
    mails = by_recipient(messages)
    assert set(mails) == {department.head.email for department in directory.departments}

    assert mails["ada.park@example.com"].subject == "IT · weekly service scorecard 2026-W48"
    assert mails["wang.fang@example.com"].subject == "人力资源部 · 每周服务记分卡 2026-W48"
    for department in directory.departments:
        mail = mails[department.head.email]
        assert mail.message["To"] == department.head.email
        assert mail.message["From"] == "deptpulse@corp.example"
        assert department.name in mail.subject and "2026-W48" in mail.subject
        text, html = mail.text.replace("\r\n", "\n"), mail.message.get_body(preferencelist=("html",))
        assert html is not None and "<!DOCTYPE html>" in html.get_content()
        assert department.head.name in text
        # Its own link and no other department's.
        assert f"{PUBLIC_URL}/scorecard/{department.id}\n" in text
        assert text.count(f"{PUBLIC_URL}/scorecard/") == 1
        # Its own figures: the week's requests opened, as the scorecard computes them.
        row = overall_row(weeks, department.id)
        opened = (
            f"新建请求：{row.requests_opened}（"
            if department.locale == "zh"
            else f"Requests opened: {row.requests_opened} ("
        )
        assert opened in text, text
        # Comments were not loaded: no theme, and the mail says why (privacy minimum).
        assert ("不予显示" if department.locale == "zh" else "Withheld: 0 people commented") in text

    it, hr, finance = (mails[f"{who}@example.com"].text for who in ("ada.park", "wang.fang", "femi.adeyemi"))
    assert "IT burns its SLA error budget fast" in it and "Finance is less satisfied with IT" in it
    assert "人力资源部满意率低于目标" in hr and "IT burns" not in hr
    assert "HR satisfaction" not in it and "No active alerts." in finance
    assert all("provider_department%3D%22" in path for path in alertmanager[1])


def test_a_head_whose_address_cannot_receive_mail_is_reported_and_the_others_get_theirs(
    weeks: Weeks, outbox: tuple[Path, int], alertmanager: tuple[str, list[str]], tmp_path: Path
) -> None:
    raw = yaml.safe_load(EXAMPLE_DIRECTORY.read_text(encoding="utf-8"))
    (finance,) = [department for department in raw["departments"] if department["id"] == "finance"]
    finance["head"]["email"] = "femi..adeyemi@example.com"  # the directory's pattern lets it through
    path = tmp_path / "org.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    env = environment(weeks, outbox[1], alertmanager[0]) | {"DEPTPULSE_DIRECTORY_PATH": str(path)}

    result = digest(env)
    assert result.exit_code == 1, result.output
    assert "finance: NOT SENT to 'femi..adeyemi@example.com': invalid e-mail address" in result.output
    assert "not sent: finance" in result.output and "Traceback" not in result.output
    recipients = [message.envelope_to for message in read_outbox(outbox[0])]
    assert len(recipients) == len(raw["departments"]) - 1
    assert ("femi..adeyemi@example.com",) not in recipients


def test_an_unreachable_relay_is_reported_per_department_after_three_tries(
    weeks: Weeks, alertmanager: tuple[str, list[str]]
) -> None:
    [nothing_listens] = free_ports(1)
    result = digest(
        environment(weeks, nothing_listens, alertmanager[0]), "--department", "it", "--department", "hr"
    )
    assert result.exit_code == 1, result.output
    for department, address in (("it", "ada.park@example.com"), ("hr", "wang.fang@example.com")):
        assert (
            f"{department}: NOT SENT to '{address}': the mail relay 127.0.0.1:{nothing_listens} is unreachable"
            in result.output
        )
    assert result.output.count("(tried 3 times)") == 2
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # exit code 1, not an escaped exception


def test_an_unreachable_alertmanager_is_said_in_the_mail_and_reported(
    weeks: Weeks, outbox: tuple[Path, int]
) -> None:
    [nothing_listens] = free_ports(1)
    env = environment(weeks, outbox[1], f"http://127.0.0.1:{nothing_listens}")
    result = digest(env, "--department", "it", "--department", "hr")
    assert result.exit_code == 0, result.output
    assert "it: warning: alerts unavailable: Alertmanager at" in result.output
    mails = by_recipient(read_outbox(outbox[0]))
    assert "Alerts unavailable: Alertmanager at" in mails["ada.park@example.com"].text
    assert "告警暂不可用" in mails["wang.fang@example.com"].text


def test_a_dry_run_prints_each_mail_and_sends_nothing(
    weeks: Weeks, outbox: tuple[Path, int], alertmanager: tuple[str, list[str]]
) -> None:
    result = digest(environment(weeks, outbox[1], alertmanager[0]), "--dry-run", "--department", "hr")
    assert result.exit_code == 0, result.output
    assert "--- hr: would send to wang.fang@example.com" in result.output
    assert "Subject: 人力资源部 · 每周服务记分卡 2026-W48" in result.output
    assert f"{PUBLIC_URL}/scorecard/hr" in result.output
    assert read_outbox(outbox[0]) == []


def test_a_week_that_does_not_end_on_a_sunday_is_refused(weeks: Weeks) -> None:
    result = CliRunner().invoke(main, ["digest", "--week-ending", "2026-11-30"], env=env_for(weeks.settings))
    assert result.exit_code == 2
    assert "is a Monday: give the Sunday that ends the week, e.g. 2026-11-29" in result.output


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_the_digest_logs_in_at_the_relay_with_the_password_file_alertmanager_is_given(
    weeks: Weeks, alertmanager: tuple[str, list[str]], tmp_path: Path
) -> None:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        good = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"deptpulse",
            b"relay-s3cret",
        )
        return AuthResult(success=good, handled=False)  # False: aiosmtpd answers 535 itself

    [port] = free_ports(1)
    outbox = tmp_path / "outbox"
    controller = Controller(
        OutboxHandler(outbox),
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    password = tmp_path / "smtp-password"
    password.write_text("relay-s3cret\n", encoding="utf-8")
    env = environment(weeks, port, alertmanager[0]) | {
        "DEPTPULSE_SMTP_AUTH_USERNAME": "deptpulse",
        "DEPTPULSE_SMTP_AUTH_PASSWORD_FILE": str(password),
    }
    controller.start()
    try:
        sent = digest(env, "--department", "it")
        refused = digest(env | {"DEPTPULSE_SMTP_AUTH_PASSWORD": "wrong-password"}, "--department", "hr")
    finally:
        controller.stop()
    assert sent.exit_code == 0, sent.output
    assert [message.envelope_to for message in read_outbox(outbox)] == [("ada.park@example.com",)]
    assert refused.exit_code == 1
    assert "hr: NOT SENT to 'wang.fang@example.com': the mail relay" in refused.output
    assert "answered 535" in refused.output and "tried" not in refused.output  # permanent: not retried
    assert "wrong-password" not in refused.output and "relay-s3cret" not in refused.output


def test_with_a_heads_file_each_head_is_read_with_their_own_token_and_gets_a_signed_link(
    weeks: Weeks, outbox: tuple[Path, int], alertmanager: tuple[str, list[str]], tmp_path: Path
) -> None:
    """The read API refuses anonymous reads once there is a heads file: the digest reads each
    department with its head's token (so a mail holds only what its head may read), signs the link
    with the head's link secret, and reports a department whose head has no token."""
    from urllib.parse import parse_qs, urlsplit

    from pydantic import SecretStr

    from stream_processors.access.heads import link_signature, parse_heads
    from stream_processors.access.rules import ReadAccess
    from stream_processors.reads import Reads
    from stream_processors.scorecard.read_api import ReadApi
    from tests.read_api_server import serving

    secrets = {
        "HEAD_IT_TOKEN": "it-" + "t" * 40,
        "HEAD_HR_TOKEN": "hr-" + "u" * 40,
        "HEAD_HR_LINK": "hr-" + "s" * 40,
    }
    heads = {
        "heads": {
            "it": {"token_env": "HEAD_IT_TOKEN"},
            "hr": {"token_env": "HEAD_HR_TOKEN", "link_secret_env": "HEAD_HR_LINK"},
        }  # finance has no entry: no token, so the read API refuses its figures
    }
    heads_path = tmp_path / "heads.yaml"
    heads_path.write_text(yaml.safe_dump(heads), encoding="utf-8")
    client = storage.connect(weeks.settings)
    try:
        reads = Reads.over(client, weeks.directory, weeks.settings)
        access = ReadAccess(weeks.directory, parse_heads(heads, weeks.directory, secrets), anonymous=False)
        api = ReadApi(reads.scorecard, weeks.directory, endpoints=reads.endpoints(), access=access)
        with serving(api) as port:
            env = (
                environment(weeks, outbox[1], alertmanager[0])
                | secrets
                | {
                    "DEPTPULSE_WORKER_PORT": str(port),
                    "DEPTPULSE_READ_API_HEADS_PATH": str(heads_path),
                }
            )
            result = digest(env, "--department", "it", "--department", "hr", "--department", "finance")
    finally:
        client.close()

    assert result.exit_code == 1, result.output
    assert "reading from the worker's read API" in result.output
    assert "finance: NOT SENT to 'femi.adeyemi@example.com': cannot read the week's figures" in result.output
    assert "give the head a token_env in the heads file" in result.output
    assert all(secret not in result.output for secret in secrets.values())
    mails = by_recipient(read_outbox(outbox[0]))
    assert set(mails) == {"ada.park@example.com", "wang.fang@example.com"}
    it, hr = mails["ada.park@example.com"].text, mails["wang.fang@example.com"].text
    assert f"Requests opened: {overall_row(weeks, 'it').requests_opened} (" in it
    assert f"新建请求：{overall_row(weeks, 'hr').requests_opened}（" in hr
    assert f"The live page: {PUBLIC_URL}/scorecard/it\r\n" in it  # IT's head has no link secret
    found = re.search(rf"{PUBLIC_URL}/scorecard/hr\?\S+", hr)
    assert found is not None, hr
    link = found.group(0)
    query = {key: value[0] for key, value in parse_qs(urlsplit(link).query).items()}
    assert query["head"] == "hr"
    assert query["signature"] == link_signature(
        SecretStr(secrets["HEAD_HR_LINK"]), "hr", int(query["expires"])
    )
