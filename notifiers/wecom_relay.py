"""``deptpulse wecom-relay``: Alertmanager's webhook in, a WeCom group robot's markdown message out.

``POST /wecom/<department>`` takes Alertmanager's webhook JSON and posts
``{"msgtype": "markdown", "markdown": {"content": ...}}`` to that department's robot, retrying 5xx,
rate limits and timeouts with backoff within a deadline. What still fails goes to a dead-letter file
(JSON lines: the alerts, the department, the reason) and is answered 202, so Alertmanager does not
send it again. Robot URLs carry their key: they come from the environment, by the variable the
directory names (``head.wecom_webhook``), and are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from notifiers.wecom_markdown import render
from schemas.directory import Directory

log = logging.getLogger("deptpulse.wecom_relay")
RATE_LIMITED = 45009  # the robot's errcode for "api freq out of limit": worth another try


@dataclass(frozen=True)
class Answer:
    """What one post to the robot came to."""

    ok: bool
    retryable: bool
    reason: str


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    first_backoff_seconds: float = 0.5  # doubled after each failure
    request_timeout_seconds: float = 3.0
    # Under Alertmanager's own notification timeout (10 s at least): it must not give up and resend.
    deadline_seconds: float = 8.0

    def backoff(self, failures: int) -> float:
        return float(self.first_backoff_seconds * 2 ** (failures - 1))


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    attempts: int
    reason: str  # the last failure's, empty when delivered at once


def classify(status: int, body: bytes) -> Answer:
    """The robot's HTTP answer: 200 with errcode 0 is delivered; 5xx, 429 and rate limits are retried."""
    if status >= 500 or status == 429:
        return Answer(False, True, f"HTTP {status}")
    if status != 200:
        return Answer(False, False, f"HTTP {status}")
    try:
        answer = json.loads(body)
        errcode, errmsg = int(answer.get("errcode", -1)), str(answer.get("errmsg", ""))[:200]
    except (ValueError, TypeError, AttributeError):
        return Answer(False, False, "HTTP 200 without the robot's JSON answer")
    if errcode == 0:
        return Answer(True, False, "")
    return Answer(False, errcode == RATE_LIMITED, f"errcode {errcode}: {errmsg}")


async def deliver(
    send: Callable[[float], Awaitable[Answer]],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    now: Callable[[], float] = time.monotonic,
    on_retry: Callable[[Answer, float], None] = lambda answer, delay: None,
) -> Delivery:
    """Call ``send(timeout)`` until it delivers, fails for good, or attempts or the deadline run out."""
    deadline = now() + policy.deadline_seconds
    answer = Answer(False, False, "no attempt made")
    for attempt in range(1, policy.attempts + 1):
        remaining = deadline - now()
        answer = await send(min(policy.request_timeout_seconds, remaining))
        if answer.ok:
            return Delivery(True, attempt, "")
        if not answer.retryable or attempt == policy.attempts:
            return Delivery(False, attempt, answer.reason)
        delay = policy.backoff(attempt)
        if now() + delay >= deadline:
            return Delivery(
                False, attempt, f"{answer.reason}; gave up at the {policy.deadline_seconds:g} s deadline"
            )
        on_retry(answer, delay)
        await sleep(delay)
    return Delivery(False, policy.attempts, answer.reason)


def robot_urls(directory: Directory, environ: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(department -> robot URL, department -> why it has none) for every head with a group robot."""
    urls: dict[str, str] = {}
    problems: dict[str, str] = {}
    for department in directory.departments:
        variable = department.head.wecom_robot_variable
        if not variable:
            continue
        url = environ.get(variable, "")
        if not url:
            problems[department.id] = f"{variable} is not set (it holds the robot's URL)"
        elif urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            problems[department.id] = f"{variable} is not an http(s) URL"
        else:
            urls[department.id] = url
    return urls, problems


class DeadLetters:
    """Appends what could not be delivered to a JSON-lines file, one notification a line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, department: str, reason: str, notification: Mapping[str, Any], attempts: int) -> None:
        record = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "department": department,
            "reason": reason,
            "attempts": attempts,
            "receiver": notification.get("receiver"),
            "alerts": notification.get("alerts"),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(record, ensure_ascii=False) + "\n")


def _redacted(text: str, url: str) -> str:
    """An error message without the robot's URL or its key."""
    query = urlsplit(url).query
    text = text.replace(url, "<robot URL>")
    return text.replace(query, "<key>") if query else text


async def post_to_robot(session: ClientSession, url: str, content: str, timeout: float) -> Answer:
    """One post of the markdown message; network errors and timeouts are retryable failures."""
    message = {"msgtype": "markdown", "markdown": {"content": content}}
    try:
        async with session.post(
            url, json=message, timeout=ClientTimeout(total=max(timeout, 0.1))
        ) as response:
            return classify(response.status, await response.read())
    except TimeoutError:
        return Answer(False, True, f"no answer within {timeout:.1f} s")
    except ClientError as error:
        return Answer(False, True, _redacted(f"{type(error).__name__}: {error}", url))


@dataclass
class Relay:
    directory: Directory
    urls: Mapping[str, str]
    problems: Mapping[str, str]
    dead_letters: DeadLetters
    policy: RetryPolicy
    session: ClientSession | None = None

    async def handle(self, request: web.Request) -> web.Response:
        department = request.match_info["department"]
        try:
            notification = await request.json()
            if not isinstance(notification, dict) or not isinstance(notification.get("alerts"), list):
                raise ValueError("no alerts list")
        except ValueError as error:
            log.warning(
                "%s: refused a request that is not Alertmanager's webhook JSON (%s)", department, error
            )
            return web.json_response({"error": "expected Alertmanager's webhook JSON"}, status=400)
        if (
            not self.directory.has_department(department)
            or not self.directory.department(department).head.wecom_robot_variable
        ):
            return self._dead_letter(
                department, "the directory names no WeCom group robot for it", notification, 0, 404
            )
        if department not in self.urls:
            return self._dead_letter(department, self.problems[department], notification, 0, 202)
        content = render(notification, self.directory, department)
        url = self.urls[department]
        assert self.session is not None

        async def send(timeout: float) -> Answer:
            assert self.session is not None
            return await post_to_robot(self.session, url, content, timeout)

        def retrying(answer: Answer, delay: float) -> None:
            log.warning("%s: the robot failed (%s); again in %.1f s", department, answer.reason, delay)

        delivery = await deliver(send, self.policy, on_retry=retrying)
        if not delivery.delivered:
            return self._dead_letter(department, delivery.reason, notification, delivery.attempts, 202)
        log.info(
            "%s: %d alert(s) delivered to the group robot (attempt %d)",
            department,
            len(notification["alerts"]),
            delivery.attempts,
        )
        return web.json_response({"delivered": True, "attempts": delivery.attempts})

    def _dead_letter(
        self, department: str, reason: str, notification: Mapping[str, Any], attempts: int, status: int
    ) -> web.Response:
        log.error("%s: not delivered, written to %s: %s", department, self.dead_letters.path, reason)
        self.dead_letters.add(department, reason, notification, attempts)
        return web.json_response({"delivered": False, "reason": reason}, status=status)

    async def _session(self, app: web.Application) -> AsyncIterator[None]:
        self.session = ClientSession()
        yield
        await self.session.close()


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(relay: Relay) -> web.Application:
    app = web.Application()
    app.router.add_post("/wecom/{department}", relay.handle)
    app.router.add_get("/healthz", healthz)
    app.cleanup_ctx.append(relay._session)
    for department, problem in relay.problems.items():
        log.warning("%s: no group robot, its alerts go to the dead letters: %s", department, problem)
    return app


def serve(relay: Relay, host: str, port: int) -> None:
    """Run the relay until interrupted."""
    log.info(
        "WeCom relay on http://%s:%d/wecom/<department> for %s; dead letters in %s",
        host,
        port,
        ", ".join(sorted(relay.urls) + sorted(relay.problems)) or "no department",
        relay.dead_letters.path,
    )
    web.run_app(create_app(relay), host=host, port=port, print=None, access_log=None)
