"""The department directory: the example loads; a bad directory is a DirectoryError naming the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from deptpulse.settings import EXAMPLE_DIRECTORY
from schemas.directory import Directory, DirectoryError, UnmappedValue, load_directory
from schemas.events import SurveyAnswered, parse_event

pytestmark = pytest.mark.unit

EXAMPLE = load_directory(EXAMPLE_DIRECTORY)


def department(department_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": department_id,
        "name": department_id.upper(),
        "head": {"name": "Head", "email": f"head@{department_id}.example.com"},
        "calendar": {"timezone": "Europe/Berlin", "working_hours": {"mon": ["09:00-17:00"]}},
        **extra,
    }


MINIMAL: dict[str, Any] = {
    "organisation": "Tiny Corp",
    "departments": [
        department(
            "it",
            services=[{"id": "it.access", "name": "Access", "sla": {"P1": {"first_response": "15m", "resolution": "2h"}}}],
            default_sla={"P1": {"first_response": 1800, "resolution": "4h"}, "P3": {"first_response": "4h", "resolution": "3d"}},
            mappings=[{"source": "jira-sm", "field": "project", "values": ["ITSD"]}],
        ),
        department("hr", mappings=[{"source": "jira-sm", "field": "project", "values": ["HRSD"]}]),
    ],
}  # fmt: skip


def write(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "org.yaml"
    text = content if isinstance(content, str) else yaml.safe_dump(content, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return path


def edited(change: Any) -> dict[str, Any]:
    raw = copy.deepcopy(MINIMAL)
    change(raw)
    return raw


def test_the_example_directory_loads() -> None:
    assert EXAMPLE.organisation == "Example Corp"
    assert EXAMPLE.department_ids() == [
        "it", "hr", "finance", "facilities", "legal", "procurement", "sales", "engineering",
    ]  # fmt: skip
    assert EXAMPLE.resolve("jira-sm", "project", "ITSD") == "it"
    assert EXAMPLE.resolve("servicenow", "assignment_group", "HR Case Management") == "hr"
    assert EXAMPLE.has_service("it.access")
    assert EXAMPLE.policy_for("it").csat_min_sample == 10


def test_the_minimal_directory_loads(tmp_path: Path) -> None:
    directory = load_directory(write(tmp_path, MINIMAL))
    assert directory.department_ids() == ["it", "hr"]
    target = directory.sla_target("it", "it.access", "P1")
    assert target is not None
    assert (target.first_response, target.resolution, target.clock) == (900, 7200, "business")


BAD_DIRECTORIES: list[tuple[Any, str, str]] = [
    (
        lambda raw: raw["departments"][0]["calendar"].update(timezone="Mars/Olympus_Mons"),
        "departments.0.calendar.timezone",
        "unknown timezone 'Mars/Olympus_Mons'",
    ),
    (
        lambda raw: raw["departments"][1].update(id="it"),
        "directory",
        "duplicate department id 'it'",
    ),
    (
        lambda raw: raw["departments"][0]["calendar"]["working_hours"].update(mon=["17:00-09:00"]),
        "departments.0.calendar.working_hours.mon.0",
        "working hours end 09:00:00 must be after start 17:00:00",
    ),
    (
        lambda raw: raw["departments"][0]["default_sla"]["P1"].update(first_response="4 hours"),
        "departments.0.default_sla.P1.first_response",
        "invalid duration '4 hours'",
    ),
    (
        lambda raw: raw["departments"][0]["default_sla"]["P1"].update(resolution=0),
        "departments.0.default_sla.P1.resolution",
        "Input should be greater than 0",
    ),
    (
        lambda raw: raw["departments"][1]["mappings"][0].update(values=["ITSD"]),
        "directory",
        "('jira-sm', 'project', 'ITSD') is mapped to both 'it' and 'hr'",
    ),
    (
        lambda raw: raw["departments"][1].update(services=[{"id": "it.access", "name": "Access again"}]),
        "directory",
        "duplicate service ids ['it.access']",
    ),
    (
        lambda raw: raw["departments"][0]["head"].update(email="not-an-address"),
        "departments.0.head.email",
        "String should match pattern",
    ),
    (
        lambda raw: raw["departments"][0].update(colour="blue"),
        "departments.0.colour",
        "Extra inputs are not permitted",
    ),
    (
        lambda raw: raw["departments"][0].update(id="IT Department"),
        "departments.0.id",
        "String should match pattern",
    ),
    (
        lambda raw: raw["departments"][0]["default_sla"].update(P5={"first_response": 60, "resolution": 60}),
        "departments.0.default_sla.P5.[key]",
        "Input should be 'P1', 'P2', 'P3' or 'P4'",
    ),
    (lambda raw: raw.update(departments=[]), "departments", "List should have at least 1 item"),
    (  # neither the relay's variable that holds a robot's URL nor the URL of a relay of one's own
        lambda raw: raw["departments"][1]["head"].update(wecom_webhook="hr robot key=k"),
        "departments.1.head.wecom_webhook",
        "names the environment variable of `deptpulse wecom-relay`",
    ),
    (
        lambda raw: raw["departments"][0]["head"].update(
            wechat={"corp_id": "ww1", "agent_id": "1000002", "api_secret_file": "/etc/am/wecom"}
        ),
        "departments.0.head.wechat",
        "a WeCom app needs to_user or to_party",
    ),
    (
        lambda raw: raw["departments"][0].update(customer_agreements=[{"customer": "sales"}]),
        "directory",
        "department 'it': customer agreement with 'sales': 'sales' is not a department of the directory",
    ),
    (
        lambda raw: raw["departments"][0].update(
            customer_agreements=[{"customer": "hr"}, {"customer": "hr"}]
        ),
        "directory",
        "department 'it': customer agreement with 'hr' is given twice",
    ),
    (
        lambda raw: raw["departments"][0].update(
            customer_agreements=[{"customer": "hr", "services": {"hr.payroll": {}}}]
        ),
        "directory",
        "department 'it': customer agreement with 'hr': ['hr.payroll'] are not services of 'it'",
    ),
    (
        lambda raw: raw["departments"][0].update(pause_statuses=[""]),
        "departments.0.pause_statuses.0",
        "String should have at least 1 character",
    ),
]


@pytest.mark.parametrize(
    ("change", "field", "message"), BAD_DIRECTORIES, ids=[row[2] for row in BAD_DIRECTORIES]
)
def test_bad_directories_name_the_field(tmp_path: Path, change: Any, field: str, message: str) -> None:
    path = write(tmp_path, edited(change))
    with pytest.raises(DirectoryError) as caught:
        load_directory(path)
    assert str(caught.value).startswith(f"invalid directory {path}: ")
    assert f"{field}: " in str(caught.value)
    assert message in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(
        DirectoryError, match=r"cannot read directory .*nope\.yaml: No such file or directory"
    ):
        load_directory(tmp_path / "nope.yaml")


def test_bad_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "organisation: Tiny\ndepartments: [unclosed\n")
    with pytest.raises(DirectoryError, match=r"directory .*org\.yaml is not valid YAML"):
        load_directory(path)


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DirectoryError, match=r"directory: Input should be a valid dictionary"):
        load_directory(write(tmp_path, ""))


@pytest.mark.parametrize(
    ("duration", "seconds"), [(90, 90), ("45s", 45), ("30m", 1800), ("1.5h", 5400), ("2d", 172800)]
)
def test_durations(tmp_path: Path, duration: Any, seconds: int) -> None:
    raw = edited(lambda raw: raw["departments"][0]["default_sla"]["P3"].update(first_response=duration))
    target = load_directory(write(tmp_path, raw)).sla_target("it", None, "P3")
    assert target is not None
    assert target.first_response == seconds


@pytest.mark.parametrize(
    ("provider", "service", "priority", "first_response"),
    [
        ("it", "it.access", "P1", 15 * 60),  # the service's own target
        ("it", "it.hardware", "P1", 30 * 60),  # the service has no P1: the department default
        ("it", None, "P2", 60 * 60),  # no service: the department default
        ("it", "it.nonexistent", "P3", 4 * 3600),  # unknown service: the department default
        ("hr", "it.access", "P2", 2 * 3600),  # another department's service does not apply
        ("hr", "hr.payroll", "P3", 4 * 3600),  # the service (4h) over the department default (1d)
        ("engineering", "engineering.platform", "P1", 15 * 60),
    ],
)
def test_sla_target_precedence(
    provider: str, service: str | None, priority: str, first_response: int
) -> None:
    target = EXAMPLE.sla_target(provider, service, priority)
    assert target is not None
    assert target.first_response == first_response


def test_sla_target_without_a_priority_or_a_default() -> None:
    assert EXAMPLE.sla_target("it", "it.access", None) is None
    assert EXAMPLE.sla_target("hr", None, "P1") is None  # HR has no P1 target
    with pytest.raises(KeyError, match="unknown department 'marketing'"):
        EXAMPLE.sla_target("marketing", None, "P2")


def test_service_sla_on_a_calendar_clock() -> None:
    target = EXAMPLE.sla_target("it", "it.outage", "P1")
    assert target is not None
    assert target.clock == "calendar"


def test_a_department_with_a_chinese_display_name(tmp_path: Path) -> None:
    raw = edited(
        lambda raw: raw["departments"][1].update(
            name="人力资源部",
            locale="zh",
            head={"name": "王芳", "email": "wang.fang@example.com"},
            calendar={"timezone": "Asia/Shanghai", "working_hours": {"mon": ["09:00-12:00", "13:30-18:00"]}},
            mappings=[{"source": "hr-survey", "field": "department", "values": ["人力资源部", "HR"]}],
        )
    )
    directory = load_directory(write(tmp_path, raw))
    hr = directory.department("hr")
    assert (hr.name, hr.locale, hr.head.name) == ("人力资源部", "zh", "王芳")
    assert [(i.start.isoformat(), i.end.isoformat()) for i in hr.calendar.working_hours["mon"]] == [
        ("09:00:00", "12:00:00"),
        ("13:30:00", "18:00:00"),
    ]
    assert directory.resolve("hr-survey", "department", "人力资源部") == "hr"
    event = parse_event(
        '{"schema_version": 1, "event_type": "survey.answered", "event_id": "hr-survey:1:q", '
        '"occurred_at": "2026-03-02T09:15:00+08:00", "source": "hr-survey", "provider_department": "hr", '
        '"customer_department": "it", "score": 9, "comment": "很好"}',
        directory,
    )
    assert isinstance(event, SurveyAnswered) and event.comment == "很好"
    assert EXAMPLE.department("hr").name == "人力资源部"


def test_unmapped_value_names_the_value_and_the_mapping() -> None:
    with pytest.raises(UnmappedValue) as caught:
        EXAMPLE.resolve("jira-sm", "project", "MKT")
    assert str(caught.value) == "no department mapping for jira-sm field 'project' value 'MKT'"
    assert (caught.value.source, caught.value.field, caught.value.value) == ("jira-sm", "project", "MKT")


def test_department_alert_policy_falls_back_to_the_organisation() -> None:
    raw = edited(lambda raw: raw["departments"][0].update(alert_policy={"csat_min_sample": 3}))
    directory = Directory.model_validate(raw)
    assert directory.policy_for("it").csat_min_sample == 3
    assert directory.policy_for("hr").csat_min_sample == 10


PAIRS: dict[str, Any] = edited(
    lambda raw: raw["departments"][0].update(
        pause_statuses=["waiting_on_customer", "hold"],
        customer_agreements=[
            {
                "customer": "hr",
                "sla": {"P1": {"first_response": "5m", "resolution": "1h", "pause_statuses": []}},
                "services": {"it.access": {"P3": {"first_response": "10m", "resolution": "2h"}}},
                "alert_policy": {"sla_attainment_target": 0.99, "sla_min_sample": 3},
            }
        ],
        alert_policy={"sla_attainment_target": 0.9, "csat_min_sample": 4},
    )
)


@pytest.mark.parametrize(
    ("service", "priority", "customer", "first_response", "rule"),
    [
        ("it.access", "P3", "hr", 600, "departments[it].customer_agreements[hr].services[it.access].P3"),
        (
            "it.access",
            "P1",
            "hr",
            300,
            "departments[it].customer_agreements[hr].sla.P1",
        ),  # over the service's 15m
        (None, "P1", "hr", 300, "departments[it].customer_agreements[hr].sla.P1"),
        ("it.access", "P1", "it", 900, "departments[it].services[it.access].sla.P1"),  # no agreement with it
        ("it.access", "P1", None, 900, "departments[it].services[it.access].sla.P1"),
        (
            None,
            "P3",
            "hr",
            4 * 3600,
            "departments[it].default_sla.P3",
        ),  # the agreement has no P3 for all services
    ],
)
def test_sla_rule_falls_back_from_the_pair_to_the_provider(
    service: str | None, priority: str, customer: str | None, first_response: int, rule: str
) -> None:
    directory = Directory.model_validate(PAIRS)
    found = directory.sla_rule("it", service, priority, customer)
    assert found is not None
    assert (found.target.first_response, found.rule) == (first_response, rule)
    assert directory.sla_target("it", service, priority, customer) == found.target


def test_pause_statuses_per_department_and_per_sla() -> None:
    directory = Directory.model_validate(PAIRS)
    assert directory.pause_statuses("hr") == {"waiting_on_customer"}  # the default
    assert directory.pause_statuses("it") == {"waiting_on_customer", "hold"}
    pair_p1 = directory.sla_rule("it", None, "P1", "hr")
    assert pair_p1 is not None and pair_p1.pause_statuses == frozenset()  # the SLA's own: nothing pauses it
    provider_p3 = directory.sla_rule("it", None, "P3", "hr")
    assert provider_p3 is not None and provider_p3.pause_statuses == {"waiting_on_customer", "hold"}


def test_pair_alert_policy_overrides_only_what_it_sets() -> None:
    directory = Directory.model_validate(PAIRS)
    pair = directory.policy_for_pair("it", "hr")
    assert (pair.sla_attainment_target, pair.sla_min_sample, pair.csat_min_sample) == (0.99, 3, 4)
    assert directory.policy_for_pair("it", "it") == directory.policy_for("it")
    assert directory.policy_for_pair("hr", "it") == directory.policy_for("hr") == directory.alert_policy
    assert directory.pair_policies() == {("it", "hr"): pair}


def test_the_example_sets_an_agreement_and_pause_statuses() -> None:
    finance_p2 = EXAMPLE.sla_target("it", "it.hardware", "P2", "finance")
    others_p2 = EXAMPLE.sla_target("it", "it.hardware", "P2", "hr")
    assert finance_p2 is not None and others_p2 is not None
    assert finance_p2.first_response < others_p2.first_response
    assert "hold" in EXAMPLE.pause_statuses("finance")
