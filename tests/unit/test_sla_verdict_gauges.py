"""The SLA-verdict gauges behind the burn rates: a private registry, read with get_sample_value."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from schemas import metric_names
from stream_processors.metrics import Metrics, SlaVerdictGauges

pytestmark = pytest.mark.unit


def test_the_verdict_gauges_zero_quiet_windows_and_drop_gone_providers() -> None:
    registry = CollectorRegistry()
    gauges = SlaVerdictGauges(Metrics.create(registry))
    gauges.update({"6h": {"it": (3, 1)}, "1h": {"it": (1, 0)}})

    def value(provider: str, verdict: str, window: str) -> float | None:
        labels = {"provider_department": provider, "verdict": verdict, "window": window}
        return registry.get_sample_value(metric_names.SLA_VERDICTS, labels)

    assert (value("it", "met", "6h"), value("it", "breached", "6h")) == (3, 1)
    assert (value("it", "met", "5m"), value("it", "breached", "5m")) == (0, 0)
    gauges.update({"6h": {"hr": (2, 0)}})
    assert value("it", "met", "6h") is None and value("hr", "met", "6h") == 2
