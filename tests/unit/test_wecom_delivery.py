"""The relay's delivery to a group robot: what is retried, with which backoff, until when; the dead
letter; and where robot URLs come from. A fake robot, a fake clock: no network, no sleeping."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deptpulse.settings import EXAMPLE_DIRECTORY
from notifiers.wecom_relay import Answer, DeadLetters, RetryPolicy, classify, deliver, robot_urls
from schemas.directory import load_directory

pytestmark = pytest.mark.unit

OK = b'{"errcode":0,"errmsg":"ok"}'


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, OK, Answer(True, False, "")),
        (500, b"", Answer(False, True, "HTTP 500")),
        (503, b"busy", Answer(False, True, "HTTP 503")),
        (429, b"", Answer(False, True, "HTTP 429")),
        (404, b"", Answer(False, False, "HTTP 404")),
        (
            200,
            b'{"errcode":45009,"errmsg":"api freq out of limit"}',
            Answer(False, True, "errcode 45009: api freq out of limit"),
        ),
        (
            200,
            b'{"errcode":93000,"errmsg":"invalid webhook url"}',
            Answer(False, False, "errcode 93000: invalid webhook url"),
        ),
        (200, b"<html>proxy</html>", Answer(False, False, "HTTP 200 without the robot's JSON answer")),
    ],
)
def test_what_the_robot_answers(status: int, body: bytes, expected: Answer) -> None:
    assert classify(status, body) == expected


@dataclass
class FakeRobot:
    """Answers each post with the next of ``statuses``; records the timeouts it was given."""

    statuses: list[int]
    timeouts: list[float] = field(default_factory=list)

    async def send(self, timeout: float) -> Answer:
        self.timeouts.append(timeout)
        status = self.statuses[min(len(self.timeouts), len(self.statuses)) - 1]
        return classify(status, OK if status == 200 else b"")


@dataclass
class FakeClock:
    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def run(robot: FakeRobot, policy: RetryPolicy, clock: FakeClock) -> tuple[bool, int, str]:
    delivery = asyncio.run(deliver(robot.send, policy, sleep=clock.sleep, now=clock.monotonic))
    return delivery.delivered, delivery.attempts, delivery.reason


def test_a_500_then_200_is_delivered_on_the_second_attempt_after_a_backoff() -> None:
    robot, clock = FakeRobot([500, 200]), FakeClock()
    assert run(robot, RetryPolicy(), clock) == (True, 2, "")
    assert clock.slept == [0.5]


def test_always_500_gives_up_after_the_attempts_with_doubling_backoff() -> None:
    robot, clock = FakeRobot([500]), FakeClock()
    assert run(robot, RetryPolicy(attempts=4, deadline_seconds=60), clock) == (False, 4, "HTTP 500")
    assert clock.slept == [0.5, 1.0, 2.0]


def test_a_permanent_failure_is_not_retried() -> None:
    robot, clock = FakeRobot([404]), FakeClock()
    assert run(robot, RetryPolicy(), clock) == (False, 1, "HTTP 404")
    assert clock.slept == []


def test_the_deadline_bounds_the_backoff_and_the_last_timeout() -> None:
    robot, clock = FakeRobot([503]), FakeClock()
    policy = RetryPolicy(attempts=10, first_backoff_seconds=1, request_timeout_seconds=3, deadline_seconds=4)
    delivered, attempts, reason = run(robot, policy, clock)
    # Posts at 0 s, 1 s and 3 s; the next backoff (4 s) would end past the deadline.
    assert (delivered, attempts) == (False, 3)
    assert reason == "HTTP 503; gave up at the 4 s deadline"
    assert clock.slept == [1.0, 2.0]
    assert robot.timeouts == [3, 3, 1]  # the last post may take only what is left of the deadline


def test_dead_letters_hold_the_alerts_the_department_and_the_reason(tmp_path: Path) -> None:
    letters = DeadLetters(tmp_path / "wecom-relay" / "dead-letters.jsonl")
    alerts = [
        {
            "labels": {"alertname": "DeptpulseSlaAttainmentBelowTarget"},
            "annotations": {"summary_zh": "未达标"},
        }
    ]
    letters.add("hr", "HTTP 500", {"receiver": "hr-head", "alerts": alerts}, 4)
    letters.add("hr", "HTTP 500", {"receiver": "hr-head", "alerts": alerts}, 4)

    lines = letters.path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    record = json.loads(lines[0])
    assert record["department"] == "hr" and record["reason"] == "HTTP 500" and record["attempts"] == 4
    assert record["alerts"] == alerts and record["receiver"] == "hr-head"
    assert "未达标" in lines[0]  # readable as written, not \\u-escaped


def test_robot_urls_come_from_the_variables_the_directory_names() -> None:
    directory = load_directory(EXAMPLE_DIRECTORY)
    url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=0123-secret"
    urls, problems = robot_urls(
        directory, {"DEPTPULSE_WECOM_ROBOT_HR": url, "DEPTPULSE_WECOM_ROBOT_ENGINEERING": "not a url"}
    )
    assert urls == {"hr": url}
    assert problems == {"engineering": "DEPTPULSE_WECOM_ROBOT_ENGINEERING is not an http(s) URL"}
    _, missing = robot_urls(directory, {})
    assert missing["hr"] == "DEPTPULSE_WECOM_ROBOT_HR is not set (it holds the robot's URL)"
    assert all("secret" not in problem for problem in problems.values())
