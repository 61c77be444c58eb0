"""Fixtures of the fault tests: a Kafka broker of their own and fault-injectable workers.

The broker is separate from tests/integration's session broker (fixtures there are not visible
here), started once per session; the broker-restart test starts yet another one, since it stops it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deptpulse.settings import Settings
from deptpulse.stack import LocalStack, create_topics
from tests.integration.conftest import make_stack_settings
from tests.reliability.harness import make_run

__all__ = ["make_run", "make_stack_settings"]


@pytest.fixture(scope="session")
def reliability_kafka(make_stack_settings) -> Iterator[Settings]:  # type: ignore[no-untyped-def]
    """A real Kafka broker (KRaft) for the fault tests; yields its Settings."""
    settings: Settings = make_stack_settings()
    stack = LocalStack(settings)
    try:
        stack.up(["kafka"])
        create_topics(settings)
        yield settings
    finally:
        stack.down(["kafka"])

