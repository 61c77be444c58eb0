"""Where and why, end to end: events through a real broker and the worker into embedded ClickHouse,
read back with `deptpulse report --by service|question`, `comments` and `themes` through the
worker's read API (the worker holds the chdb path while it runs).

HR's recruiting requests are slow and their comments (Chinese and English) complain about it; its
payroll requests are fine; legal has comments from too few people to be shown.
"""

from __future__ import annotations

import json
import random
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_worker_e2e import (  # make_run: the fixture that starts a worker
    DEPTPULSE,
    Message,
    Mix,
    make_run,  # noqa: F401
    partition_of,
    publish,
    wait_for_progress,
)

pytestmark = pytest.mark.integration

RECRUITING_COMPLAINTS = [
    "招聘太慢了，面试安排拖了三周",
    "招聘流程太慢，岗位空缺两个月",
    "招聘进度没人跟进，候选人都跑了",
    "Hiring takes too long, we lost two candidates",
    "Recruiting is slow: the hiring process needs weeks for one interview",
    "招聘 too slow, hiring manager waited a month",
]
PAYROLL_PRAISE = [
    "薪资问题处理得很快，谢谢",
    "Payroll answered the same day, thanks",
    "Quick and friendly payroll support 👍",
    "<script>alert('x')</script> payroll fixed my payslip fast",
    "工资单的问题当天就解决了",
]


def event(event_type: str, at: datetime, provider: str, customer: str, **fields: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": f"{event_type}:{uuid.uuid4().hex}",
        "event_type": event_type,
        "occurred_at": at.isoformat(),
        "source": "e2e",
        "provider_department": provider,
        "customer_department": customer,
        **fields,
    }


def add(mix: Mix, body: dict[str, Any]) -> None:
    key = body.get("request_id") or body["provider_department"]
    mix.messages.append(Message(partition_of(key), key.encode(), json.dumps(body).encode()))
    mix.valid.append(body)


def story(start: datetime) -> Mix:
    """Events in time order: requests with feedback for two HR services, legal's few comments and
    HR's survey answers by question."""
    rnd = random.Random(11)
    mix = Mix()
    timeline: list[dict[str, Any]] = []
    customers = ["sales", "finance", "it", "legal"]
    for index in range(48):
        recruiting = index % 2 == 0
        service = "hr.recruiting" if recruiting else "hr.payroll"
        opened = start + timedelta(hours=index * 1.5)
        request = f"REQ-{service}-{index}"
        customer = customers[index % len(customers)]
        base = {"request_id": request, "service_category": service, "priority": "P3"}
        replied = opened + (timedelta(hours=30) if recruiting else timedelta(minutes=20))
        resolved = replied + (timedelta(hours=40) if recruiting else timedelta(hours=1))
        score = rnd.choice([1, 2, 2, 3]) if recruiting else rnd.choice([4, 5, 5])
        comment = (RECRUITING_COMPLAINTS if recruiting else PAYROLL_PRAISE)[index // 2 % 5]
        timeline += [
            event("request.opened", opened, "hr", customer, **base),
            event("request.responded", replied, "hr", customer, **base),
            event("request.resolved", resolved, "hr", customer, **base),
            event(
                "feedback.submitted",
                resolved + timedelta(minutes=5),
                "hr",
                customer,
                csat=score,
                comment=comment,
                **base,
            ),
        ]
    for index in range(3):  # too few respondents to show anything
        at = start + timedelta(hours=index)
        base = {"request_id": f"LEGAL-{index}", "service_category": "legal.contracts"}
        timeline += [
            event("request.opened", at, "legal", "sales", **base),
            event(
                "feedback.submitted",
                at + timedelta(hours=1),
                "legal",
                "sales",
                csat=2,
                comment="Contract review by Mr Example took forever",
                **base,
            ),
        ]
    for index in range(25):  # HR's pulse survey: recruiting speed is the weak question
        at = start + timedelta(hours=20, minutes=index)
        respondent = f"resp-{index}"
        timeline += [
            event(
                "survey.answered",
                at,
                "hr",
                customers[index % 3],
                score=rnd.choice([2, 3, 4, 5]),
                question_id="recruiting-speed",
                service_category="hr.recruiting",
                respondent_id=respondent,
                campaign_id="hr-pulse-e2e",
            ),
            event(
                "survey.answered",
                at,
                "hr",
                customers[index % 3],
                score=rnd.choice([8, 9, 10]),
                question_id="payroll-accuracy",
                service_category="hr.payroll",
                respondent_id=respondent,
                campaign_id="hr-pulse-e2e",
            ),
        ]
    for body in sorted(timeline, key=lambda body: body["occurred_at"]):
        add(mix, body)
    return mix


def cli(run: Any, *args: str) -> Any:
    result = subprocess.run(
        [str(DEPTPULSE), *args], env=run.env(), capture_output=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return result


def test_service_rows_comments_and_themes_through_kafka_the_worker_and_chdb(
    make_run: Any,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    start = (datetime.now(UTC) - timedelta(days=9)).replace(microsecond=0)  # all events in the past
    mix = story(start)
    run = make_run("where-and-why")
    ends = publish(run.settings, mix)
    run.start()
    try:
        wait_for_progress(run, ends, 1.0)
        window = ("--window", "28d")
        services = json.loads(
            cli(run, "report", "--provider", "hr", "--by", "service", "--format", "json", *window).stdout
        )
        questions = json.loads(
            cli(run, "report", "--provider", "hr", "--by", "question", "--format", "json", *window).stdout
        )
        comments = json.loads(
            cli(
                run, "comments", "--provider", "hr", "--service", "hr.recruiting", "--format", "json", *window
            ).stdout
        )
        low_only = json.loads(
            cli(run, "comments", "--provider", "hr", "--max-csat", "3", "--format", "json", *window).stdout
        )
        themes = json.loads(cli(run, "themes", "--provider", "hr", "--format", "json", *window).stdout)
        legal = json.loads(cli(run, "comments", "--provider", "legal", "--format", "json", *window).stdout)
        table = cli(run, "report", "--provider", "hr", "--by", "service", *window).stdout.decode()
        page = tmp_path / "hr.html"
        cli(
            run,
            "report",
            "--provider",
            "hr",
            "--format",
            "html",
            "--with-comments",
            "--out",
            str(page),
            *window,
        )
        unknown = subprocess.run(
            [str(DEPTPULSE), "comments", "--provider", "hr", "--service", "it.access"],
            env=run.env(),
            capture_output=True,
            timeout=60,
            check=False,
        )
    finally:
        run.stop()

    # Where: hr.recruiting is the weakest service, with the figures of its 24 requests.
    by_service = {row["service_category"]: row for row in services}
    assert by_service[None]["csat_count"] == 48
    recruiting, payroll = by_service["hr.recruiting"], by_service["hr.payroll"]
    assert (recruiting["requests_opened"], recruiting["csat_count"]) == (24, 24)
    assert recruiting["csat_satisfied_share"] == 0.0 and payroll["csat_satisfied_share"] == 1.0
    assert recruiting["first_response_p50_s"] > payroll["first_response_p50_s"]
    assert "weakest" in table and table.index("weakest") > table.index("hr.recruiting")
    # ... and recruiting speed is the weak question of the survey.
    assert [row["question_id"] for row in questions] == ["recruiting-speed", "payroll-accuracy"]
    assert all(row["answers"] == 25 and sum(row["distribution"]) == 25 for row in questions)
    assert questions[0]["service_category"] == "hr.recruiting"
    assert questions[0]["mean_high95"] < questions[1]["mean_low95"]

    # Why: the recruiting comments, newest first, with score, pair, service and request.
    assert comments["withheld"] is None and comments["total"] == 24 == len(comments["rows"])
    times = [row["occurred_at"] for row in comments["rows"]]
    assert times == sorted(times, reverse=True)
    assert {row["service_category"] for row in comments["rows"]} == {"hr.recruiting"}
    assert all(
        row["request_id"].startswith("REQ-hr.recruiting") and row["score"] <= 3 for row in comments["rows"]
    )
    assert {row["event_type"] for row in low_only["rows"]} == {"feedback.submitted"}
    assert all(row["score"] <= 3 for row in low_only["rows"])
    # The recurring complaint ranks first; no theme from fewer than 5 comments.
    assert themes["withheld"] is None and themes["themes"]
    assert themes["themes"][0]["term"] in {"招聘", "hiring", "recruiting", "太慢"}, themes["themes"][:3]
    assert all(theme["comments"] >= 5 for theme in themes["themes"])
    assert all(len(theme["examples"]) <= 2 for theme in themes["themes"])
    # Privacy: three people wrote to legal: nothing is shown, and the answer says why.
    assert (
        legal["rows"] == []
        and legal["respondents"] == 3
        and "fewer than the minimum of 5" in legal["withheld"]
    )
    # Bad input is refused with the valid ids.
    assert unknown.returncode == 2 and b"hr.payroll" in unknown.stderr and b"Traceback" not in unknown.stderr

    html = page.read_text(encoding="utf-8")
    assert "By service" in html and "weakest" in html and "What customers say" in html
    assert "<script>" not in html  # a comment's HTML is escaped
