"""The HTML pages and mails rendered from stream_processors/templates/: every text from the directory,
comments, actions and campaigns escaped exactly once (as html.escape writes it), Chinese intact, a
missing value an error, and every template shipped as package data."""

from __future__ import annotations

import tomllib
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from jinja2 import UndefinedError

from deptpulse.settings import EXAMPLE_DIRECTORY
from schemas.directory import Directory
from stream_processors.actions.measuring import action_rows
from stream_processors.comments.reading import ThemeRow, ThemesAnswer
from stream_processors.digest.compose import compose
from stream_processors.scorecard.render_html import HtmlReport, render_html
from stream_processors.scorecard.service import ScorecardService
from stream_processors.scorecard.windows import Window
from stream_processors.surveys.campaigns import campaign_rows
from stream_processors.surveys.render import render_campaigns_page
from stream_processors.templating import environment, template
from tests.unit import test_digest
from tests.unit.test_actions import action, sums
from tests.unit.test_campaigns import T0, counts
from tests.unit.test_scorecard_service import OPENED, SINCE, FakeReader, csat, delta

pytestmark = pytest.mark.unit

HOSTILE = "<script>alert('x')</script> & \"Q\""
ESCAPED = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;Q&quot;"  # html.escape's spelling
HR = f"人力资源部 {HOSTILE}"
REPO_ROOT = Path(__file__).resolve().parents[2]


def hostile_directory() -> Directory:
    """The example organisation with a hostile text after every name the pages show."""
    raw = yaml.safe_load(EXAMPLE_DIRECTORY.read_text(encoding="utf-8"))
    raw["organisation"] = f"Example {HOSTILE}"
    for department in raw["departments"]:
        department["name"] = HR if department["id"] == "hr" else f"{department['name']} {HOSTILE}"
        department["head"]["name"] = f"王芳 {HOSTILE}"
        for service in department.get("services", []):
            service["name"] = f"{service['name']} {HOSTILE}"
    return Directory.model_validate(raw)


class Parsed(HTMLParser):
    """Text by the element it is in and every attribute value, as a browser reads them (decoded once)."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.tags: list[str] = []
        self.text: dict[str, list[str]] = defaultdict(list)
        self.attributes: list[str] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [value for _, value in attrs if value is not None]
        if tag not in ("br", "meta", "line", "rect", "polyline", "circle", "path"):
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [value for _, value in attrs if value is not None]

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:
            while self.open.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.text[self.open[-1] if self.open else ""].append(data)

    def all_text(self) -> list[str]:
        return [piece for pieces in self.text.values() for piece in pieces] + self.attributes


def assert_escaped_once(page: str, parsed: Parsed) -> None:
    assert "script" not in parsed.tags
    assert ESCAPED in page  # escaped, in html.escape's spelling
    assert "&amp;lt;" not in page and "&amp;quot;" not in page and "&amp;#x27;" not in page  # not twice
    for text in parsed.all_text():  # decoded once, nothing is left escaped
        assert "&lt;" not in text and "&quot;" not in text and "&#" not in text, text


def scorecard_page(directory: Directory) -> str:
    hour = timedelta(hours=1)
    service = ScorecardService(
        FakeReader(
            [
                delta("hr", "legal", SINCE + 30 * hour, OPENED, *[csat(5)] * 12, service="hr.recruiting"),
                delta("hr", "it", SINCE + 50 * hour, OPENED, *[csat(1)] * 12, service="hr.payroll"),
                delta("it", "hr", SINCE + 70 * hour, *[csat(3)] * 10),
            ]
        ),
        directory,
    )
    window = Window(SINCE, SINCE + timedelta(days=7))
    themes = test_digest.themes().model_copy(
        update={
            "themes": [
                ThemeRow(
                    term=f"招聘 {HOSTILE}",
                    comments=9,
                    low_comments=7,
                    low_share=0.7,
                    log_odds_z=3.1,
                    examples=[f"招聘太慢 {HOSTILE}"],
                )
            ]
        }
    )
    assert isinstance(themes, ThemesAnswer)
    actions = action_rows(
        [action("a", date(2026, 3, 10), title=f"Recruiting {HOSTILE}")],
        lambda each, windows: sums(100, 160),
        directory,
        datetime(2026, 6, 1, tzinfo=UTC),
        28,
        7,
    )
    campaigns = campaign_rows(
        [
            counts(f"q1 {HOSTILE}", None),
            counts(f"q1 {HOSTILE}", "it", started=T0, invited=10, respondents=12),
        ],
        directory,
    )
    return render_html(
        HtmlReport(
            directory=directory,
            provider="hr",
            customer=None,
            window=window,
            rows=service.scorecard(window, "hr"),
            matrix=service.matrix(window),
            timeseries=service.timeseries(window, "hr"),
            generated_at=datetime(2026, 3, 16, 8, tzinfo=UTC),
            services=service.services(window, "hr"),
            themes=themes,
            campaigns=campaigns,
            actions=actions,
        )
    )


def test_the_scorecard_escapes_every_text_exactly_once_and_keeps_chinese() -> None:
    page = scorecard_page(hostile_directory())
    parsed = Parsed(page)

    assert_escaped_once(page, parsed)
    assert parsed.text["title"][0] == f"{HR} · service scorecard"  # the page's, then the charts'
    assert HR in parsed.text["span"] and '<span lang="zh-Hans">人力资源部 &lt;script&gt;' in page  # h1
    assert f"service scorecard · Example {HOSTILE}" in parsed.text["small"]
    assert any(f"For 王芳 {HOSTILE} ·" in text for text in parsed.text["p"])  # the head
    assert (
        f"Legal {HOSTILE}" in parsed.text["text"]
        and f"{HR} → Legal {HOSTILE}: 5.00 n=12" in parsed.text["title"]
    )
    assert f"招聘 {HOSTILE}" in parsed.text["td"] and f"招聘太慢 {HOSTILE}" in parsed.text["q"]  # themes
    assert f"Recruiting {HOSTILE}" in parsed.text["td"]  # the action, and its marker on the charts:
    assert f"2026-03-10: Recruiting {HOSTILE}" in parsed.text["title"]
    assert f"Survey campaign q1 {HOSTILE}" in parsed.text["h2"]
    assert any(
        HOSTILE in name for name in parsed.text["td"] if name.startswith("招聘 (Recruiting)")
    )  # a service


def test_the_campaigns_page_escapes_ids_and_data_problems_once() -> None:
    directory = hostile_directory()
    rows = campaign_rows([counts(HOSTILE, None, invited=10, respondents=12)], directory)
    page = render_campaigns_page(rows, directory, datetime(2026, 6, 15, tzinfo=UTC))
    parsed = Parsed(page)

    assert_escaped_once(page, parsed)
    assert HOSTILE in parsed.text["td"] and f"{HR}" in parsed.text["td"]
    assert f"{HOSTILE}: 12 respondents but 10 invitations: the invitations are incomplete" in parsed.text["p"]
    assert page.endswith("</body></html>\n")


@pytest.mark.parametrize(("department", "lang"), [("hr", "zh-Hans"), ("it", "en")])
def test_the_digest_mail_escapes_every_text_exactly_once_in_both_languages(
    department: str, lang: str
) -> None:
    directory = Directory.model_validate(
        test_digest.DIRECTORY.model_dump(mode="json")
        | {"organisation": f"Example {HOSTILE}"}
        | {
            "departments": [
                d
                | {
                    "name": f"{d['name']} {HOSTILE}",
                    "head": d["head"] | {"name": f"{d['head']['name']} {HOSTILE}"},
                }
                for d in test_digest.DIRECTORY.model_dump(mode="json")["departments"]
            ]
        }
    )
    link = f'https://deptpulse.example.com/scorecard/{department}?a=1&b="2"\''
    mail = compose(test_digest.content(department, directory=directory, link=link))
    parsed = Parsed(mail.html)

    assert_escaped_once(mail.html, parsed)
    assert f'<html lang="{lang}">' in mail.html
    assert parsed.text["title"] == [mail.subject] and parsed.text["h1"] == [mail.subject]
    assert HOSTILE in mail.subject and link in parsed.attributes
    if department == "hr":
        assert mail.subject.startswith(f"人力资源部 {HOSTILE} · 每周服务记分卡")
        assert f"王芳 {HOSTILE}，您好：" in parsed.text["p"] and "例如：“招聘太慢 <b>”" in parsed.text["p"]


def test_a_missing_value_fails_loudly() -> None:
    with pytest.raises(UndefinedError, match="is undefined"):
        template("scorecard/page.html").render()
    with pytest.raises(UndefinedError):
        environment().from_string("{{ missing }}").render()


def test_autoescaping_is_on_even_for_a_string_template() -> None:
    assert environment().from_string("{{ text }}").render(text=HOSTILE) == ESCAPED


def test_every_template_is_package_data() -> None:
    patterns = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["package-data"]["stream_processors"]
    root = REPO_ROOT / "stream_processors" / "templates"
    templates = [path.relative_to(root.parent) for path in root.rglob("*") if path.is_file()]
    assert templates and all(any(Path(path).match(pattern) for pattern in patterns) for path in templates)
    assert set(environment().list_templates()) == {str(path.relative_to("templates")) for path in templates}
