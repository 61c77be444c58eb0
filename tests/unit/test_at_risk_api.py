"""The read API's /api/v1/at-risk: the provider's at-risk requests at the API's clock, the same
access rules as the other provider endpoints, and the remote client over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from stream_processors.access.heads import parse_heads
from stream_processors.access.rules import ReadAccess
from stream_processors.at_risk.api import AT_RISK_PATH, RemoteAtRisk, endpoints
from stream_processors.at_risk.reading import AtRiskService
from stream_processors.core.at_risk import OpenRequest
from stream_processors.scorecard.read_api import ReadApi
from stream_processors.scorecard.remote import RemoteScorecard
from stream_processors.scorecard.service import ScorecardService
from tests.read_api_server import serving
from tests.unit.test_core_at_risk import DIRECTORY, answered_at, fact_of, open_request
from tests.unit.test_core_builders import HOUR, MONDAY_9
from tests.unit.test_scorecard_service import FakeReader

pytestmark = pytest.mark.unit

NOW = MONDAY_9 + 7 * HOUR  # 1 h of the 8 h resolution target left for requests opened at MONDAY_9
REQUESTS = [
    open_request(fact_of(answered_at(MONDAY_9, request_id="it-1"))),
    open_request(fact_of(answered_at(MONDAY_9, request_id="it-2", customer="finance"))),
    open_request(fact_of(answered_at(MONDAY_9, request_id="hr-1", provider="hr", service="hr.payroll"))),
]
IT_TOKEN = "it-token-" + "i" * 32


def running(provider: str | None) -> Iterable[OpenRequest]:
    return [request for request in REQUESTS if provider in (None, request.provider_department)]


def api(access: ReadAccess | None = None) -> ReadApi:
    service = AtRiskService(running, DIRECTORY)
    return ReadApi(
        ScorecardService(FakeReader([]), DIRECTORY),
        DIRECTORY,
        lambda: NOW,
        endpoints(service, DIRECTORY),
        access=access,
    )


def test_the_providers_requests_least_time_left_first() -> None:
    status, body = api().handle(AT_RISK_PATH, {"provider": "it"})

    assert status == 200
    assert body["at"] == NOW.isoformat()
    assert [
        (row["request_id"], row["customer_department"], row["sla"], row["left_s"]) for row in body["rows"]
    ] == [
        ("it-1", "hr", "resolution", 3600),
        ("it-2", "finance", "resolution", 3600),
    ]
    assert body["rows"][0] | {"left_s": 0} == {
        "request_id": "it-1",
        "provider_department": "it",
        "customer_department": "hr",
        "service_category": "it.access",
        "sla": "resolution",
        "left_s": 0,
        "target_s": 28800,
        "business_clock": True,
    }


def test_bad_parameters_are_400s() -> None:
    assert api().handle(AT_RISK_PATH, {"provider": "marketing"})[0] == 400
    assert api().handle(AT_RISK_PATH, {"window": "7d"})[0] == 400


def test_a_head_reads_their_own_departments() -> None:
    heads = parse_heads({"heads": {"it": {"token_env": "IT"}}}, DIRECTORY, {"IT": IT_TOKEN})
    guarded = api(ReadAccess(DIRECTORY, heads, anonymous=False))
    bearer = {"Authorization": f"Bearer {IT_TOKEN}"}

    status, body = guarded.handle(AT_RISK_PATH, {}, bearer)
    assert status == 200 and {row["provider_department"] for row in body["rows"]} == {"it"}
    assert guarded.handle(AT_RISK_PATH, {"provider": "hr"}, bearer)[0] == 403
    assert guarded.handle(AT_RISK_PATH, {"provider": "it"})[0] == 401


def test_the_remote_client_reads_the_same_requests() -> None:
    with serving(api()) as port:
        remote = RemoteAtRisk(RemoteScorecard(f"http://127.0.0.1:{port}"))
        assert remote.at_risk(NOW, "it") == AtRiskService(running, DIRECTORY).at_risk(NOW, "it")
