"""Admission: bearer tokens, Zendesk and X-Hub-Signature HMACs, the replay window and guard, rate limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from producers.gateway_auth import Admission, Refused, TokenBucket, hub_signature, zendesk_signature
from producers.integrations import Integrations, parse_integrations

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ZENDESK_SECRET = b"zendesk-secret-0123456789"
JIRA_SECRET = b"jira-secret-0123456789ab"
TOKEN = "servicenow-token-0123456789"


class Clock:
    def __init__(self) -> None:
        self.wall, self.mono = NOW, 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


def integrations() -> Integrations:
    return parse_integrations(
        {
            "replay_window": "5m",
            "integrations": [
                {
                    "name": "zendesk",
                    "sources": ["zendesk"],
                    "credentials": [{"type": "zendesk-signature", "secret": ZENDESK_SECRET.decode()}],
                },
                {
                    "name": "jira",
                    "sources": ["jira-sm"],
                    "credentials": [{"type": "hub-signature", "secret": JIRA_SECRET.decode()}],
                },
                {
                    "name": "servicenow",
                    "sources": ["servicenow"],
                    "credentials": [{"type": "bearer", "token": TOKEN}],
                    "rate_limit": {"requests_per_second": 2, "burst": 3},
                },
                {
                    "name": "other",
                    "sources": ["hr-survey"],
                    "credentials": [{"type": "bearer", "token": "other-token-0123456789"}],
                },
            ],
        }
    ).with_secrets({})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def admission(clock: Clock) -> Admission:
    return Admission(integrations(), now=lambda: clock.wall, monotonic=lambda: clock.mono)


def refused(admission: Admission, headers: dict[str, str], body: bytes = b"{}") -> Refused:
    with pytest.raises(Refused) as caught:
        admission.authenticate(headers, body)
    return caught.value


# --- signatures against vectors computed with openssl, not with our own code -----------------------


def test_signature_functions_match_openssl_vectors() -> None:
    # printf '%s' '2024-04-17T17:18:10Z{"a":1}' | openssl dgst -sha256 -hmac zendesk-secret-0123456789 -binary | base64
    assert zendesk_signature(ZENDESK_SECRET, "2024-04-17T17:18:10Z", b'{"a":1}') == (
        "KvUM2dWYb8qesGWi4byR9oS6LWgBLZqOwxN0xyyqA0g="
    )
    # printf '%s' '{"timestamp":1}' | openssl dgst -sha256 -hmac jira-secret-0123456789ab -hex
    assert hub_signature(JIRA_SECRET, b'{"timestamp":1}') == (
        "sha256=7f9088aa8107a7f010550579802358ff782bae091cf5128ebf39749d2add816d"
    )


# --- bearer ----------------------------------------------------------------------------------------


def test_the_right_bearer_token_names_its_integration(admission: Admission) -> None:
    caller = admission.authenticate({"authorization": f"Bearer {TOKEN}"}, b"")
    assert caller.integration.name == "servicenow"
    assert caller.replay_key is None  # a token is no one-time credential


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "no credentials"),
        ({"authorization": "Bearer wrong-token-0123456789"}, "unknown bearer token"),
        ({"authorization": f"Basic {TOKEN}"}, "must be 'Bearer <token>'"),
        ({"authorization": "Bearer   "}, "must be 'Bearer <token>'"),
        ({"authorization": f"Bearer {TOKEN}x"}, "unknown bearer token"),
    ],
)
def test_missing_or_wrong_bearer_is_401(admission: Admission, headers: dict[str, str], reason: str) -> None:
    refusal = refused(admission, headers)
    assert refusal.status == 401
    assert reason in refusal.reason
    assert refusal.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in refusal.reason


# --- Zendesk -----------------------------------------------------------------------------------------


def zendesk_headers(timestamp: str, body: bytes, secret: bytes = ZENDESK_SECRET) -> dict[str, str]:
    return {
        "x-zendesk-webhook-signature": zendesk_signature(secret, timestamp, body),
        "x-zendesk-webhook-signature-timestamp": timestamp,
    }


@pytest.mark.parametrize(
    "timestamp", ["2026-03-02T10:00:00Z", "2026-03-02T09:56:00+00:00", str(int(NOW.timestamp()) + 240)]
)
def test_a_right_zendesk_signature_within_the_window_is_accepted(
    admission: Admission, timestamp: str
) -> None:
    body = b'{"type":"zen:event-type:ticket.created"}'
    caller = admission.authenticate(zendesk_headers(timestamp, body), body)
    assert caller.integration.name == "zendesk"
    assert caller.scheme == "zendesk-signature"


def test_a_wrong_zendesk_signature_is_401(admission: Admission) -> None:
    body = b'{"a":1}'
    assert (
        refused(
            admission, zendesk_headers("2026-03-02T10:00:00Z", body, b"another-secret-0123456789"), body
        ).status
        == 401
    )
    # Right secret, but the body was changed after signing.
    assert (
        "wrong Zendesk"
        in refused(admission, zendesk_headers("2026-03-02T10:00:00Z", body), b'{"a":2}').reason
    )
    # Right secret, but the timestamp header was changed after signing.
    headers = zendesk_headers("2026-03-02T10:00:00Z", body) | {
        "x-zendesk-webhook-signature-timestamp": "2026-03-02T10:00:01Z"
    }
    assert refused(admission, headers, body).status == 401


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        ("2026-03-02T09:54:59Z", "outside the 300 s replay window"),  # expired: 5 min 1 s old
        ("2026-03-02T10:05:01Z", "outside the 300 s replay window"),  # from the future
        ("yesterday", "not RFC 3339"),
        ("2026-03-02T10:00:00", "no UTC offset"),
        ("99999999999999999999", "not RFC 3339"),
    ],
)
def test_a_zendesk_timestamp_outside_the_window_or_malformed_is_401(
    admission: Admission, timestamp: str, reason: str
) -> None:
    body = b"{}"
    refusal = refused(admission, zendesk_headers(timestamp, body), body)
    assert refusal.status == 401
    assert reason in refusal.reason


def test_a_zendesk_signature_without_its_timestamp_is_401(admission: Admission) -> None:
    headers = zendesk_headers("2026-03-02T10:00:00Z", b"{}")
    del headers["x-zendesk-webhook-signature-timestamp"]
    assert "X-Zendesk-Webhook-Signature-Timestamp is missing" in refused(admission, headers).reason


def test_a_replayed_signed_request_is_refused_until_released(admission: Admission, clock: Clock) -> None:
    body = b'{"id":"1"}'
    headers = zendesk_headers("2026-03-02T10:00:00Z", body)
    caller = admission.authenticate(headers, body)
    clock.advance(30)
    refusal = refused(admission, headers, body)
    assert refusal.status == 401 and "replay" in refusal.reason
    # Released (the request was not accepted, e.g. Kafka was down): the vendor's retry gets in.
    assert caller.replay_key is not None
    admission.replays.release(caller.replay_key)
    assert admission.authenticate(headers, body).integration.name == "zendesk"


def test_the_replay_guard_forgets_signatures_after_two_windows(admission: Admission, clock: Clock) -> None:
    admission.replays.claim(b"old")
    clock.advance(599)
    assert not admission.replays.claim(b"old")
    clock.advance(2)
    assert admission.replays.claim(b"old")


# --- X-Hub-Signature (Jira) ------------------------------------------------------------------------


def test_a_right_hub_signature_is_accepted(admission: Admission) -> None:
    body = b'{"webhookEvent":"jira:issue_created","timestamp":%d}' % int(NOW.timestamp() * 1000)
    caller = admission.authenticate({"x-hub-signature": hub_signature(JIRA_SECRET, body)}, body)
    assert caller.integration.name == "jira"


def test_a_hub_signature_is_case_insensitive_hex(admission: Admission) -> None:
    body = b'{"webhookEvent":"jira:issue_created"}'
    signature = "sha256=" + hub_signature(JIRA_SECRET, body).removeprefix("sha256=").upper()
    assert admission.authenticate({"x-hub-signature": signature}, body).integration.name == "jira"


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (hub_signature(b"another-secret-0123456789", b"{}"), "wrong X-Hub-Signature"),
        (hub_signature(JIRA_SECRET, b"{}").replace("sha256=", "sha1="), "must be 'sha256="),
        ("sha256=", "must be 'sha256="),
        (hub_signature(JIRA_SECRET, b"{ }"), "wrong X-Hub-Signature"),
    ],
)
def test_a_wrong_hub_signature_is_401(admission: Admission, signature: str, reason: str) -> None:
    refusal = refused(admission, {"x-hub-signature": signature}, b"{}")
    assert refusal.status == 401
    assert reason in refusal.reason


def test_a_signed_jira_body_with_an_old_timestamp_is_401(admission: Admission) -> None:
    old = int((NOW - timedelta(minutes=6)).timestamp() * 1000)
    body = b'{"webhookEvent":"jira:issue_created","timestamp":%d}' % old
    refusal = refused(admission, {"x-hub-signature": hub_signature(JIRA_SECRET, body)}, body)
    assert "payload's timestamp is outside" in refusal.reason


def test_a_replayed_hub_signature_is_401(admission: Admission) -> None:
    body = b'{"webhookEvent":"jira:issue_created"}'
    headers = {"x-hub-signature": hub_signature(JIRA_SECRET, body)}
    admission.authenticate(headers, body)
    assert "replay" in refused(admission, headers, body).reason


# --- rate limits ---------------------------------------------------------------------------------------


def test_the_rate_limit_is_a_token_bucket_with_retry_after(admission: Admission, clock: Clock) -> None:
    servicenow = admission.authenticate({"authorization": f"Bearer {TOKEN}"}, b"").integration
    for _ in range(3):  # the burst
        admission.admit(servicenow)
    with pytest.raises(Refused) as caught:
        admission.admit(servicenow)
    assert caught.value.status == 429
    assert caught.value.headers == {"Retry-After": "1"}
    clock.advance(0.5)  # 2 a second: one token back
    admission.admit(servicenow)
    with pytest.raises(Refused):
        admission.admit(servicenow)


def test_an_integration_without_a_rate_limit_is_not_limited(admission: Admission) -> None:
    other = admission.authenticate({"authorization": "Bearer other-token-0123456789"}, b"").integration
    for _ in range(1000):
        admission.admit(other)


def test_retry_after_rounds_up_to_whole_seconds() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=0.25, capacity=1, monotonic=lambda: now[0])
    assert bucket.take() == 0
    assert bucket.take() == pytest.approx(4.0)
    now[0] = 1.0
    assert bucket.take() == pytest.approx(3.0)
