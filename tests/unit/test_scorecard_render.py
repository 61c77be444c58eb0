"""The scorecard's renderings: figures as people read them, and an HTML page that is self-contained,
escaped and honest about small samples."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
import yaml

from deptpulse.settings import EXAMPLE_DIRECTORY
from schemas.directory import Directory
from stream_processors.scorecard import formatting as fmt
from stream_processors.scorecard.render_html import HtmlReport, render_html
from stream_processors.scorecard.report import render_csv, render_json, render_table
from stream_processors.scorecard.service import ScorecardService
from stream_processors.scorecard.windows import Window
from tests.unit.test_scorecard_service import OPENED, SINCE, FakeReader, csat, delta

pytestmark = pytest.mark.unit

WINDOW = Window(SINCE, SINCE + timedelta(days=7))
HOSTILE = "<script>alert('x')</script> & \"Legal\""


@pytest.fixture(scope="module")
def directory() -> Directory:
    """The example organisation, with Legal renamed to something that must be escaped."""
    raw = yaml.safe_load(EXAMPLE_DIRECTORY.read_text(encoding="utf-8"))
    for department in raw["departments"]:
        if department["id"] == "legal":
            department["name"] = HOSTILE
    return Directory.model_validate(raw)


@pytest.fixture(scope="module")
def service(directory: Directory) -> ScorecardService:
    hour = timedelta(hours=1)
    return ScorecardService(
        FakeReader(
            [
                delta("hr", "legal", SINCE + 30 * hour, OPENED, *[csat(5)] * 12),
                delta("hr", "it", SINCE + 50 * hour, OPENED, csat(1), csat(2)),
                delta("hr", "it", SINCE - 20 * hour, OPENED, *[csat(4)] * 10),
                delta("it", "hr", SINCE + 70 * hour, *[csat(3)] * 10),
            ]
        ),
        directory,
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "–"), (0, "0 s"), (45.4, "45 s"), (600, "10 min"), (5400, "1.5 h"), (400_000, "111 h")],
)
def test_durations_are_working_hours_never_days(seconds: float | None, text: str) -> None:
    assert fmt.duration(seconds) == text


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        (None, "score", "–"),
        (0.123, "score", "+0.12"),
        (-0.004, "score", "0.00"),
        (-0.05, "share", "−5.0 pp"),
        (12, "count", "+12"),
        (-3, "nps", "−3"),
        (1800, "duration", "+30 min"),
        (-7200, "duration", "−2.0 h"),
    ],
)
def test_changes_carry_their_sign_and_unit(value: float | None, kind: str, text: str) -> None:
    assert fmt.change(value, kind) == text


def test_nps_shows_its_margin() -> None:
    assert fmt.nps(-12.4, 8.2) == "−12 ± 8" and fmt.nps(33, None) == "+33" and fmt.nps(None, 3) == "–"


def page(service: ScorecardService, directory: Directory, provider: str = "hr") -> str:
    return render_html(
        HtmlReport(
            directory=directory,
            provider=provider,
            customer=None,
            window=WINDOW,
            rows=service.scorecard(WINDOW, provider),
            matrix=service.matrix(WINDOW),
            timeseries=service.timeseries(WINDOW, provider),
            generated_at=datetime(2026, 3, 16, 8, tzinfo=UTC),
        )
    )


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_the_page_is_self_contained(service: ScorecardService, directory: Directory) -> None:
    html = page(service, directory)
    parser = _Tags()
    parser.feed(html)

    tags = {tag for tag, _ in parser.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert "@import" not in html and "url(http" not in html
    urls = {value for _, attrs in parser.tags for key, value in attrs.items() if key in ("href", "src")}
    assert urls == set()
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}  # a namespace


def test_the_page_names_the_department_and_draws_charts(
    service: ScorecardService, directory: Directory
) -> None:
    html = page(service, directory)

    assert '<h1><span lang="zh-Hans">人力资源部</span>' in html
    assert "<title>人力资源部 · service scorecard</title>" in html
    assert html.count("<svg") == 6 and "<circle" in html  # 4 trend charts with their points, 2 matrices
    assert "Asia/Shanghai" in html and "王芳" in html


def test_directory_text_is_escaped(service: ScorecardService, directory: Directory) -> None:
    html = page(service, directory)

    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;Legal&quot;" in html


def test_small_samples_show_a_count_not_a_figure(service: ScorecardService, directory: Directory) -> None:
    html = page(service, directory)

    # hr -> it: 2 CSAT answers this window (10 the window before): a count and no change.
    assert "n=2 (&lt;10)" in html
    assert "n=2, too few" not in html  # hr overall has 14 answers: its card shows a figure
    it_page = page(service, directory, "it")
    assert "n=0, too few" in it_page  # it serves hr no CSAT answers at all


def test_json_csv_and_table_agree(service: ScorecardService, directory: Directory) -> None:
    rows = service.scorecard(WINDOW, "hr")

    assert render_json(rows).count('"provider_department": "hr"') == len(rows)
    assert render_csv(rows).splitlines()[1].startswith("hr,,,2026-03-09T00:00:00Z,2026-03-16T00:00:00Z,2,")
    table = render_table(rows, directory, WINDOW)
    assert "人力资源部 (hr): all customers" in table and "\x1b[" not in table


def test_the_table_and_the_page_share_one_row_to_cells_function(
    service: ScorecardService, directory: Directory
) -> None:
    """hr -> it has 2 CSAT answers (minimum 10): both CSAT columns are short counts, never a figure;
    hr -> legal has 12, all satisfied: figures, with no change (nothing the window before)."""
    rows = {row.customer_department: row for row in service.scorecard(WINDOW, "hr")}
    policy = directory.policy_for("hr")

    it_cells = fmt.row_cells(rows["it"], policy)
    legal_cells = fmt.row_cells(rows["legal"], policy)

    assert len(it_cells) == len(legal_cells) == 9  # the table heads after the customer's name
    csat, satisfied = 6, 7  # after opened, resolved, reopened, first response, resolution, SLA
    assert [cell.short for cell in it_cells[csat : satisfied + 1]] == [True, True]
    assert it_cells[csat].text == it_cells[satisfied].text == "n=2 (<10)"
    assert (legal_cells[csat].text, legal_cells[csat].short) == ("5.00 (n=12)", False)
    assert legal_cells[satisfied].text == "100.0 % (≥ 75.8 %)" and not legal_cells[satisfied].short
    table = render_table(list(rows.values()), directory, WINDOW)
    assert "5.00 (n=12)" in table and "n=2 (<10)" in table
