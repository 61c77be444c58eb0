"""The active alerts about a department, from Alertmanager's API (``GET /api/v2/alerts``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import urlopen

TIMEOUT_SECONDS = 10.0


class AlertsUnavailable(RuntimeError):
    """Alertmanager did not answer, or answered with something that is not its alert list."""


@dataclass(frozen=True)
class ActiveAlert:
    name: str
    severity: str
    customer_department: str  # "*": the provider's overall row
    summary: str  # in the head's language when the rule has one
    starts_at: str


def alerts_about(payload: Any, department: str, locale: str) -> list[ActiveAlert]:
    """The active (neither silenced nor inhibited) alerts with ``provider_department=department``,
    most severe first. Filtered here too: the query's filter is an optimisation, not a guarantee."""
    if not isinstance(payload, list):
        raise AlertsUnavailable("Alertmanager's answer is not a list of alerts")
    found = []
    for alert in payload:
        labels = alert.get("labels", {}) if isinstance(alert, dict) else {}
        state = (alert.get("status") or {}).get("state", "active") if isinstance(alert, dict) else ""
        if labels.get("provider_department") != department or state != "active":
            continue
        annotations = alert.get("annotations") or {}
        summary = (annotations.get("summary_zh") if locale == "zh" else None) or annotations.get(
            "summary", ""
        )
        found.append(
            ActiveAlert(
                name=str(labels.get("alertname", "")),
                severity=str(labels.get("severity", "")),
                customer_department=str(labels.get("customer_department", "*")),
                summary=str(summary),
                starts_at=str(alert.get("startsAt", "")),
            )
        )
    order = {"page": 0, "ticket": 1, "info": 2}
    return sorted(found, key=lambda a: (order.get(a.severity, 3), a.name, a.customer_department))


def fetch_alerts(
    base_url: str, department: str, locale: str, timeout: float = TIMEOUT_SECONDS
) -> list[ActiveAlert]:
    """The department's active alerts; :class:`AlertsUnavailable` with the reason when there are none to be had."""
    query = urlencode(
        [
            ("active", "true"),
            ("silenced", "false"),
            ("inhibited", "false"),
            ("filter", f'provider_department="{department}"'),
        ]
    )
    url = f"{base_url.rstrip('/')}/api/v2/alerts?{query}"
    try:
        with urlopen(url, timeout=timeout) as response:
            payload = json.load(response)
    except HTTPError as exc:
        raise AlertsUnavailable(f"Alertmanager at {base_url} answered HTTP {exc.code}") from None
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AlertsUnavailable(f"Alertmanager at {base_url} did not answer: {reason}") from None
    except ValueError:
        raise AlertsUnavailable(f"Alertmanager at {base_url} answered something that is not JSON") from None
    return alerts_about(payload, department, locale)
