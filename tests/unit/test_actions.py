"""Improvement actions without a database or Kafka: the event `actions add` builds and what it refuses,
the effect windows, the measuring state, overlapping actions, and the formats."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from click.testing import CliRunner

from deptpulse.cli import main
from deptpulse.settings import EXAMPLE_DIRECTORY
from schemas.directory import load_directory
from schemas.events import ActionRecorded, event_to_json, parse_event
from stream_processors.actions.measuring import (
    ActionRow,
    EffectWindows,
    RecordedAction,
    action_rows,
    effect_windows,
    overlaps,
)
from stream_processors.actions.recording import ActionRefused, action_event
from stream_processors.actions.render import (
    ActionMarker,
    action_markers,
    actions_csv,
    actions_text,
    render_actions_html,
)
from stream_processors.core import MinuteAggregate
from stream_processors.scorecard.service import UnknownDepartment, UnknownService

pytestmark = pytest.mark.unit

DIRECTORY = load_directory(EXAMPLE_DIRECTORY)
NOW = datetime(2026, 6, 1, 8, tzinfo=UTC)  # 16:00 in Asia/Shanghai, HR's timezone


# --- the event `actions add` publishes ---------------------------------------------------------------


def test_an_action_becomes_a_valid_canonical_event() -> None:
    event = action_event(
        DIRECTORY,
        provider="hr",
        service="hr.recruiting",
        customer="engineering",
        title="  recruiting reorganised  ",
        started_on=date(2026, 5, 4),
        now=NOW,
        owner="wang.fang@example.com",
    )
    assert event.event_id.startswith("action:")
    assert (event.source, event.occurred_at, event.title) == ("deptpulse-cli", NOW, "recruiting reorganised")
    parsed = parse_event(event_to_json(event), DIRECTORY)
    assert isinstance(parsed, ActionRecorded) and parsed == event


def test_today_in_the_providers_timezone_is_not_the_future() -> None:
    # 2026-06-01 20:00 UTC is already 2026-06-02 in Shanghai
    late = datetime(2026, 6, 1, 20, tzinfo=UTC)
    assert action_event(DIRECTORY, provider="hr", title="t", started_on=date(2026, 6, 2), now=late)


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"started_on": date(2026, 6, 2)}, ActionRefused, "the start 2026-06-02 is in the future"),
        ({"title": "   "}, ActionRefused, "the title is empty"),
        ({"service": "it.access"}, UnknownService, "unknown service 'it.access': hr's services are"),
        ({"provider": "nope"}, UnknownDepartment, "unknown provider department 'nope'"),
        ({"customer": "nope"}, UnknownDepartment, "unknown customer department 'nope'"),
        ({"owner": "wang.fang"}, ActionRefused, "the owner 'wang.fang' is not an e-mail address"),
        ({"title": "x" * 201}, ActionRefused, "title: String should have at most 200 characters"),
    ],
)
def test_what_an_action_cannot_be(changes: dict[str, object], error: type[Exception], message: str) -> None:
    values: dict[str, object] = {"provider": "hr", "title": "t", "started_on": date(2026, 5, 4)} | changes
    with pytest.raises(error, match=message):
        action_event(DIRECTORY, now=NOW, **values)  # type: ignore[arg-type]


ENV = {
    "DEPTPULSE_DIRECTORY_PATH": str(EXAMPLE_DIRECTORY),
    "DEPTPULSE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",  # nothing listens: a refusal never gets there
}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--started", "2999-01-01"], "Error: the start 2999-01-01 is in the future"),
        (["--started", "2026-02-30"], "Error: --started '2026-02-30' is not a date: give YYYY-MM-DD"),
        (["--service", "hr.nope"], "Error: unknown service 'hr.nope': hr's services are hr.payroll,"),
        (["--title", ""], "Error: the title is empty"),
        (["--owner", "not-an-address"], "Error: the owner 'not-an-address' is not an e-mail address"),
    ],
)
def test_actions_add_refuses_bad_input_with_exit_2_before_kafka(args: list[str], message: str) -> None:
    base = {"--provider": "hr", "--title": "recruiting reorganised", "--started": "2026-05-04"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    argv = [part for option, value in (base | given).items() for part in (option, value)]
    result = CliRunner().invoke(main, ["actions", "add", *argv], env=ENV)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output and "Kafka" not in result.output


# --- windows, measuring, overlaps --------------------------------------------------------------------


def action(
    event_id: str,
    started_on: date,
    service: str | None = "hr.recruiting",
    customer: str | None = None,
    provider: str = "hr",
    title: str | None = None,
) -> RecordedAction:
    return RecordedAction(
        event_id=event_id,
        provider_department=provider,
        customer_department=customer,
        service_category=service,
        title=title or f"action {event_id}",
        started_on=started_on,
        owner=None,
        recorded_at=datetime.combine(started_on, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9),
    )


def test_windows_are_utc_days_before_the_start_and_after_the_settling_period() -> None:
    assert effect_windows(date(2026, 3, 10), 28, 7) == EffectWindows(
        datetime(2026, 2, 10, tzinfo=UTC),
        datetime(2026, 3, 10, tzinfo=UTC),
        datetime(2026, 3, 17, tzinfo=UTC),
        datetime(2026, 4, 14, tzinfo=UTC),
    )


def test_overlapping_actions_are_those_within_each_others_windows_in_a_shared_scope() -> None:
    start = date(2026, 3, 1)
    actions = [
        action("a", start),
        action("b", start + timedelta(days=34)),  # 34 < 28 + 7: inside a's after window
        action("c", start + timedelta(days=35 + 34)),  # 35 days after b: clear of it
        action("d", start + timedelta(days=10), service="hr.payroll"),  # another service
        action("e", start + timedelta(days=20), service=None, customer="it"),  # every service, one customer
        action("f", start + timedelta(days=5), provider="it", service=None),  # another provider
    ]
    found = {event_id: [o.event_id for o in others] for event_id, others in overlaps(actions, 28, 7).items()}
    assert found == {"a": ["e", "b"], "b": ["a", "e"], "c": [], "d": ["e"], "e": ["a", "d", "b"], "f": []}
    customer_apart = [action("x", start, customer="it"), action("y", start, customer="sales")]
    assert overlaps(customer_apart, 28, 7) == {"x": [], "y": []}


def sums(
    satisfied_before: int, satisfied_after: int, n: int = 200
) -> tuple[MinuteAggregate, MinuteAggregate]:
    return (
        MinuteAggregate(csat_5=satisfied_before, csat_2=n - satisfied_before),
        MinuteAggregate(csat_5=satisfied_after, csat_2=n - satisfied_after),
    )


def test_actions_newest_first_with_effects_measuring_and_overlap_notes() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    recorded = [
        action("old", date(2026, 1, 5), title="recruiting reorganised"),
        action("recent", date(2026, 5, 20), title="new offer process"),
        action("also-old", date(2026, 1, 20), title="<b>recruiter training</b>"),
    ]
    asked: list[str] = []

    def sums_of(each: RecordedAction, windows: EffectWindows) -> tuple[MinuteAggregate, MinuteAggregate]:
        asked.append(each.event_id)
        return sums(100, 160) if each.event_id == "old" else sums(120, 121)

    rows = action_rows(recorded, sums_of, DIRECTORY, now, 28, 7)
    assert [r.event_id for r in rows] == ["recent", "also-old", "old"]
    assert sorted(asked) == ["also-old", "old"]  # nothing is read for an action still measuring
    recent, also_old, old = rows
    assert recent.status == "measuring" and recent.effects == []
    assert recent.notes == ["measuring: the after window ends on 2026-06-23"]
    by_figure = {e.figure: e for e in old.effects}
    assert by_figure["satisfied_share"].verdict == "improved"
    assert by_figure["satisfied_share"].difference == pytest.approx(0.30)
    assert by_figure["nps"].verdict == "insufficient"  # no survey answers in either window
    assert {e.figure: e.verdict for e in also_old.effects}["satisfied_share"] == "no detectable change"
    assert old.overlapping == ["also-old"] and also_old.overlapping == ["old"]
    assert old.notes == [
        "overlaps “<b>recruiter training</b>” (started 2026-01-20): their effects cannot be separated"
    ]
    # The measured windows, in the row for a reader
    assert (old.before_since, old.after_until) == (
        datetime(2025, 12, 8, tzinfo=UTC),
        datetime(2026, 2, 9, tzinfo=UTC),
    )


def rows_for_rendering() -> list[ActionRow]:
    recorded = [
        action("old", date(2026, 1, 5), title="recruiting reorganised"),
        action("recent", date(2026, 5, 20), customer="finance", title="[/] not markup"),
        action("also-old", date(2026, 1, 20), title="<script>alert(1)</script>"),
    ]
    return action_rows(
        recorded, lambda each, windows: sums(100, 160), DIRECTORY, datetime(2026, 6, 1, tzinfo=UTC), 28, 7
    )


def test_the_html_fragment_is_escaped_and_notes_measuring_and_overlaps() -> None:
    html = render_actions_html(rows_for_rendering(), DIRECTORY)
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Actions and their effect" in html
    assert "measuring: the after window ends on 2026-06-23" in html
    assert "their effects cannot be separated" in html
    assert '<td class="up">improved</td>' in html
    assert "50.0 % → 80.0 %" in html and "+30.0 pp (+" in html
    assert "招聘 (Recruiting), for Finance" in html
    assert "No action recorded" in render_actions_html([], DIRECTORY)


def test_markers_csv_and_table() -> None:
    rows = rows_for_rendering()
    assert action_markers(rows)[0] == ActionMarker(
        date(2026, 1, 5), datetime(2026, 1, 5, tzinfo=UTC), "recruiting reorganised"
    )
    records = list(csv.DictReader(io.StringIO(actions_csv(rows))))
    assert [r["event_id"] for r in records] == ["recent"] + ["also-old"] * 6 + ["old"] * 6
    assert records[0]["figure"] == "" and records[0]["notes"].startswith("measuring")
    assert {r["verdict"] for r in records[1:]} >= {"improved", "insufficient"}
    text = actions_text(rows, DIRECTORY)
    assert "recruiting reorganised" in text and "measuring: the after window ends on" in text
    assert "[/] not markup" in text
    assert "no action recorded" in actions_text([], DIRECTORY)
