"""Open requests about to breach an SLA target: on the SLA's own clock, at most a share of the target
left (the pair's alert policy's ``sla_at_risk_share``, 20 % by default) and not yet past it. The
target is the pair's (``Directory.sla_rule``, through :class:`LifecycleRules`), as the lifecycle's.

Read at any instant from a request's snapshot (:class:`OpenRequest`, the request facts' SLA clock):
elapsed time is business seconds on the provider's calendar for a business-clock target, wall
seconds for a calendar-clock one, less the pauses that have ended. A request whose clock is paused
(waiting on its customer) or stopped (resolved, closed) is not at risk: it cannot breach while it
stays so. The first-response target counts until the first response, the resolution target until
the resolution.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Final, Literal, NamedTuple

from schemas.directory import Directory

from stream_processors.core.lifecycle import LifecycleRules, SlaClock, sla_elapsed

SlaKind = Literal["first_response", "resolution"]
SLA_KINDS: Final[tuple[SlaKind, ...]] = ("first_response", "resolution")


class OpenRequest(NamedTuple):
    """A request as its newest snapshot holds it (the request facts)."""

    request_id: str
    provider_department: str
    customer_department: str
    service_category: str  # '' when none
    priority: str | None
    opened_at: datetime
    answered: bool  # has had its first response
    clock: SlaClock
    paused_wall_s: float  # pauses that have ended
    paused_business_s: float


class AtRiskRequest(NamedTuple):
    """One target of one request that is about to be breached."""

    request_id: str
    provider_department: str
    customer_department: str
    service_category: str  # '' when none
    sla: SlaKind
    left_s: float  # on the SLA's clock: business seconds, or wall seconds for a calendar clock
    target_s: float
    business_clock: bool


def at_risk(requests: Iterable[OpenRequest], directory: Directory, now: datetime) -> list[AtRiskRequest]:
    """Every (request, target) with at most its pair's ``sla_at_risk_share`` of the target left at
    ``now``, and some left; the least time left first."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    at = now.timestamp()
    rules = LifecycleRules(directory)
    shares: dict[tuple[str, str], float] = {}
    found: list[AtRiskRequest] = []
    for request in requests:
        provider = request.provider_department
        if request.clock != "running" or provider not in rules.calendars:
            continue
        customer = request.customer_department
        targets, _ = rules.sla(provider, request.service_category or None, request.priority, customer)
        if targets is None:
            continue
        share = shares.get((provider, customer))
        if share is None:
            share = shares[(provider, customer)] = directory.policy_for_pair(
                provider, customer
            ).sla_at_risk_share
        elapsed = sla_elapsed(
            targets,
            rules.calendars[provider],
            request.opened_at.timestamp(),
            at,
            request.paused_wall_s,
            request.paused_business_s,
        )
        for sla, target in (
            ("first_response", targets.first_response_s),
            ("resolution", targets.resolution_s),
        ):
            if sla == "first_response" and request.answered:
                continue
            left = target - elapsed
            if 0 <= left <= share * target:
                found.append(
                    AtRiskRequest(
                        request.request_id,
                        provider,
                        customer,
                        request.service_category,
                        sla,  # type: ignore[arg-type]
                        left,
                        target,
                        targets.business_clock,
                    )
                )
    found.sort(key=lambda risk: (risk.left_s, risk.request_id, risk.sla))
    return found


def at_risk_counts(risks: Iterable[AtRiskRequest]) -> Counter[tuple[str, str, SlaKind]]:
    """(provider, customer, sla) -> how many requests are at risk of breaching that target."""
    return Counter((risk.provider_department, risk.customer_department, risk.sla) for risk in risks)
