"""A corpus of bad messages for the worker, each with the dead-letter reason it must get.

Every kind is something a real integration (or an attacker) can put on the events topic. The
fault tests mix them into good traffic and check that each one lands in the dead-letter topic with
its reason, that nothing else does, and that the good events still count exactly.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

SQLISH = "'; DROP TABLE minute_buckets; --"


@dataclass(frozen=True)
class BadMessage:
    kind: str
    key: bytes
    value: bytes
    reason: str  # the dead-letter reason the worker must give it


def _event(now: datetime, serial: int, **overrides: Any) -> dict[str, Any]:
    """A valid feedback event; each kind below breaks one thing about it."""
    event: dict[str, Any] = {
        "schema_version": 1,
        "event_id": f"bad-{serial}",
        "event_type": "survey.answered",
        "occurred_at": (now - timedelta(minutes=5)).isoformat(),
        "source": "hr-survey",
        "provider_department": "it",
        "customer_department": "finance",
        "score": 7,
    }
    event.update(overrides)
    return {key: value for key, value in event.items() if value is not _DROP}


_DROP = object()


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


# kind -> (reason, builder(now, serial, rng) -> bytes)
KINDS: dict[str, tuple[str, Callable[[datetime, int, random.Random], bytes]]] = {
    "random_bytes": ("decode", lambda now, n, rng: bytes(rng.getrandbits(8) for _ in range(64)) + b"\xff"),
    "empty": ("decode", lambda now, n, rng: b""),
    "one_megabyte": ("decode", lambda now, n, rng: b"{" + b" " * 1_000_000),
    "deeply_nested_json": ("decode", lambda now, n, rng: _nested(5_000)),
    "json_array": ("schema", lambda now, n, rng: b"[1, 2, 3]"),
    "nan_score": (
        "schema",
        lambda now, n, rng: _json(_event(now, n)).replace(b'"score": 7', b'"score": NaN'),
    ),
    "huge_number": ("schema", lambda now, n, rng: _json(_event(now, n, score=10**40))),
    "wrong_type_score": ("schema", lambda now, n, rng: _json(_event(now, n, score="7"))),
    "wrong_type_event_id": ("schema", lambda now, n, rng: _json(_event(now, n, event_id=12345))),
    "unknown_event_type": (
        "schema",
        lambda now, n, rng: _json(_event(now, n, event_type="request.teleported")),
    ),
    "missing_field": ("schema", lambda now, n, rng: _json(_event(now, n, provider_department=_DROP))),
    "naive_timestamp": (
        "schema",
        lambda now, n, rng: _json(_event(now, n, occurred_at="2026-11-01T10:00:00")),
    ),
    "far_future": (
        "future",
        lambda now, n, rng: _json(_event(now, n, occurred_at=(now + timedelta(days=3650)).isoformat())),
    ),
    "far_past": ("late", lambda now, n, rng: _json(_event(now, n, occurred_at="1999-01-01T00:00:00+00:00"))),
    "invalid_utf8": (
        "decode",
        lambda now, n, rng: _json(_event(now, n)).replace(b"hr-survey", b"hr-\xc3\x28survey"),
    ),
    "unknown_department": (
        "unknown_department",
        lambda now, n, rng: _json(_event(now, n, provider_department="marketing")),
    ),
    "sql_in_department": ("schema", lambda now, n, rng: _json(_event(now, n, customer_department=SQLISH))),
    "sql_in_event_type": ("schema", lambda now, n, rng: _json(_event(now, n, event_type=SQLISH))),
    "schema_version_2": ("schema", lambda now, n, rng: _json(_event(now, n, schema_version=2))),
    "score_out_of_range": ("schema", lambda now, n, rng: _json(_event(now, n, score=11))),
    "extra_field": ("schema", lambda now, n, rng: _json(_event(now, n, admin=True))),
    "not_an_object": ("schema", lambda now, n, rng: b'"just a string"'),
    "event_id_too_long": ("schema", lambda now, n, rng: _json(_event(now, n, event_id="x" * 129))),
}


def bad_messages(count: int, now: datetime, seed: int = 0) -> Iterator[BadMessage]:
    """`count` bad messages cycling through every kind, reproducible with `seed`."""
    rng = random.Random(seed)
    kinds = sorted(KINDS)
    for serial in range(count):
        kind = kinds[serial % len(kinds)]
        reason, build = KINDS[kind]
        yield BadMessage(kind, f"bad-{serial}".encode(), build(now, serial, rng), reason)


def sql_in_every_string_field(now: datetime, serial: int) -> list[bytes]:
    """Valid-shaped events with SQL-looking text in every free string field: these must be
    ACCEPTED (free strings are data, stored through parameterised inserts), not dead-lettered."""
    # Each event has an event_id of its own: two with one id would be a duplicate, counted once.
    fields = {"event_id": f"{SQLISH}-{serial}", "source": SQLISH, "comment": SQLISH}
    return [
        _json(_event(now, serial, **{"event_id": f"sql-{name}-{serial}", name: value}))
        for name, value in fields.items()
    ] + [_json(_event(now, serial, attributes={SQLISH: SQLISH}, event_id=f"attr-{serial}"))]
