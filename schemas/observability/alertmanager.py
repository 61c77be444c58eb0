"""Alertmanager configuration generated from the department directory.

Routing: a business alert goes to its provider department's head (``<id>-head``: email, plus Slack,
WeCom relay or webhook when the directory names one) and, on a pair alert, a copy to the customer
department's head (``<id>-head-cc``, email). Pipeline alerts, and anything naming an unknown
department, go to the SRE receiver. Messages use the templates of the recipient's locale
(``deploy/alertmanager/templates/deptpulse.tmpl``); department names and recipients come from the
generated ``directory.tmpl``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from schemas.directory import Department, Directory
from schemas.observability.names import OVERALL_CUSTOMER
from schemas.observability.render import notice

SRE_RECEIVER = "sre"
LOCALE_SRE = "en"
# Pipeline alerts that make every business number unreliable: while one fires, business alerts wait.
PIPELINE_OUTAGES = ("DeptpulseWorkerDown", "DeptpulseSinkFailing")


@dataclass(frozen=True)
class RouteTimings:
    group_wait: str
    group_interval: str
    repeat_interval: str  # tickets
    page_repeat_interval: str
    info_repeat_interval: str
    cc_repeat_interval: str  # copies to the customer department's head


PRODUCTION_TIMINGS = RouteTimings("30s", "5m", "4h", "1h", "24h", "24h")
# For tests against a real Alertmanager: a notification within about a second.
TEST_TIMINGS = RouteTimings("1s", "2s", "1m", "1m", "1m", "1m")


@dataclass(frozen=True)
class AlertmanagerOptions:
    """Generator parameters that the directory does not hold. Defaults suit the local stack."""

    sre_email: str = "sre@example.com"
    smtp_smarthost: str = "127.0.0.1:2525"  # the local mail sink
    smtp_from: str = "deptpulse@example.com"
    smtp_hello: str = "localhost"
    smtp_require_tls: bool = False
    smtp_auth_username: str | None = None
    smtp_auth_password_file: str | None = None  # a file on Alertmanager's host: no secret in the config
    # Slack incoming-webhook URL for heads with a slack_channel; the directory names channels only.
    slack_api_url: str = "http://127.0.0.1:19099/hooks/slack"
    slack_api_url_file: str | None = None  # the URL is a secret: in production, name a file holding it
    # `deptpulse wecom-relay`: heads with a WeCom group robot get their alerts through it.
    wecom_relay_url: str = "http://127.0.0.1:19099"
    timings: RouteTimings = field(default=PRODUCTION_TIMINGS)
    templates_glob: str = "../templates/*.tmpl"  # relative to the generated config's directory


def head_receiver(department_id: str) -> str:
    return f"{department_id}-head"


def cc_receiver(department_id: str) -> str:
    return f"{department_id}-head-cc"


def _templates(kind: str, locale: str) -> str:
    return f'{{{{ template "deptpulse.{kind}.{locale}" . }}}}'


def _email(to: str, locale: str) -> dict[str, Any]:
    return {
        "to": to,
        "send_resolved": True,
        "headers": {"Subject": _templates("email.subject", locale)},
        "text": _templates("email.text", locale),
        "html": "",  # plain text reads the same in every client and in the mail sink
    }


def _head_receiver(department: Department, options: AlertmanagerOptions) -> dict[str, Any]:
    head, locale = department.head, department.locale
    receiver: dict[str, Any] = {
        "name": head_receiver(department.id),
        "email_configs": [_email(head.email, locale)],
    }
    if head.slack_channel:
        receiver["slack_configs"] = [
            {
                "channel": head.slack_channel,
                "send_resolved": True,
                "title": _templates("chat.title", locale),
                "text": _templates("chat.text", locale),
            }
        ]
    if head.wechat:
        app = head.wechat
        wechat: dict[str, Any] = {
            "send_resolved": True,
            "corp_id": app.corp_id,
            "agent_id": app.agent_id,
            "api_secret_file": app.api_secret_file,
            "message_type": "markdown",
            "message": _templates("wechat.message", locale),
        }
        wechat |= {
            key: value for key, value in (("to_user", app.to_user), ("to_party", app.to_party)) if value
        }
        receiver["wechat_configs"] = [wechat]
    # A group robot wants its own JSON, not Alertmanager's webhook: the relay turns one into the other.
    urls = [wecom_relay_url(options, department.id)] if head.wecom_robot_variable else []
    urls += [head.wecom_own_relay] if head.wecom_own_relay else []
    urls += [head.webhook_url] if head.webhook_url else []
    if urls:
        receiver["webhook_configs"] = [{"url": url, "send_resolved": True} for url in urls]
    return receiver


def wecom_relay_url(options: AlertmanagerOptions, department_id: str) -> str:
    """Where Alertmanager posts a department's alerts for its WeCom group robot."""
    return f"{options.wecom_relay_url.rstrip('/')}/wecom/{department_id}"


def receivers(directory: Directory, options: AlertmanagerOptions) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = [
        {"name": SRE_RECEIVER, "email_configs": [_email(options.sre_email, LOCALE_SRE)]}
    ]
    for department in directory.departments:
        result.append(_head_receiver(department, options))
        result.append(
            {
                "name": cc_receiver(department.id),
                "email_configs": [_email(department.head.email, department.locale)],
            }
        )
    return result


def routes(directory: Directory, options: AlertmanagerOptions) -> list[dict[str, Any]]:
    """Pipeline alerts stop at SRE; a business alert continues through its provider and customer routes."""
    timings = options.timings
    severity_timings = [
        {"matchers": ['severity="page"'], "repeat_interval": timings.page_repeat_interval},
        {"matchers": ['severity="info"'], "repeat_interval": timings.info_repeat_interval},
    ]
    result: list[dict[str, Any]] = [
        {"matchers": ['category="pipeline"'], "receiver": SRE_RECEIVER, "routes": severity_timings}
    ]
    for department in directory.departments:
        result.append(
            {
                "matchers": [f'provider_department="{department.id}"'],
                "receiver": head_receiver(department.id),
                "continue": True,
                "routes": severity_timings,
            }
        )
    # Copies only when the provider is a known department: anything else is the SRE's (root) problem.
    known = "|".join(directory.department_ids())
    for department in directory.departments:
        result.append(
            {
                # "*" (the provider's overall row) matches no department id, so it is never copied.
                "matchers": [
                    f'customer_department="{department.id}"',
                    f'provider_department=~"{known}"',
                    f'provider_department!="{department.id}"',
                ],
                "receiver": cc_receiver(department.id),
                "continue": True,
                "repeat_interval": timings.cc_repeat_interval,
            }
        )
    return result


def inhibit_rules() -> list[dict[str, Any]]:
    outages = "|".join(PIPELINE_OUTAGES)
    return [
        {  # no events consumed or none written: business numbers are frozen or stale
            "source_matchers": [f'alertname=~"{outages}"'],
            "target_matchers": ['category="business"'],
        },
        {  # a pair's alert says more than the same alert on the provider's overall row
            "source_matchers": ['category="business"', f'customer_department!="{OVERALL_CUSTOMER}"'],
            "target_matchers": [f'customer_department="{OVERALL_CUSTOMER}"'],
            "equal": ["alertname", "provider_department"],
        },
        {  # the fast burn pages; the slow burn of the same budget would only repeat it
            "source_matchers": ['alertname="DeptpulseSlaBudgetBurnFast"'],
            "target_matchers": ['alertname="DeptpulseSlaBudgetBurnSlow"'],
            "equal": ["provider_department"],
        },
        {  # the significant satisfied-share alert covers the average-score heads-up
            "source_matchers": ['alertname="DeptpulseSatisfactionBelowTarget"'],
            "target_matchers": ['alertname="DeptpulseCsatBelowTarget"'],
            "equal": ["provider_department", "customer_department"],
        },
        {
            "source_matchers": ['alertname="DeptpulseSinkFailing"'],
            "target_matchers": ['alertname="DeptpulseSinkErrors"'],
        },
    ]


def alertmanager_config(directory: Directory, options: AlertmanagerOptions | None = None) -> dict[str, Any]:
    """The Alertmanager configuration document for ``directory``."""
    options = options or AlertmanagerOptions()
    timings = options.timings
    global_config: dict[str, Any] = {
        "resolve_timeout": "5m",
        "smtp_smarthost": options.smtp_smarthost,
        "smtp_from": options.smtp_from,
        "smtp_hello": options.smtp_hello,
        "smtp_require_tls": options.smtp_require_tls,
    }
    if options.smtp_auth_username:
        global_config["smtp_auth_username"] = options.smtp_auth_username
    if options.smtp_auth_password_file:
        global_config["smtp_auth_password_file"] = options.smtp_auth_password_file
    if any(department.head.slack_channel for department in directory.departments):
        if options.slack_api_url_file:
            global_config["slack_api_url_file"] = options.slack_api_url_file
        else:
            global_config["slack_api_url"] = options.slack_api_url
    return {
        "global": global_config,
        "templates": [options.templates_glob],
        "route": {
            "receiver": SRE_RECEIVER,  # unrouted means a department the directory does not know
            "group_by": ["alertname", "provider_department", "customer_department"],
            "group_wait": timings.group_wait,
            "group_interval": timings.group_interval,
            "repeat_interval": timings.repeat_interval,
            "routes": routes(directory, options),
        },
        "inhibit_rules": inhibit_rules(),
        "receivers": receivers(directory, options),
    }


def _go_string(value: str) -> str:
    """A Go template string literal (JSON's escapes are Go's), so names never inject template code."""
    return json.dumps(value, ensure_ascii=False)


def directory_template(directory: Directory) -> str:
    """``directory.tmpl``: department names and recipients for the locale templates."""
    departments = "".join(
        f"{{{{ else if eq . {_go_string(d.id)} }}}}{{{{ {_go_string(d.name)} }}}}"
        for d in directory.departments
    )
    recipients = "".join(
        f"{{{{ else if eq . {_go_string(head_receiver(d.id))} {_go_string(cc_receiver(d.id))} }}}}"
        f"{{{{ {_go_string(d.head.name)} }}}}"
        for d in directory.departments
    )
    lines = [
        f"{{{{/* {notice(directory.organisation)} */}}}}",
        "",
        f'{{{{ define "deptpulse.organisation" }}}}{{{{ {_go_string(directory.organisation)} }}}}{{{{ end }}}}',
        "",
        "{{/* A department id -> its display name; unknown ids print as they are. */}}",
        '{{ define "deptpulse.department.name" }}{{ if not . }}'
        + departments
        + "{{ else }}{{ . }}{{ end }}{{ end }}",
        "",
        "{{/* A receiver -> the name of the person it reaches; empty for the SRE receiver. */}}",
        '{{ define "deptpulse.recipient" }}{{ if not . }}' + recipients + "{{ end }}{{ end }}",
        "",
    ]
    return "\n".join(lines)
