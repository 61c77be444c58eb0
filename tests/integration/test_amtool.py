"""The generated Alertmanager configuration with the real tools: amtool checks it and resolves routes
for every department, renders the English and Chinese templates, and a real Alertmanager delivers
to a local mail sink (aiosmtpd) and holds business alerts back during a pipeline outage.
Needs the amtool and prometheus-alertmanager binaries (Debian prometheus-alertmanager 0.25)."""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiosmtpd.controller import Controller

from deptpulse.settings import EXAMPLE_DIRECTORY, REPO_ROOT
from schemas.directory import Directory, load_directory
from schemas.observability import ALERTMANAGER_CONFIG
from schemas.observability.alertmanager import (
    TEST_TIMINGS,
    AlertmanagerOptions,
    alertmanager_config,
    directory_template,
)
from schemas.observability.render import to_yaml
from schemas.observability.rules import alerts, rule_files

pytestmark = pytest.mark.integration

CONFIG = REPO_ROOT / "deploy" / ALERTMANAGER_CONFIG
TEMPLATES = REPO_ROOT / "deploy" / "alertmanager" / "templates"


def binary(name: str) -> str:
    path = shutil.which(name)
    assert path, (
        f"{name} is missing: apt-get install prometheus-alertmanager (or `make system-packages` as root)"
    )
    return path


@pytest.fixture(scope="module")
def amtool() -> str:
    return binary("amtool")


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory(EXAMPLE_DIRECTORY)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


# --- check-config and routes --------------------------------------------------------------------------


def test_check_config(amtool: str) -> None:
    result = run(amtool, "check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    # amtool counts globs; the one glob, relative to the config file, finds both template files.
    (glob,) = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["templates"]
    assert sorted(path.name for path in CONFIG.parent.glob(glob)) == ["deptpulse.tmpl", "directory.tmpl"]


def routes(amtool: str, config: Path, **labels: str) -> list[str]:
    result = run(
        amtool,
        "config",
        "routes",
        "test",
        f"--config.file={config}",
        *(f"{k}={v}" for k, v in labels.items()),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().split(",")


@pytest.mark.parametrize("provider", load_directory(EXAMPLE_DIRECTORY).department_ids())
def test_routes_of_every_department(amtool: str, directory: Directory, provider: str) -> None:
    business = {"category": "business", "alertname": "DeptpulseSatisfactionBelowTarget", "severity": "ticket"}
    for customer in directory.department_ids():
        got = routes(amtool, CONFIG, **business, provider_department=provider, customer_department=customer)
        expected = (
            [f"{provider}-head"] if customer == provider else [f"{provider}-head", f"{customer}-head-cc"]
        )
        assert got == expected, (provider, customer)
    # The provider's overall row and provider-wide alerts (burn rates) reach the head alone.
    assert routes(amtool, CONFIG, **business, provider_department=provider, customer_department="*") == [
        f"{provider}-head"
    ]
    assert routes(amtool, CONFIG, **business | {"severity": "page"}, provider_department=provider) == [
        f"{provider}-head"
    ]


def test_the_at_risk_alert_routes_like_the_backlog_alert(amtool: str, directory: Directory) -> None:
    """Both warn a provider about its open requests of one customer: the provider's head, and a copy
    to the customer's head; the labels are the generated rules' own."""
    generated = {rule["alert"]: rule["labels"] for rule in alerts(rule_files(directory))}
    for customer in ("finance", "it"):
        pair = {"provider_department": "it", "customer_department": customer}
        backlog = routes(
            amtool,
            CONFIG,
            alertname="DeptpulseFirstResponseBacklog",
            **generated["DeptpulseFirstResponseBacklog"],
            **pair,
        )
        for sla in ("first_response", "resolution"):
            at_risk = routes(
                amtool,
                CONFIG,
                alertname="DeptpulseSlaAtRisk",
                **generated["DeptpulseSlaAtRisk"],
                **pair,
                sla=sla,
            )
            assert at_risk == backlog == (["it-head"] if customer == "it" else ["it-head", "finance-head-cc"])


def test_pipeline_and_unknown_departments_route_to_sre(amtool: str) -> None:
    assert routes(amtool, CONFIG, alertname="DeptpulseWorkerDown", category="pipeline", severity="page") == [
        "sre"
    ]
    # A department the directory does not know: SRE, and no copy to the customer's head.
    assert routes(
        amtool, CONFIG, category="business", provider_department="marketing", customer_department="finance"
    ) == ["sre"]


# --- templates ------------------------------------------------------------------------------------------


def alert(
    alertname: str,
    labels: dict[str, str],
    summary: str,
    summary_zh: str | None = None,
    status: str = "firing",
    ends_at: str = "0001-01-01T00:00:00Z",
) -> dict[str, Any]:
    annotations = {
        "summary": summary,
        "description": f"What to look at for {alertname}.",
        "dashboard_url": "http://127.0.0.1:13000/d/deptpulse-scorecard",
    }
    if summary_zh:
        annotations |= {"summary_zh": summary_zh, "description_zh": f"{alertname} 的处理说明。"}
    return {
        "status": status,
        "labels": {"alertname": alertname, **labels},
        "annotations": annotations,
        "startsAt": "2026-03-02T10:15:00Z",
        "endsAt": ends_at,
        "generatorURL": "",
        "fingerprint": alertname,
    }


def notification(receiver: str, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    common = {
        key: value
        for key, value in alerts[0]["labels"].items()
        if all(other["labels"].get(key) == value for other in alerts)
    }
    return {
        "receiver": receiver,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "alerts": alerts,
        "groupLabels": {
            k: v
            for k, v in common.items()
            if k in ("alertname", "provider_department", "customer_department")
        },
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:19093",
    }


@pytest.fixture
def render(amtool: str, tmp_path: Path) -> Callable[[str, dict[str, Any]], str]:
    def render(template: str, data: dict[str, Any]) -> str:
        data_file = tmp_path / "data.json"
        data_file.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        result = run(
            amtool,
            "template",
            "render",
            f"--template.glob={TEMPLATES}/*.tmpl",
            f"--template.data={data_file}",
            f'--template.text={{{{ template "{template}" . }}}}',
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    return render


PAIR = {
    "provider_department": "hr",
    "customer_department": "finance",
    "severity": "ticket",
    "category": "business",
}


def test_chinese_email_for_a_chinese_department(render: Callable[[str, dict[str, Any]], str]) -> None:
    alerts = [
        alert("DeptpulseSatisfactionBelowTarget", PAIR | {"window": "7d"}, "Satisfaction fell", "满意度下降"),
        alert(
            "DeptpulseSatisfactionBelowTarget",
            PAIR | {"window": "24h"},
            "Old drop",
            "之前的下降",
            status="resolved",
            ends_at="2026-03-02T09:00:00Z",
        ),
    ]
    data = notification("hr-head", alerts)
    assert render("deptpulse.email.subject.zh", data) == "[deptpulse · 待处理] 满意度下降 · 共 2 条告警"
    body = render("deptpulse.email.text.zh", data)
    assert body.startswith("王芳，您好：\n")
    assert "1 条告警正在触发：" in body
    assert "服务部门：人力资源部 · 客户部门：Finance · 待处理 · 开始于 2026-03-02 10:15 UTC" in body
    assert "DeptpulseSatisfactionBelowTarget 的处理说明。" in body
    assert "已恢复：\n* 之前的下降（恢复于 2026-03-02 09:00 UTC）" in body
    assert "Satisfaction fell" not in body  # no English where Chinese exists


def test_english_copy_for_the_customer_head(render: Callable[[str, dict[str, Any]], str]) -> None:
    data = notification(
        "finance-head-cc",
        [alert("DeptpulseSatisfactionBelowTarget", PAIR, "Satisfaction fell", "满意度下降")],
    )
    assert render("deptpulse.email.subject.en", data) == "[deptpulse · action needed] Satisfaction fell"
    body = render("deptpulse.email.text.en", data)
    assert body.startswith("Hello Femi Adeyemi,\n")
    assert (
        "You receive a copy because Finance is the internal customer here; 人力资源部, the provider" in body
    )
    assert "人力资源部 for Finance · action needed · since 2026-03-02 10:15 UTC" in body
    assert "Dashboard: http://127.0.0.1:13000/d/deptpulse-scorecard" in body


def test_sre_email_for_a_pipeline_alert(render: Callable[[str, dict[str, Any]], str]) -> None:
    data = notification(
        "sre",
        [alert("DeptpulseWorkerDown", {"severity": "page", "category": "pipeline"}, "The worker is down")],
    )
    assert render("deptpulse.email.subject.en", data) == "[deptpulse · urgent] The worker is down"
    body = render("deptpulse.email.text.en", data)
    assert body.startswith("Hello,\n")
    assert "\n  urgent · since 2026-03-02 10:15 UTC\n" in body  # no provider or customer to name
    # A Chinese template falls back to English annotations when an alert has none in Chinese.
    assert "The worker is down" in render("deptpulse.email.subject.zh", data)


def test_resolved_subject_and_chat_text(render: Callable[[str, dict[str, Any]], str]) -> None:
    resolved = alert(
        "DeptpulseNpsBelowTarget",
        PAIR | {"customer_department": "*"},
        "NPS low",
        "NPS 偏低",
        status="resolved",
        ends_at="2026-03-02T11:00:00Z",
    )
    data = notification("hr-head", [resolved])
    assert render("deptpulse.email.subject.en", data) == "[deptpulse · resolved] NPS low"
    assert render("deptpulse.email.subject.zh", data) == "[deptpulse · 已恢复] NPS 偏低"
    firing = notification("it-head", [alert("DeptpulseNpsBelowTarget", PAIR, "NPS low", "NPS 偏低")])
    assert render("deptpulse.chat.text.en", firing) == (
        "• NPS low <http://127.0.0.1:13000/d/deptpulse-scorecard|dashboard>\n"
    )


# --- a real Alertmanager and a mail sink -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class MailSink:
    """aiosmtpd handler: keeps every message with its envelope recipients."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for recipients, message in self.messages if address in recipients]

    def wait_for(self, *addresses: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.to(address) for address in addresses):
                return
            time.sleep(0.1)
        got = [recipients for recipients, _ in self.messages]
        raise AssertionError(
            f"no mail for {[a for a in addresses if not self.to(a)]} in {timeout} s; got {got}"
        )


@dataclass
class LiveAlertmanager:
    url: str
    mail: MailSink

    def post(self, *alerts: dict[str, Any]) -> None:
        response = httpx.post(f"{self.url}/api/v2/alerts", json=list(alerts), timeout=5)
        response.raise_for_status()

    def alerts(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v2/alerts", timeout=5)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result


def quiet_directory() -> Directory:
    """The example directory without Slack, WeCom or webhook targets: the test talks to no one else."""
    data = load_directory(EXAMPLE_DIRECTORY).model_dump()
    for department in data["departments"]:
        department["head"] |= {"slack_channel": None, "wecom_webhook": None, "webhook_url": None}
    return Directory.model_validate(data)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveAlertmanager]:
    sink = MailSink()
    smtp_port, web_port = free_port(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    directory = quiet_directory()
    (tmp_path / "generated").mkdir()
    (tmp_path / "templates").mkdir()
    options = AlertmanagerOptions(timings=TEST_TIMINGS, smtp_smarthost=f"127.0.0.1:{smtp_port}")
    config = tmp_path / "generated" / "alertmanager.yml"
    config.write_text(
        to_yaml(alertmanager_config(directory, options), directory.organisation), encoding="utf-8"
    )
    shutil.copy(TEMPLATES / "deptpulse.tmpl", tmp_path / "templates")
    (tmp_path / "templates" / "directory.tmpl").write_text(directory_template(directory), encoding="utf-8")
    log = (tmp_path / "alertmanager.log").open("w")
    process = subprocess.Popen(
        [
            binary("prometheus-alertmanager"),
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{web_port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{web_port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, (tmp_path / "alertmanager.log").read_text()
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "Alertmanager did not become ready in 20 s"
            time.sleep(0.1)
        yield LiveAlertmanager(url, sink)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        controller.stop()


def posted(
    alertname: str, labels: dict[str, str], summary: str, summary_zh: str | None = None
) -> dict[str, Any]:
    annotations = {
        "summary": summary,
        "description": "What to look at.",
        "dashboard_url": "http://127.0.0.1:13000/d/x",
    }
    if summary_zh:
        annotations |= {"summary_zh": summary_zh, "description_zh": "处理说明。"}
    return {"labels": {"alertname": alertname, **labels}, "annotations": annotations}


def body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    text: str = part.get_content()
    return text


def test_heads_get_mail_in_their_language_and_customers_a_copy(live: LiveAlertmanager) -> None:
    live.post(
        posted(
            "DeptpulseSatisfactionBelowTarget",
            {
                "provider_department": "it",
                "customer_department": "finance",
                "severity": "ticket",
                "category": "business",
                "window": "7d",
            },
            "IT: satisfaction fell",
            "IT 满意度下降",
        ),
        posted(
            "DeptpulseSlaAttainmentBelowTarget",
            {
                "provider_department": "hr",
                "customer_department": "engineering",
                "severity": "ticket",
                "category": "business",
                "window": "7d",
            },
            "HR: SLA missed",
            "人力资源部 SLA 未达标",
        ),
        posted(
            "DeptpulseNpsBelowTarget",
            {
                "provider_department": "sales",
                "customer_department": "*",
                "severity": "ticket",
                "category": "business",
                "window": "28d",
            },
            "Sales: NPS low",
            "销售 NPS 偏低",
        ),
    )
    heads = (
        "ada.park@example.com",
        "femi.adeyemi@example.com",
        "wang.fang@example.com",
        "li.wei@example.com",
        "carlos.mendes@example.com",
    )
    live.mail.wait_for(*heads)
    time.sleep(3)  # a group interval: nothing else should arrive

    (it_head,) = live.mail.to("ada.park@example.com")
    assert it_head["Subject"] == "[deptpulse · action needed] IT: satisfaction fell"
    assert body(it_head).startswith("Hello Ada Park,")
    (finance_copy,) = live.mail.to("femi.adeyemi@example.com")
    assert "You receive a copy because Finance is the internal customer" in body(finance_copy)
    (hr_head,) = live.mail.to("wang.fang@example.com")
    assert hr_head["Subject"] == "[deptpulse · 待处理] 人力资源部 SLA 未达标"
    assert body(hr_head).startswith("王芳，您好：")
    (engineering_copy,) = live.mail.to("li.wei@example.com")
    assert "您收到此副本，是因为研发部 (Engineering)是此告警中的内部客户" in body(engineering_copy)
    assert len(live.mail.to("carlos.mendes@example.com")) == 1  # the overall row: no copy to anyone
    assert not live.mail.to("sre@example.com")
    assert len(live.mail.messages) == len(heads)


def test_a_pipeline_outage_holds_business_alerts_back(live: LiveAlertmanager) -> None:
    live.post(
        posted(
            "DeptpulseWorkerDown",
            {"job": "deptpulse-worker", "severity": "page", "category": "pipeline"},
            "The deptpulse worker is down",
        ),
        posted(
            "DeptpulseCsatBelowTarget",
            {
                "provider_department": "legal",
                "customer_department": "procurement",
                "severity": "info",
                "category": "business",
                "window": "7d",
            },
            "Legal: CSAT low",
        ),
    )
    live.mail.wait_for("sre@example.com")
    (sre,) = live.mail.to("sre@example.com")
    assert sre["Subject"] == "[deptpulse · urgent] The deptpulse worker is down"

    deadline = time.monotonic() + 10
    while True:
        (business,) = [a for a in live.alerts() if a["labels"]["alertname"] == "DeptpulseCsatBelowTarget"]
        if business["status"]["state"] == "suppressed":
            break
        assert time.monotonic() < deadline, business["status"]
        time.sleep(0.2)
    assert business["status"]["inhibitedBy"], business["status"]
    time.sleep(3)  # group wait and interval have passed: the heads heard nothing
    assert not live.mail.to("lena.vogel@example.com")
    assert not live.mail.to("priya.nair@example.com")
