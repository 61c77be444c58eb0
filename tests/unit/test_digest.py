"""stream_processors.digest without services: weeks, the composed mail in both languages, the
alerts filter, addresses and the retrying sender (an injected attempt function, no relay)."""

from __future__ import annotations

import smtplib
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
import yaml

from schemas.directory import Directory
from stream_processors.comments.reading import ThemeRow, ThemesAnswer
from stream_processors.digest.alerts import ActiveAlert, AlertsUnavailable, alerts_about
from stream_processors.digest.compose import DigestContent, Unavailable, compose
from stream_processors.digest.mail import SmtpRelay, address_problem, build_message, deliver
from stream_processors.digest.weeks import ReportWeek, WeekError, last_full_week, parse_week_ending
from stream_processors.scorecard.rows import ScorecardRow, scorecard_row
from tests.unit.test_scorecard_rows import aggregate

pytestmark = pytest.mark.unit

WEEK = ReportWeek(date(2026, 11, 29), "Asia/Shanghai")
DIRECTORY = Directory.model_validate(
    {
        "organisation": "Example <Corp>",
        "departments": [
            {
                "id": dept,
                "name": name,
                "locale": locale,
                "head": {"name": head, "email": f"{dept}@example.com"},
                "calendar": {"timezone": "Asia/Shanghai", "working_hours": {"mon": ["09:00-18:00"]}},
                "services": [
                    {"id": f"{dept}.desk", "name": f"{dept} <desk>"},
                    {"id": f"{dept}.other", "name": "Other"},
                ],
            }
            for dept, name, locale, head in (
                ("hr", "人力资源部", "zh", "王芳"),
                ("it", "IT <&> Ops", "en", "Ada Park"),
            )
        ],
    }
)


# --- weeks ------------------------------------------------------------------------------------------


def test_a_week_is_monday_to_monday_in_the_departments_timezone() -> None:
    window = WEEK.window()
    assert (window.since, window.until) == (
        datetime(2026, 11, 22, 16, tzinfo=UTC),
        datetime(2026, 11, 29, 16, tzinfo=UTC),
    )
    assert WEEK.label == "2026-W48" and WEEK.starting == date(2026, 11, 23)
    assert ReportWeek(date(2027, 1, 3), "UTC").label == "2026-W53"  # the ISO year, not the date's


@pytest.mark.parametrize(
    ("now", "zone", "ending"),
    [
        (datetime(2026, 11, 30, 7, tzinfo=UTC), "Europe/Berlin", date(2026, 11, 29)),  # Monday 08:00 Berlin
        (datetime(2026, 11, 29, 20, tzinfo=UTC), "Asia/Shanghai", date(2026, 11, 29)),  # already Monday there
        (datetime(2026, 11, 29, 20, tzinfo=UTC), "Europe/Berlin", date(2026, 11, 22)),  # still Sunday there
        (datetime(2026, 12, 3, 12, tzinfo=UTC), "America/New_York", date(2026, 11, 29)),
    ],
)
def test_the_default_week_is_the_last_one_that_has_ended(now: datetime, zone: str, ending: date) -> None:
    assert last_full_week(now, zone).ending == ending


def test_a_week_ending_must_be_a_sunday() -> None:
    assert parse_week_ending("2026-11-29") == date(2026, 11, 29)
    with pytest.raises(WeekError, match=r"is a Monday: .* e\.g\. 2026-11-29 or 2026-12-06"):
        parse_week_ending("2026-11-30")
    with pytest.raises(WeekError, match="not a date"):
        parse_week_ending("last week")


# --- the mail ---------------------------------------------------------------------------------------


def overall(department: str, **kinds: object) -> ScorecardRow:
    window = WEEK.window()
    current = aggregate(
        opened=40,
        csat={5: 20, 4: 10, 2: 5},
        nps={10: 15, 9: 5, 3: 5},
        sla=(30, 6),
        first_responses=[600.0] * 30,
    )
    previous = aggregate(opened=30, csat={5: 10, 4: 10, 1: 5}, sla=(30, 2), first_responses=[300.0] * 30)
    row = scorecard_row(
        department, None, window.since, window.until, current, previous, DIRECTORY.alert_policy
    )
    return row.model_copy(update=kinds)


def service_row(
    department: str, service: str, satisfied: dict[int, int], sla: tuple[int, int] = (10, 10)
) -> ScorecardRow:
    window = WEEK.window()
    current = aggregate(opened=20, csat=satisfied, sla=sla)
    return scorecard_row(
        department, None, window.since, window.until, current, aggregate(), DIRECTORY.alert_policy, service
    )


def themes(**changes: object) -> ThemesAnswer:
    base = ThemesAnswer(
        provider_department="hr",
        service_category=None,
        customer_department=None,
        campaign_id=None,
        max_csat=None,
        since=WEEK.window().since,
        until=WEEK.window().until,
        respondents=12,
        min_respondents=5,
        withheld=None,
        comments=30,
        low_comments=10,
        min_comments=5,
        themes=[
            ThemeRow(
                term="招聘",
                comments=9,
                low_comments=7,
                low_share=0.7,
                log_odds_z=3.1,
                examples=["招聘太慢 <b>"],
            )
        ],
    )
    return base.model_copy(update=changes)


def content(department: str, **changes: object) -> DigestContent:
    values: dict[str, object] = {
        "directory": DIRECTORY,
        "department": department,
        "week": WEEK,
        "overall": overall(department),
        "services": [
            overall(department),
            service_row(department, f"{department}.desk", {5: 5, 2: 15}),
            service_row(department, f"{department}.other", {5: 18, 4: 2}),
        ],
        "themes": themes(),
        "alerts": [ActiveAlert("DeptpulseSlaBudgetBurnFast", "page", "*", "budget <burns>", "")],
        "link": f"https://deptpulse.example.com/scorecard/{department}",
    }
    return DigestContent(**(values | changes))  # type: ignore[arg-type]


def test_a_chinese_head_reads_every_part_in_chinese() -> None:
    mail = compose(content("hr"))
    assert mail.subject == "人力资源部 · 每周服务记分卡 2026-W48"
    assert mail.lang == "zh-Hans"
    text = mail.text
    assert text.startswith("王芳，您好：")
    assert "新建请求：40（已解决 0，重开 0），较前一周 +10" in text
    assert "满意率（4-5 分）：85.7 %" in text
    assert "最薄弱的服务" in text and "hr <desk>：满意率 25.0 %" in text  # rows.weakest over the services
    assert "主要话题：“招聘”，出现在 9 条评论中，占低分评论的 70 %。" in text
    assert (
        "[page] DeptpulseSlaBudgetBurnFast（所有客户部门）" not in text
    )  # the alert line keeps ASCII brackets
    assert "[page] DeptpulseSlaBudgetBurnFast (所有客户部门): budget <burns>" in text
    assert "实时页面：https://deptpulse.example.com/scorecard/hr" in text


def test_an_english_head_reads_english_and_the_html_escapes_every_text() -> None:
    mail = compose(content("it"))
    assert mail.subject == "IT <&> Ops · weekly service scorecard 2026-W48"
    assert "Dear Ada Park," in mail.text
    assert "Requests opened: 40 (0 resolved, 0 reopened), +10 against the week before" in mail.text
    assert "The live page: https://deptpulse.example.com/scorecard/it" in mail.text
    html = mail.html
    assert '<html lang="en">' in html
    assert "IT &lt;&amp;&gt; Ops" in html and "IT <&> Ops" not in html
    assert "budget &lt;burns&gt;" in html and "it &lt;desk&gt;" in html and "Example &lt;Corp&gt;" in html
    assert '<a href="https://deptpulse.example.com/scorecard/it">' in html
    assert "<script" not in html and "src=" not in html  # self-contained: nothing fetched


def test_below_the_minimum_sample_the_mail_says_so_and_shows_no_figure() -> None:
    short = overall("it").model_copy(
        update={"csat_insufficient": True, "csat_avg": None, "csat_count": 4, "csat_satisfied_share": None,
                "nps_insufficient": True, "nps": None, "nps_count": 3}
    )  # fmt: skip
    text = compose(content("it", overall=short)).text
    assert "CSAT average: too few to show a figure: 4 (a figure is shown from 10)" in text
    assert "Satisfied (4-5): too few to show a figure: 4 (a figure is shown from 10)" in text
    assert "NPS: too few to show a figure: 3 (a figure is shown from 20)" in text
    zh = compose(content("hr", overall=short.model_copy(update={"provider_department": "hr"}))).text
    assert "CSAT 平均分：样本不足，不显示数值：4 个（至少 10 个才显示）" in zh


def test_withheld_comments_unavailable_alerts_and_an_empty_week_are_said() -> None:
    withheld = themes(withheld="too few", respondents=3, themes=[])
    text = compose(
        content(
            "it",
            themes=withheld,
            alerts=Unavailable("Alertmanager at http://am did not answer"),
            overall=None,
        )
    ).text
    assert "Withheld: 3 people commented this week, fewer than the minimum of 5" in text
    assert "Alerts unavailable: Alertmanager at http://am did not answer." in text
    assert "Nothing was recorded for IT <&> Ops this week or the week before." in text
    assert "招聘" not in text
    zh = compose(content("hr", themes=withheld, alerts=[])).text
    assert "不予显示：本周只有 3 人发表评论，少于最低 5 人" in zh and "当前没有告警。" in zh


def test_no_weakest_service_when_every_service_meets_its_targets() -> None:
    good = [overall("it"), service_row("it", "it.desk", {5: 20}, sla=(20, 0))]
    assert "No service fell short of its targets" in compose(content("it", services=good)).text


# --- alerts -----------------------------------------------------------------------------------------


def test_only_the_departments_active_alerts_most_severe_first_in_its_language() -> None:
    payload = [
        {"labels": {"alertname": "B", "severity": "ticket", "provider_department": "hr", "customer_department": "it"},
         "annotations": {"summary": "b", "summary_zh": "乙"}, "status": {"state": "active"}},
        {"labels": {"alertname": "A", "severity": "page", "provider_department": "hr"},
         "annotations": {"summary": "a"}, "status": {"state": "active"}},
        {"labels": {"alertname": "C", "severity": "page", "provider_department": "it"}, "status": {"state": "active"}},
        {"labels": {"alertname": "D", "severity": "page", "provider_department": "hr"},
         "status": {"state": "suppressed"}},
    ]  # fmt: skip
    found = alerts_about(payload, "hr", "zh")
    assert [(a.name, a.summary, a.customer_department) for a in found] == [("A", "a", "*"), ("B", "乙", "it")]
    with pytest.raises(AlertsUnavailable):
        alerts_about({"error": "x"}, "hr", "en")


# --- addresses and sending --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("ada.park@example.com", None),
        ("", "no e-mail address"),
        ("femi..adeyemi@example.com", "invalid e-mail address"),
        ("ab@c.com.", "invalid e-mail address"),
    ],
)
def test_address_problems(address: str, problem: str | None) -> None:
    found = address_problem(address)
    assert found == problem if problem is None else found is not None and found.startswith(problem)


def message() -> EmailMessage:
    mail = compose(content("hr"))
    return build_message(
        mail, "deptpulse@corp.example", "hr@example.com", datetime(2026, 11, 30, 7, tzinfo=UTC)
    )


def test_the_message_is_multipart_text_and_html() -> None:
    built = message()
    assert built.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in built.iter_parts()] == ["text/plain", "text/html"]
    assert built["Subject"] == "人力资源部 · 每周服务记分卡 2026-W48" and built["To"] == "hr@example.com"
    assert built["Message-ID"].endswith("@corp.example>")


RELAY = SmtpRelay("127.0.0.1:2525", "deptpulse@corp.example")


def test_an_unreachable_relay_is_tried_three_times_with_doubling_delays() -> None:
    slept: list[float] = []

    def refused(relay: SmtpRelay, built: EmailMessage) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    delivery = deliver(RELAY, message(), sleep=slept.append, attempt=refused)
    assert (delivery.delivered, delivery.attempts, slept) == (False, 3, [1.0, 2.0])
    assert (
        delivery.reason == "the mail relay 127.0.0.1:2525 is unreachable: Connection refused (tried 3 times)"
    )


def test_a_refused_recipient_is_not_tried_again_and_a_passing_hiccup_is() -> None:
    def refuses(relay: SmtpRelay, built: EmailMessage) -> None:
        raise smtplib.SMTPRecipientsRefused({"hr@example.com": (550, b"no such user")})

    refused = deliver(RELAY, message(), sleep=lambda _: None, attempt=refuses)
    assert (refused.delivered, refused.attempts) == (False, 1)
    assert (
        refused.reason
        == "the mail relay 127.0.0.1:2525 refused the recipient (hr@example.com: 550 no such user)"
    )

    answers = [smtplib.SMTPServerDisconnected("gone"), None]

    def flaky(relay: SmtpRelay, built: EmailMessage) -> None:
        if (answer := answers.pop(0)) is not None:
            raise answer

    assert deliver(RELAY, message(), sleep=lambda _: None, attempt=flaky).attempts == 2


def test_rules_generate_writes_the_relay_settings_the_digest_sends_through(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from deptpulse.cli import main

    env = {
        "DEPTPULSE_SMTP_SMARTHOST": "smtp.corp.example:587",
        "DEPTPULSE_SMTP_FROM": "deptpulse@corp.example",
        "DEPTPULSE_SMTP_REQUIRE_TLS": "true",
        "DEPTPULSE_SMTP_AUTH_USERNAME": "deptpulse",
        "DEPTPULSE_SMTP_AUTH_PASSWORD_FILE": "/etc/deptpulse/smtp-password",
        "DEPTPULSE_SMTP_AUTH_PASSWORD": "never-written-anywhere",
    }
    result = CliRunner().invoke(main, ["rules", "generate", "--deploy-dir", str(tmp_path)], env=env)
    assert result.exit_code == 0, result.output
    text = (tmp_path / "alertmanager/generated/alertmanager.yml").read_text(encoding="utf-8")
    config = yaml.safe_load(text)["global"]
    assert {key: config.get(key) for key in ("smtp_smarthost", "smtp_from", "smtp_require_tls")} == {
        "smtp_smarthost": "smtp.corp.example:587",
        "smtp_from": "deptpulse@corp.example",
        "smtp_require_tls": True,
    }
    assert config["smtp_auth_username"] == "deptpulse"
    assert config["smtp_auth_password_file"] == "/etc/deptpulse/smtp-password"
    assert "never-written-anywhere" not in text
    overridden = CliRunner().invoke(
        main,
        ["rules", "generate", "--deploy-dir", str(tmp_path), "--smtp-smarthost", "mx.example:25"],
        env=env,
    )
    assert overridden.exit_code == 0, overridden.output
    text = (tmp_path / "alertmanager/generated/alertmanager.yml").read_text(encoding="utf-8")
    assert yaml.safe_load(text)["global"]["smtp_smarthost"] == "mx.example:25"
