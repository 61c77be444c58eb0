"""WeCom through real tools: amtool checks the native ``wechat_configs`` of a WeCom app, and an alert
goes through a real Alertmanager to ``deptpulse wecom-relay`` (a subprocess) and on to a fake group
robot on loopback, which must receive the Chinese markdown message. A robot answering 500 ends in the
relay's dead letters, and the relay keeps serving."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from deptpulse.settings import EXAMPLE_DIRECTORY
from schemas.directory import Directory, load_directory
from schemas.observability.alertmanager import (
    TEST_TIMINGS,
    AlertmanagerOptions,
    alertmanager_config,
    directory_template,
)
from schemas.observability.render import to_yaml
from tests.integration.conftest import free_ports
from tests.integration.test_alert_e2e import Process, started, wait_until
from tests.integration.test_amtool import TEMPLATES, MailSink, binary, run

pytestmark = pytest.mark.integration

DEPTPULSE = Path(sys.executable).with_name("deptpulse")
ROBOT_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"  # the shape of a robot key: must never be logged


@dataclass
class RobotPost:
    path: str
    message: dict[str, Any]


class FakeRobot(ThreadingHTTPServer):
    """A WeCom group robot: answers each post with the next status (the last one repeats)."""

    def __init__(self, port: int, statuses: list[int]) -> None:
        self.posts: list[RobotPost] = []
        self.statuses = statuses
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                robot.posts.append(RobotPost(self.path, json.loads(body)))
                status = robot.statuses[min(len(robot.posts), len(robot.statuses)) - 1]
                answer = b'{"errcode":0,"errmsg":"ok"}' if status == 200 else b"internal error"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", port), Handler)


def quiet_directory() -> Directory:
    """The example directory with HR's group robot and no other chat or webhook target."""
    data = load_directory(EXAMPLE_DIRECTORY).model_dump()
    for department in data["departments"]:
        keep_robot = department["id"] == "hr"
        department["head"] |= {"slack_channel": None, "webhook_url": None}
        if not keep_robot:
            department["head"]["wecom_webhook"] = None
    return Directory.model_validate(data)


# --- a WeCom app: Alertmanager's own receiver -------------------------------------------------------


def write_config(tmp_path: Path, directory: Directory, options: AlertmanagerOptions) -> Path:
    """The generated config and templates laid out as under deploy/alertmanager/."""
    (tmp_path / "generated").mkdir(exist_ok=True)
    (tmp_path / "templates").mkdir(exist_ok=True)
    config = tmp_path / "generated" / "alertmanager.yml"
    config.write_text(
        to_yaml(alertmanager_config(directory, options), directory.organisation), encoding="utf-8"
    )
    shutil.copy(TEMPLATES / "deptpulse.tmpl", tmp_path / "templates")
    (tmp_path / "templates" / "directory.tmpl").write_text(directory_template(directory), encoding="utf-8")
    return config


def test_wechat_configs_of_a_wecom_app_pass_amtool(tmp_path: Path) -> None:
    amtool = binary("amtool")
    secret = tmp_path / "wecom-secret"
    secret.write_text("app-secret-from-the-wecom-console\n", encoding="utf-8")
    data = load_directory(EXAMPLE_DIRECTORY).model_dump()
    apps = {
        "hr": {
            "corp_id": "ww0a1b2c3d",
            "agent_id": "1000002",
            "to_user": "wangfang",
            "api_secret_file": str(secret),
        },
        "finance": {
            "corp_id": "ww0a1b2c3d",
            "agent_id": "1000003",
            "to_party": "7|8",
            "api_secret_file": str(secret),
        },
    }
    for department in data["departments"]:
        department["head"]["wechat"] = apps.get(department["id"])
    config = write_config(tmp_path, Directory.model_validate(data), AlertmanagerOptions())
    assert "api_secret_file" in config.read_text() and "app-secret" not in config.read_text()

    result = run(amtool, "check-config", str(config))
    if result.returncode != 0:
        # Alertmanager reads the app secret from a file since 0.31; Debian's 0.25 knows only the
        # inline `api_secret`. Everything else of the receiver is checked with that one field swapped.
        assert "field api_secret_file not found" in result.stdout + result.stderr, (
            result.stdout + result.stderr
        )
        inline = tmp_path / "generated" / "alertmanager-0.25.yml"
        inline.write_text(
            config.read_text().replace(f"api_secret_file: {secret}", "api_secret: not-a-secret"),
            encoding="utf-8",
        )
        result = run(amtool, "check-config", str(inline))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_wecom_app_message_renders_in_chinese(tmp_path: Path) -> None:
    data = {
        "receiver": "hr-head",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "provider_department": "hr",
                    "customer_department": "finance",
                    "severity": "ticket",
                },
                "annotations": {
                    "summary": "HR: SLA missed",
                    "summary_zh": "人力资源部 SLA 未达标",
                    "dashboard_url": "http://g/d",
                },
                "startsAt": "2026-03-02T10:15:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
            }
        ],
        "groupLabels": {},
        "commonLabels": {"provider_department": "hr", "customer_department": "finance", "severity": "ticket"},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:19093",
    }
    data_file = tmp_path / "data.json"
    data_file.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = run(
        binary("amtool"),
        "template",
        "render",
        f"--template.glob={TEMPLATES}/*.tmpl",
        f"--template.data={data_file}",
        '--template.text={{ template "deptpulse.wechat.message.zh" . }}',
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == (
        "**[deptpulse · 待处理] 人力资源部 SLA 未达标**\n"
        "> 人力资源部 SLA 未达标 · 服务部门：人力资源部 · 客户部门：Finance · 待处理 · 开始于 2026-03-02 10:15 UTC"
        " · [仪表盘](http://g/d)\n"
    )


# --- a group robot: Alertmanager -> deptpulse wecom-relay -> the robot --------------------------------


@dataclass
class Relayed:
    alertmanager_url: str
    relay_url: str
    robot: FakeRobot
    relay: Process
    dead_letters: Path


@pytest.fixture
def relayed(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Relayed]:
    statuses: list[int] = getattr(request, "param", [200])
    smtp_port, web_port, relay_port, robot_port = free_ports(4)
    mail = Controller(MailSink(), hostname="127.0.0.1", port=smtp_port)
    robot = FakeRobot(robot_port, statuses)
    directory = quiet_directory()
    options = AlertmanagerOptions(
        timings=TEST_TIMINGS,
        smtp_smarthost=f"127.0.0.1:{smtp_port}",
        wecom_relay_url=f"http://127.0.0.1:{relay_port}",
    )
    config = write_config(tmp_path, directory, options)
    dead_letters = tmp_path / "relay" / "dead-letters.jsonl"
    env = os.environ | {
        "DEPTPULSE_HOME": str(tmp_path / "home"),
        "DEPTPULSE_WECOM_ROBOT_HR": f"http://127.0.0.1:{robot_port}/cgi-bin/webhook/send?key={ROBOT_KEY}",
        "DEPTPULSE_WECOM_RELAY_ATTEMPTS": "3",
        "DEPTPULSE_WECOM_RELAY_DEADLINE_SECONDS": "5",
    }
    env.pop("DEPTPULSE_WECOM_ROBOT_ENGINEERING", None)
    relay = Process(
        "wecom-relay",
        [str(DEPTPULSE), "wecom-relay", f"--port={relay_port}", f"--dead-letters={dead_letters}"],
        tmp_path / "relay.log",
        env,
    )
    alertmanager = Process(
        "alertmanager",
        [
            binary("prometheus-alertmanager"),
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{web_port}",
            "--cluster.listen-address=",
        ],
        tmp_path / "alertmanager.log",
    )
    mail.start()
    threading.Thread(target=robot.serve_forever, daemon=True).start()
    try:
        relay.start()
        alertmanager.start()
        started(relay, f"http://127.0.0.1:{relay_port}/healthz", timeout=30)
        started(alertmanager, f"http://127.0.0.1:{web_port}/-/ready", timeout=30)
        yield Relayed(
            f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{relay_port}", robot, relay, dead_letters
        )
    finally:
        alertmanager.stop()
        relay.stop()
        robot.shutdown()
        robot.server_close()
        mail.stop()


HR_ALERT = {
    "labels": {
        "alertname": "DeptpulseSlaAttainmentBelowTarget",
        "provider_department": "hr",
        "customer_department": "finance",
        "severity": "ticket",
        "category": "business",
        "window": "7d",
    },
    "annotations": {
        "summary": "HR: SLA attainment for Finance below target",
        "summary_zh": "人力资源部对 Finance 的 SLA 达成率低于目标",
        "description": "What to look at.",
        "description_zh": "请查看 SLA 仪表盘，找出超时的请求。",
        "dashboard_url": "http://127.0.0.1:13000/d/deptpulse-sla?var-provider=hr",
    },
}


def test_an_alert_reaches_the_group_robot_in_chinese(relayed: Relayed) -> None:
    httpx.post(f"{relayed.alertmanager_url}/api/v2/alerts", json=[HR_ALERT], timeout=5).raise_for_status()
    # The robot has the post before the relay logs its delivery: wait for both, not one then assert.
    wait_until(
        lambda: relayed.relay.alive()
        and bool(relayed.robot.posts)
        and "delivered to the group robot (attempt 1)" in relayed.relay.tail(),
        30,
        lambda: f"no delivery to the robot in 30 s; relay log:\n{relayed.relay.tail()}",
    )
    (post,) = relayed.robot.posts
    assert post.path == f"/cgi-bin/webhook/send?key={ROBOT_KEY}"
    assert post.message["msgtype"] == "markdown"
    content = post.message["markdown"]["content"]
    assert content.startswith('### <font color="warning">deptpulse · 待处理</font> · 人力资源部\n')
    assert "**人力资源部对 Finance 的 SLA 达成率低于目标**" in content
    assert "> 服务部门：人力资源部 · 客户部门：Finance · 待处理 · 开始于 " in content
    assert "> 请查看 SLA 仪表盘，找出超时的请求。" in content
    assert "HR: SLA attainment" not in content  # Chinese where Chinese exists
    assert len(content.encode()) <= 4096
    assert "delivered to the group robot (attempt 1)" in relayed.relay.tail()
    assert ROBOT_KEY not in (relayed.relay.log.read_text())
    assert not relayed.dead_letters.exists()


def post_to_relay(relayed: Relayed, department: str = "hr") -> httpx.Response:
    notification = {
        "version": "4",
        "receiver": f"{department}-head",
        "status": "firing",
        "alerts": [HR_ALERT],
    }
    return httpx.post(f"{relayed.relay_url}/wecom/{department}", json=notification, timeout=15)


@pytest.mark.parametrize("relayed", [[500, 200]], indirect=True)
def test_a_500_then_200_is_delivered_on_the_second_post(relayed: Relayed) -> None:
    response = post_to_relay(relayed)
    assert response.status_code == 200, response.text
    assert response.json() == {"delivered": True, "attempts": 2}
    assert len(relayed.robot.posts) == 2
    assert "hr: the robot failed (HTTP 500); again in 0.5 s" in relayed.relay.tail()


@pytest.mark.parametrize("relayed", [[500]], indirect=True)
def test_a_robot_that_keeps_failing_ends_in_the_dead_letters(relayed: Relayed) -> None:
    response = post_to_relay(relayed)
    assert response.status_code == 202  # taken: Alertmanager must not send it again
    assert response.json() == {"delivered": False, "reason": "HTTP 500"}
    assert len(relayed.robot.posts) == 3  # DEPTPULSE_WECOM_RELAY_ATTEMPTS
    (letter,) = [json.loads(line) for line in relayed.dead_letters.read_text(encoding="utf-8").splitlines()]
    assert (letter["department"], letter["reason"], letter["attempts"]) == ("hr", "HTTP 500", 3)
    assert letter["alerts"] == [HR_ALERT]
    # Reported with the department and the reason; the relay still serves, and no key in its log.
    log = relayed.relay.tail()
    assert "hr: not delivered, written to" in log and log.rstrip().endswith(": HTTP 500")
    assert relayed.relay.alive()
    assert ROBOT_KEY not in relayed.relay.log.read_text()
    # A department without a robot URL (its variable unset) goes to the dead letters too.
    unset = post_to_relay(relayed, "engineering")
    assert unset.json()["reason"] == "DEPTPULSE_WECOM_ROBOT_ENGINEERING is not set (it holds the robot's URL)"
    with urllib.request.urlopen(f"{relayed.relay_url}/healthz", timeout=5) as health:
        assert health.status == 200
