"""The at-risk watch reads the time left from a request's snapshot exactly as the lifecycle would
measure a resolution at that instant (business calendars across weekends and DST, pauses, reopens,
events in any order)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import event as note
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.directory import Directory
from schemas.events import RequestOpened, SurveyAnswered
from stream_processors.core.at_risk import at_risk
from stream_processors.core.lifecycle import LifecycleRules, RequestTracker
from tests.property.test_core_processor_props import BASES, request_events
from tests.unit.test_core_at_risk import open_request
from tests.unit.test_core_builders import example_directory, make_request_event

raw = example_directory().model_dump(exclude_unset=True)
raw["alert_policy"]["sla_at_risk_share"] = 0.999999  # every request not yet breached is listed
for department in raw["departments"]:
    department["alert_policy"] = None
DIRECTORY = Directory.model_validate(raw)
RULES = LifecycleRules(DIRECTORY)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_time_left_is_the_target_less_what_a_resolution_now_would_measure(data: st.DataObject) -> None:
    opened, *rest = data.draw(request_events("r", data.draw(st.sampled_from(BASES))))
    assert isinstance(opened, RequestOpened)
    tracker = RequestTracker(opened, RULES)
    for event in data.draw(st.permutations(rest)):
        assert not isinstance(event, SurveyAnswered)
        tracker.apply(event)
    fact = tracker.fact()
    now = fact.last_event_at + timedelta(seconds=data.draw(st.integers(0, 12 * 3600)))
    found = {risk.sla: risk for risk in at_risk([open_request(fact)], DIRECTORY, now)}
    target = DIRECTORY.sla_target(
        opened.provider_department, opened.service_category, opened.priority, opened.customer_department
    )
    note(f"clock {fact.sla_clock}, {target.clock if target else 'no'} target")
    if fact.sla_clock != "running" or target is None:
        assert found == {}
        return
    resolved = make_request_event(
        "request.resolved",
        now,
        "r",
        provider=opened.provider_department,
        customer=opened.customer_department,
        service=opened.service_category,
        priority=opened.priority,
    )
    tracker.apply(resolved)
    measured = tracker.fact()
    # The lifecycle rounds to whole seconds; a calendar clock's SLA time is wall time less pauses.
    if target.clock == "business":
        spent = measured.resolution_business_s
    else:
        spent = (now - fact.opened_at).total_seconds() - fact.sla_paused_wall_s
    assert spent is not None
    risk = found.get("resolution")
    note("compared" if 1 <= spent <= target.resolution - 1 else "past or at the target")
    if 1 <= spent <= target.resolution - 1:
        assert risk is not None and abs(target.resolution - risk.left_s - spent) <= 0.5 + 1e-6
    elif spent > target.resolution + 1:
        assert risk is None
