"""Admission for the gateway: who is calling (bearer token or HMAC signature), replay protection
and per-integration rate limits. No FastAPI here: headers and body in, an integration or a
:class:`Refused` out. Time is injected (``now`` for signed timestamps, ``monotonic`` for buckets).

Every comparison of a presented credential is constant-time (:func:`hmac.compare_digest`) and
runs against every configured secret of that kind, so timing tells nothing about which one, if
any, came close. Secrets are never put in a message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from producers.integrations import Integration, Integrations
from schemas.secrets import matching_owner

ZENDESK_SIGNATURE = "X-Zendesk-Webhook-Signature"
ZENDESK_TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"
HUB_SIGNATURE = "X-Hub-Signature"
# Remembered signatures per process; beyond this the oldest are forgotten first.
_MAX_REMEMBERED_SIGNATURES = 200_000


class Refused(Exception):
    """An admission failure: ``status`` (401, 403, 429) and a reason safe to send to the caller."""

    def __init__(self, status: int, reason: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = dict(headers or {})


def _unauthorized(reason: str) -> Refused:
    return Refused(401, reason, {"WWW-Authenticate": 'Bearer realm="deptpulse"'})


@dataclass(frozen=True)
class Caller:
    """An authenticated request: its integration and, for signed ones, the replay-guard key."""

    integration: Integration
    scheme: str
    replay_key: bytes | None = None


class ReplayGuard:
    """Signatures of accepted signed requests, kept long enough to outlive the replay window.

    A signature is claimed when verified and released if the request then fails, so a vendor's
    retry after a 503 is let in; a second copy of an accepted request is refused.
    Per process: with several gateway processes, downstream dedup by event_id still holds.
    """

    def __init__(self, window_seconds: float, monotonic: Callable[[], float]) -> None:
        # Signed timestamps are accepted up to one window either side of now, so a signature may
        # verify for up to two windows after it is first seen.
        self._keep = 2 * window_seconds
        self._monotonic = monotonic
        self._expiry: OrderedDict[bytes, float] = OrderedDict()

    def claim(self, key: bytes) -> bool:
        """True and remembered if unseen; False if this signature was already used."""
        now = self._monotonic()
        while self._expiry:
            oldest, expires = next(iter(self._expiry.items()))
            if expires > now and len(self._expiry) < _MAX_REMEMBERED_SIGNATURES:
                break
            del self._expiry[oldest]
        if key in self._expiry:
            return False
        self._expiry[key] = now + self._keep
        return True

    def release(self, key: bytes) -> None:
        self._expiry.pop(key, None)


class TokenBucket:
    """``rate`` tokens a second up to ``capacity``; one request takes one token."""

    def __init__(self, rate: float, capacity: float, monotonic: Callable[[], float]) -> None:
        self._rate, self._capacity, self._monotonic = rate, capacity, monotonic
        self._tokens = capacity
        self._updated = monotonic()

    def take(self) -> float:
        """0 when a token was taken; else the seconds until one will be there."""
        now = self._monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate


class Admission:
    """Authentication, replay protection and rate limits for integrations with resolved secrets."""

    def __init__(
        self,
        integrations: Integrations,
        *,
        now: Callable[[], datetime],
        monotonic: Callable[[], float],
    ) -> None:
        self._now = now
        self._window = integrations.replay_window
        self._secrets: dict[str, list[tuple[bytes, Integration]]] = {}
        for integration in integrations.integrations:
            for credential in integration.credentials:
                self._secrets.setdefault(credential.type, []).append((credential.secret_bytes(), integration))
        self.replays = ReplayGuard(self._window, monotonic)
        self._buckets = {
            integration.name: TokenBucket(
                integration.rate_limit.requests_per_second, integration.rate_limit.capacity, monotonic
            )
            for integration in integrations.integrations
            if integration.rate_limit is not None
        }

    def authenticate(self, headers: Mapping[str, str], body: bytes) -> Caller:
        """The calling integration; :class:`Refused` (401) when credentials are missing or wrong.

        ``headers`` must be case-insensitive (Starlette's are) or lower-cased.
        """
        authorization = headers.get("authorization")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise _unauthorized("the Authorization header must be 'Bearer <token>'")
            integration = self._match("bearer", lambda secret: secret, token.strip().encode())
            if integration is None:
                raise _unauthorized("unknown bearer token")
            return Caller(integration, "bearer")
        zendesk = headers.get(ZENDESK_SIGNATURE.lower())
        if zendesk is not None:
            return self._zendesk(zendesk, headers.get(ZENDESK_TIMESTAMP.lower()), body)
        hub = headers.get(HUB_SIGNATURE.lower())
        if hub is not None:
            return self._hub(hub, body)
        raise _unauthorized(
            "no credentials: send 'Authorization: Bearer <token>' or the vendor's signature header"
        )

    def admit(self, integration: Integration) -> None:
        """Take a token from the integration's bucket; :class:`Refused` (429) with Retry-After."""
        bucket = self._buckets.get(integration.name)
        if bucket is None:
            return
        wait = bucket.take()
        if wait > 0:
            raise Refused(
                429,
                f"integration {integration.name!r} is over its rate limit; retry later",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )

    # --- schemes ----------------------------------------------------------------------------------

    def _match(self, kind: str, expected: Callable[[bytes], bytes], presented: bytes) -> Integration | None:
        """The integration whose secret gives ``presented``; compares against all, no early exit."""
        return matching_owner(
            ((expected(secret), integration) for secret, integration in self._secrets.get(kind, ())),
            presented,
        )

    def _zendesk(self, signature: str, timestamp: str | None, body: bytes) -> Caller:
        if not timestamp:
            raise _unauthorized(f"{ZENDESK_TIMESTAMP} is missing")
        self._check_fresh(_parse_timestamp(timestamp), "the signature timestamp")
        presented = signature.strip().encode()
        integration = self._match(
            "zendesk-signature", lambda secret: zendesk_signature(secret, timestamp, body).encode(), presented
        )
        if integration is None:
            raise _unauthorized("wrong Zendesk webhook signature")
        return self._claim(Caller(integration, "zendesk-signature", b"zendesk:" + presented))

    def _hub(self, signature: str, body: bytes) -> Caller:
        algorithm, _, digest = signature.strip().partition("=")
        if algorithm != "sha256" or not digest:
            raise _unauthorized(f"{HUB_SIGNATURE} must be 'sha256=<hex HMAC-SHA256 of the body>'")
        integration = self._match(
            "hub-signature",
            lambda secret: hub_signature(secret, body).removeprefix("sha256=").encode(),
            digest.lower().encode(),
        )
        if integration is None:
            raise _unauthorized(f"wrong {HUB_SIGNATURE} signature")
        # The header has no timestamp; Jira's signed body does (`timestamp`, epoch milliseconds).
        sent_at = _body_timestamp(body)
        if sent_at is not None:
            self._check_fresh(sent_at, "the payload's timestamp")
        return self._claim(Caller(integration, "hub-signature", b"hub:" + digest.lower().encode()))

    def _check_fresh(self, signed_at: datetime, what: str) -> None:
        age = abs((self._now() - signed_at).total_seconds())
        if age > self._window:
            raise _unauthorized(f"{what} is outside the {self._window} s replay window")

    def _claim(self, caller: Caller) -> Caller:
        assert caller.replay_key is not None
        if not self.replays.claim(caller.replay_key):
            raise _unauthorized("this signed request was already accepted (replay)")
        return caller


def zendesk_signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """``X-Zendesk-Webhook-Signature``: base64(HMAC-SHA256(secret, timestamp + body))."""
    return base64.b64encode(hmac.digest(secret, timestamp.encode() + body, hashlib.sha256)).decode()


def hub_signature(secret: bytes, body: bytes) -> str:
    """``X-Hub-Signature``: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.digest(secret, body, hashlib.sha256).hex()


def _parse_timestamp(value: str) -> datetime:
    """RFC 3339 (as Zendesk sends it, ``2024-04-17T17:18:10Z``) or epoch seconds."""
    value = value.strip()
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value), UTC)
        parsed = datetime.fromisoformat(value)
    except (ValueError, OverflowError, OSError):
        raise _unauthorized("the signature timestamp is not RFC 3339 or epoch seconds") from None
    if parsed.tzinfo is None:
        raise _unauthorized("the signature timestamp has no UTC offset")
    return parsed


def _body_timestamp(body: bytes) -> datetime | None:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    sent_at = payload.get("timestamp") if isinstance(payload, dict) else None
    if isinstance(sent_at, int) and not isinstance(sent_at, bool):
        try:
            return datetime.fromtimestamp(sent_at / 1000, UTC)
        except (ValueError, OverflowError, OSError):
            raise _unauthorized("the payload's timestamp is not epoch milliseconds") from None
    return None
