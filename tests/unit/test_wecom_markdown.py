"""The WeCom group robot's markdown message: Chinese or English by the department's locale, escaped,
at most 4,096 bytes with a mark saying what was cut."""

from __future__ import annotations

from typing import Any

import pytest

from deptpulse.settings import EXAMPLE_DIRECTORY
from notifiers.wecom_markdown import MAX_CONTENT_BYTES, escape, fit, link, render
from schemas.directory import Directory, load_directory

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory(EXAMPLE_DIRECTORY)


def alert(
    summary: str = "HR: SLA missed",
    summary_zh: str | None = "人力资源部 SLA 未达标",
    status: str = "firing",
    **labels: str,
) -> dict[str, Any]:
    annotations = {
        "summary": summary,
        "description": "Look at the SLA dashboard.",
        "dashboard_url": "http://127.0.0.1:13000/d/deptpulse-sla?var-provider=hr",
    }
    if summary_zh:
        annotations |= {"summary_zh": summary_zh, "description_zh": "请查看 SLA 仪表盘。"}
    return {
        "status": status,
        "labels": {
            "alertname": "DeptpulseSlaAttainmentBelowTarget",
            "provider_department": "hr",
            "customer_department": "finance",
            "severity": "ticket",
        }
        | labels,
        "annotations": annotations,
        "startsAt": "2026-03-02T10:15:00.123456789Z",
        "endsAt": "2026-03-02T11:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
    }


def notification(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {"version": "4", "receiver": "hr-head", "status": "firing", "alerts": list(alerts)}


def test_chinese_for_a_chinese_department(directory: Directory) -> None:
    content = render(notification(alert()), directory, "hr")

    assert content == (
        '### <font color="warning">deptpulse · 待处理</font> · 人力资源部\n\n'
        "**人力资源部 SLA 未达标**\n"
        "> 服务部门：人力资源部 · 客户部门：Finance · 待处理 · 开始于 2026-03-02 10:15 UTC\n"
        "> 请查看 SLA 仪表盘。\n"
        "> [仪表盘](http://127.0.0.1:13000/d/deptpulse-sla?var-provider=hr)"
    )


def test_english_for_an_english_department_and_chinese_fallback_to_english(directory: Directory) -> None:
    english = render(notification(alert(customer_department="*")), directory, "it")
    assert english.startswith('### <font color="warning">deptpulse · action needed</font> · IT\n')
    assert "> 人力资源部 for all internal customers · action needed · since 2026-03-02 10:15 UTC" in english
    assert "人力资源部 SLA 未达标" not in english
    # A pipeline-style alert without Chinese annotations reads in English in a Chinese message.
    chinese = render(notification(alert("The worker is down", None, severity="page")), directory, "hr")
    assert chinese.startswith('### <font color="warning">deptpulse · 紧急</font>')
    assert "**The worker is down**" in chinese


def test_resolved_alerts_and_counts(directory: Directory) -> None:
    content = render(
        notification(alert(), alert("Old drop", "之前的下降", status="resolved")), directory, "hr"
    )

    assert content.splitlines()[0].endswith("· 人力资源部 · 共 2 条告警")
    assert content.endswith('<font color="info">已恢复</font>\n\n✓ 之前的下降（恢复于 2026-03-02 11:00 UTC）')
    only_resolved = render(notification(alert(status="resolved")), directory, "it")
    assert only_resolved.startswith('### <font color="info">deptpulse · resolved</font> · IT\n')


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("**bold** and `code`", "\\*\\*bold\\*\\* and \\`code\\`"),
        ("[click](http://evil.example)", "\\[click\\](http://evil.example)"),
        ('<font color="warning">x</font>', '&lt;font color="warning">x&lt;/font>'),
        ("two\nlines\n# heading", "two lines # heading"),  # no line of its own: no heading, no quote
        ("a \\ b", "a \\\\ b"),
        ("人力资源部 (HR)", "人力资源部 (HR)"),
    ],
)
def test_escape_keeps_label_text_literal(text: str, escaped: str) -> None:
    assert escape(text) == escaped


def test_a_department_name_with_marks_is_escaped(directory: Directory) -> None:
    data = directory.model_dump()
    data["departments"][1]["name"] = "人力*资源*部"
    content = render(notification(alert()), Directory.model_validate(data), "hr")
    assert "· 人力\\*资源\\*部\n" in content


def test_links_only_for_http_urls_with_brackets_encoded() -> None:
    assert link("dashboard", "javascript:alert(1)") == ""
    assert (
        link("dashboard", "http://g.example/d/x?a=(1) b") == "[dashboard](http://g.example/d/x?a=%281%29%20b)"
    )


def test_long_messages_keep_whole_alerts_and_say_how_many_were_cut(directory: Directory) -> None:
    alerts = [alert(f"Alert {index}", f"告警 {index}：" + "很长的说明" * 40) for index in range(30)]
    content = render(notification(*alerts), directory, "hr")

    assert len(content.encode()) <= MAX_CONTENT_BYTES
    shown = content.count("**告警 ")
    assert 0 < shown < 30
    assert content.endswith(f"……（已截断：另有 {30 - shown} 条告警未显示）")


def test_one_block_over_the_limit_is_cut_at_a_character_not_inside_an_escape() -> None:
    block = "标题\n" + "中文*" * 2000  # three-byte characters and two-byte escapes
    content = fit([block], "zh", limit=100)
    assert len(content.encode()) <= 100
    assert content.endswith("\n\n……（内容过长，已截断）")
    body = content.removesuffix("\n\n……（内容过长，已截断）")
    assert not body.endswith("\\")
    assert body.encode().decode() == body  # whole characters only
    english = fit(["x" * 200], "en", limit=50)
    assert english == "x" * (50 - len("\n\n… (truncated)".encode())) + "\n\n… (truncated)"


def test_short_messages_are_left_alone() -> None:
    assert fit(["a", "b"], "en") == "a\n\nb"
