"""The ClickHouse reads behind the per-service and improvement-action gauges.

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


def service_aggregates(client: Client, starts: Mapping[str, datetime]) -> dict[str, list[ServiceRow]]:
    """Per window name: (provider, customer, service, merged aggregate) over the bucket rows from the
    window's start on. One scan of the longest window: the rollup projections leave the service out,
    so the windows share the scan, each row tagged with the shortest window it falls in."""
    if not starts:
        return {}
    shortest_first = sorted(starts, key=lambda name: starts[name], reverse=True)
    last = len(shortest_first) - 1
    conditions = "".join(f"bucket_start >= {{since_{i}:DateTime('UTC')}}, {i}, " for i in range(last))
    rows = client.query(
        "SELECT provider_department, customer_department, service_category, "
        f"multiIf({conditions}{last}) AS slice, {_SUMS} FROM minute_buckets "
        f"WHERE row_kind = 'bucket' AND bucket_start >= {{since_{last}:DateTime('UTC')}} "
        "GROUP BY provider_department, customer_department, service_category, slice",
        parameters={f"since_{i}": starts[name] for i, name in enumerate(shortest_first)},
    ).result_rows
    merged: dict[str, dict[tuple[str, str, str], MinuteAggregate]] = {name: {} for name in shortest_first}
    for row in rows:
        key, aggregate = (row[0], row[1], row[2]), aggregate_from_row(row[4:])
        for name in shortest_first[int(row[3]) :]:  # a slice lies in its window and every longer one
            target = merged[name].get(key)
            if target is None:
                merged[name][key] = target = MinuteAggregate()
            merge_into(target, aggregate)
    return {name: [(*key, aggregate) for key, aggregate in by_key.items()] for name, by_key in merged.items()}
