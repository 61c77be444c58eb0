"""The generated Alertmanager configuration: receivers per department head, locale templates, routing
and inhibition. amtool and a real Alertmanager check it further (tests/integration/test_amtool.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from deptpulse.settings import EXAMPLE_DIRECTORY
from schemas.directory import Directory, load_directory
from schemas.observability.alertmanager import (
    PRODUCTION_TIMINGS,
    TEST_TIMINGS,
    AlertmanagerOptions,
    alertmanager_config,
    directory_template,
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory(EXAMPLE_DIRECTORY)


@pytest.fixture(scope="module")
def config(directory: Directory) -> dict[str, Any]:
    return alertmanager_config(directory)


def receiver(config: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [r for r in config["receivers"] if r["name"] == name]
    assert isinstance(found, dict)
    return found


def with_department(directory: Directory, department_id: str, **changes: Any) -> Directory:
    # Rebuilt, not model_copy'd: Directory caches its lookups, and a copy would keep the old ones.
    data = directory.model_dump()
    for department in data["departments"]:
        if department["id"] == department_id:
            department.update(changes)
    return Directory.model_validate(data)


def test_one_head_and_one_copy_receiver_per_department_plus_sre(
    config: dict[str, Any], directory: Directory
) -> None:
    expected = (
        {"sre"}
        | {f"{d.id}-head" for d in directory.departments}
        | {f"{d.id}-head-cc" for d in directory.departments}
    )
    assert {r["name"] for r in config["receivers"]} == expected
    assert receiver(config, "sre")["email_configs"][0]["to"] == "sre@example.com"


def test_messages_use_the_templates_of_the_department_locale(
    config: dict[str, Any], directory: Directory
) -> None:
    for department in directory.departments:
        for name in (f"{department.id}-head", f"{department.id}-head-cc"):
            (email,) = receiver(config, name)["email_configs"]
            assert email["to"] == department.head.email
            assert (
                email["headers"]["Subject"]
                == f'{{{{ template "deptpulse.email.subject.{department.locale}" . }}}}'
            )
            assert email["text"] == f'{{{{ template "deptpulse.email.text.{department.locale}" . }}}}'
            assert email["send_resolved"] is True
    assert "subject.zh" in receiver(config, "hr-head")["email_configs"][0]["headers"]["Subject"]
    assert "subject.en" in receiver(config, "it-head")["email_configs"][0]["headers"]["Subject"]


def test_chat_and_webhook_integrations_follow_the_directory(config: dict[str, Any]) -> None:
    it = receiver(config, "it-head")
    assert it["slack_configs"][0]["channel"] == "#it-leads"
    assert it["webhook_configs"] == [{"url": "http://127.0.0.1:19099/hooks/it", "send_resolved": True}]
    # A WeCom group robot gets Alertmanager's webhook through the relay, at a path naming the department.
    hr = receiver(config, "hr-head")
    assert hr["webhook_configs"] == [{"url": "http://127.0.0.1:19099/wecom/hr", "send_resolved": True}]
    assert "slack_configs" not in hr and "wechat_configs" not in hr
    assert set(receiver(config, "finance-head")) == {"name", "email_configs"}
    assert set(receiver(config, "finance-head-cc")) == {"name", "email_configs"}  # copies: e-mail only
    assert config["global"]["slack_api_url"].startswith("http://127.0.0.1:")


def test_the_relay_address_is_a_parameter(directory: Directory) -> None:
    config = alertmanager_config(
        directory, AlertmanagerOptions(wecom_relay_url="https://relay.corp.example/")
    )
    assert receiver(config, "engineering-head")["webhook_configs"] == [
        {"url": "https://relay.corp.example/wecom/engineering", "send_resolved": True}
    ]


def test_a_wecom_webhook_url_keeps_its_earlier_meaning_a_relay_of_ones_own(directory: Directory) -> None:
    # Directories written before the relay shipped name their own relay's URL: it still works.
    raw = directory.model_dump(mode="json")
    raw["departments"][1]["head"]["wecom_webhook"] = "http://127.0.0.1:19099/hooks/hr-wecom"
    config = alertmanager_config(Directory.model_validate(raw), AlertmanagerOptions())

    assert receiver(config, "hr-head")["webhook_configs"] == [
        {"url": "http://127.0.0.1:19099/hooks/hr-wecom", "send_resolved": True}
    ]


def test_a_wecom_app_gets_the_native_wechat_receiver(directory: Directory) -> None:
    app = {"corp_id": "ww0123", "agent_id": "1000002", "to_party": "7", "api_secret_file": "/etc/am/wecom"}
    head = directory.department("finance").head.model_dump() | {"wechat": app}
    config = alertmanager_config(with_department(directory, "finance", head=head))
    assert receiver(config, "finance-head")["wechat_configs"] == [
        {
            "send_resolved": True,
            "corp_id": "ww0123",
            "agent_id": "1000002",
            "api_secret_file": "/etc/am/wecom",  # the secret stays in its file on Alertmanager's host
            "message_type": "markdown",
            "message": '{{ template "deptpulse.wechat.message.en" . }}',
            "to_party": "7",
        }
    ]
    assert "webhook_configs" not in receiver(config, "finance-head")


def test_no_slack_url_without_a_slack_channel(directory: Directory) -> None:
    it_head = directory.department("it").head.model_dump() | {"slack_channel": None}
    config = alertmanager_config(with_department(directory, "it", head=it_head))
    assert "slack_api_url" not in config["global"]


def test_local_mail_sink_defaults_and_parameters(directory: Directory, config: dict[str, Any]) -> None:
    assert config["global"]["smtp_smarthost"] == "127.0.0.1:2525"
    assert config["global"]["smtp_require_tls"] is False
    custom = alertmanager_config(
        directory,
        AlertmanagerOptions(smtp_smarthost="mail.internal:587", smtp_require_tls=True, sre_email="ops@x.org"),
    )
    assert custom["global"]["smtp_smarthost"] == "mail.internal:587"
    assert custom["global"]["smtp_require_tls"] is True
    assert receiver(custom, "sre")["email_configs"][0]["to"] == "ops@x.org"


def test_routes(config: dict[str, Any], directory: Directory) -> None:
    route = config["route"]
    assert route["receiver"] == "sre"
    assert route["group_by"] == ["alertname", "provider_department", "customer_department"]
    pipeline, *rest = route["routes"]
    assert pipeline["matchers"] == ['category="pipeline"'] and pipeline["receiver"] == "sre"
    assert not pipeline.get("continue"), "pipeline alerts stop at SRE"
    providers, copies = rest[: len(directory.departments)], rest[len(directory.departments) :]
    for department, provider_route in zip(directory.departments, providers, strict=True):
        assert provider_route["matchers"] == [f'provider_department="{department.id}"']
        assert provider_route["receiver"] == f"{department.id}-head"
        assert provider_route["continue"] is True
    known = "|".join(directory.department_ids())
    for department, copy_route in zip(directory.departments, copies, strict=True):
        assert copy_route["receiver"] == f"{department.id}-head-cc"
        assert copy_route["matchers"] == [
            f'customer_department="{department.id}"',
            f'provider_department=~"{known}"',
            f'provider_department!="{department.id}"',
        ]
        assert copy_route["continue"] is True


def test_timings(directory: Directory, config: dict[str, Any]) -> None:
    route = config["route"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("30s", "5m", "4h")
    assert PRODUCTION_TIMINGS.page_repeat_interval == "1h"
    fast = alertmanager_config(directory, AlertmanagerOptions(timings=TEST_TIMINGS))["route"]
    assert (fast["group_wait"], fast["group_interval"]) == ("1s", "2s")


def test_pipeline_outages_inhibit_business_alerts(config: dict[str, Any]) -> None:
    rules = config["inhibit_rules"]
    assert {
        "source_matchers": ['alertname=~"DeptpulseWorkerDown|DeptpulseSinkFailing"'],
        "target_matchers": ['category="business"'],
    } in rules
    pair_over_overall = [r for r in rules if r["target_matchers"] == ['customer_department="*"']]
    assert pair_over_overall and pair_over_overall[0]["equal"] == ["alertname", "provider_department"]
    assert all(
        matcher.count('"') == 2 for r in rules for matcher in r["source_matchers"] + r["target_matchers"]
    )


def test_directory_template_names_departments_and_recipients(directory: Directory) -> None:
    template = directory_template(directory)
    assert template.startswith("{{/* Generated by `deptpulse rules generate`")
    for department in directory.departments:
        assert f'eq . "{department.id}" }}}}{{{{ "{department.name}" }}}}' in template
        assert (
            f'eq . "{department.id}-head" "{department.id}-head-cc" }}}}{{{{ "{department.head.name}" }}}}'
            in template
        )
    assert '{{ "人力资源部" }}' in template  # names stay readable UTF-8


def test_names_cannot_inject_template_code(directory: Directory) -> None:
    template = directory_template(with_department(directory, "it", name='R&D "{{ .Receiver }}" \\ lab'))
    assert '{{ "R&D \\"{{ .Receiver }}\\" \\\\ lab" }}' in template
    # Outside string literals there is no stray action.
    outside = re.sub(r'"(?:[^"\\]|\\.)*"', '""', template)
    assert ".Receiver" not in outside
