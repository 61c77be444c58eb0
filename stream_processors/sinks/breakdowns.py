"""The ClickHouse reads behind the per-service, SLA-verdict and improvement-action gauges.

Synchronous functions of a client; the worker runs them on the sink's ClickHouse thread
(``AsyncClickHouseSink.call``), one attempt each, like ``window_aggregates``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from clickhouse_connect.driver.client import Client

from stream_processors.core import AGGREGATE_COLUMNS, MinuteAggregate
from stream_processors.core.aggregates import merge_into
from stream_processors.metrics import ServiceRow
from stream_processors.sinks.clickhouse import aggregate_from_row

_SUMS: Final = ", ".join(
    f"sumMap({name})" if name.endswith("_hist") else f"sum({name})" for name in AGGREGATE_COLUMNS
)


class _Slices:
    """Nested windows read in one scan of the longest: each bucket row is tagged (``slice``) with
    the shortest window it falls in, and lies in that window and every longer one."""

    def __init__(self, starts: Mapping[str, datetime]) -> None:
        self.shortest_first = sorted(starts, key=lambda name: starts[name], reverse=True)
        last = len(self.shortest_first) - 1
        conditions = "".join(f"bucket_start >= {{since_{i}:DateTime('UTC')}}, {i}, " for i in range(last))
        self.column = f"multiIf({conditions}{last}) AS slice"
        self.where = f"row_kind = 'bucket' AND bucket_start >= {{since_{last}:DateTime('UTC')}}"
        self.parameters = {f"since_{i}": starts[name] for i, name in enumerate(self.shortest_first)}

    def windows(self, slice_: int) -> list[str]:
        return self.shortest_first[slice_:]


def service_aggregates(client: Client, starts: Mapping[str, datetime]) -> dict[str, list[ServiceRow]]:
    """Per window name: (provider, customer, service, merged aggregate) over the bucket rows from the
    window's start on. One scan of the longest window: the rollup projections leave the service out,
    so the windows share the scan."""
    if not starts:
        return {}
    slices = _Slices(starts)
    rows = client.query(
        f"SELECT provider_department, customer_department, service_category, {slices.column}, {_SUMS} "
        f"FROM minute_buckets WHERE {slices.where} "
        "GROUP BY provider_department, customer_department, service_category, slice",
        parameters=slices.parameters,
    ).result_rows
    merged: dict[str, dict[tuple[str, str, str], MinuteAggregate]] = {
        name: {} for name in slices.shortest_first
    }
    for row in rows:
        key, aggregate = (row[0], row[1], row[2]), aggregate_from_row(row[4:])
        for name in slices.windows(int(row[3])):
            target = merged[name].get(key)
            if target is None:
                merged[name][key] = target = MinuteAggregate()
            merge_into(target, aggregate)
    return {name: [(*key, aggregate) for key, aggregate in by_key.items()] for name, by_key in merged.items()}


def sla_verdicts(client: Client, starts: Mapping[str, datetime]) -> dict[str, dict[str, tuple[int, int]]]:
    """Per window name: provider -> (met, breached) SLA verdicts whose bucket (the minute of the
    deciding resolution, event time) lies from the window's start on. The buckets hold signed
    deltas, so a verdict the core retracted and re-added as the other verdict counts once."""
    if not starts:
        return {}
    slices = _Slices(starts)
    rows = client.query(
        f"SELECT provider_department, {slices.column}, sum(sla_met), sum(sla_breached) "
        f"FROM minute_buckets WHERE {slices.where} AND (sla_met != 0 OR sla_breached != 0) "
        "GROUP BY provider_department, slice",
        parameters=slices.parameters,
    ).result_rows
    counts: dict[str, dict[str, tuple[int, int]]] = {name: {} for name in slices.shortest_first}
    for provider, slice_, met, breached in rows:
        for name in slices.windows(int(slice_)):
            known = counts[name].get(provider, (0, 0))
            counts[name][provider] = (known[0] + int(met), known[1] + int(breached))
    return counts
