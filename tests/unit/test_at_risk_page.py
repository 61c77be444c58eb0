"""The scorecard page lists the provider's requests at risk of an SLA breach: request, customer,
service, target, time left and the target's length, escaped; and says so when there are none."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.directory import Directory
from stream_processors.core.at_risk import AtRiskRequest
from stream_processors.scorecard.render_html import HtmlReport, render_html
from stream_processors.scorecard.report import ReportRequest, produce
from stream_processors.scorecard.service import ScorecardService
from tests.unit.test_scorecard_render import HOSTILE, WINDOW, directory, service

pytestmark = pytest.mark.unit
__all__ = ["directory", "service"]  # fixtures

GENERATED = datetime(2026, 3, 16, 8, tzinfo=UTC)
RISKS = [
    AtRiskRequest("HR-7", "hr", "it", "hr.payroll", "first_response", 300.0, 7200.0, True),
    AtRiskRequest(HOSTILE, "hr", "legal", "", "resolution", 5400.0, 86400.0, False),
]


class Risks:
    """An AtRiskSource over fixed requests; remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[datetime, str | None]] = []

    def at_risk(self, now: datetime, provider: str | None = None) -> list[AtRiskRequest]:
        self.asked.append((now, provider))
        return [risk for risk in RISKS if provider in (None, risk.provider_department)]


def page(service: ScorecardService, directory: Directory, customer: str | None = None) -> tuple[str, Risks]:
    risks = Risks()
    html = produce(
        service,
        directory,
        ReportRequest(WINDOW, "hr", customer, output_format="html"),
        GENERATED,
        at_risk=risks,
    )
    return html, risks


def section(html: str) -> str:
    start = html.index('<h2 id="at-risk">')
    return html[start : html.index("<h2", start + 1)]


def test_the_page_lists_each_request_at_risk_with_its_time_left(
    service: ScorecardService, directory: Directory
) -> None:
    html, risks = page(service, directory)

    assert risks.asked == [(GENERATED, "hr")]
    rows = section(html).split("<tr>")[2:]
    assert len(rows) == 2
    assert rows[0].startswith("<td>HR-7</td>") and "first response" in rows[0] and "5 min" in rows[0]
    assert "2.0 h" in rows[0] and "business hours" in rows[0] and "薪资 (Payroll)" in rows[0]
    assert (
        "resolution" in rows[1] and "1.5 h" in rows[1] and "24.0 h" in rows[1] and "calendar time" in rows[1]
    )
    assert ">other<" in rows[1]  # no service
    assert "20.0 % or less" in section(html)


def test_request_ids_and_names_are_escaped(service: ScorecardService, directory: Directory) -> None:
    html, _ = page(service, directory)

    assert "<script>" not in html
    escaped = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;Legal&quot;"
    assert section(html).count(escaped) == 2  # the request id and Legal's name


def test_a_customers_page_lists_only_its_requests(service: ScorecardService, directory: Directory) -> None:
    html, _ = page(service, directory, customer="it")

    assert "HR-7" in section(html) and "Legal" not in section(html)


def test_without_requests_at_risk_the_page_says_so(service: ScorecardService, directory: Directory) -> None:
    html = render_html(
        HtmlReport(
            directory=directory,
            provider="it",
            customer=None,
            window=WINDOW,
            rows=service.scorecard(WINDOW, "it"),
            matrix=(),
            timeseries=service.timeseries(WINDOW, "it"),
            generated_at=GENERATED,
        )
    )

    assert "No open request has 20.0 % or less of its first-response or resolution target left." in section(
        html
    )
