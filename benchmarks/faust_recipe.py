"""The baseline of ``benchmarks.bench_worker``: the straightforward Faust recipe for per-pair minute
aggregates, run as its own process.

    python -m benchmarks.faust_recipe --bootstrap 127.0.0.1:9092 --topic T --events 200000 \\
        --app-id bench-faust-1 --web-port 6067 --datadir /tmp/x --result /tmp/x/result.json [--sink chdb]

A Faust agent iterates ``stream.events()`` of the topic (raw bytes, decoded with orjson), keeps a
tumbling one-minute windowed table ``(events, csat_sum, csat_count)`` per (provider, customer)
pair (windows by the record timestamp, which the benchmark sets to ``occurred_at``; in-memory
store, changelog topic as Faust makes it) and writes the updated window after every event:

- ``--sink chdb``: one ``INSERT`` per event into embedded ClickHouse (chdb through
  clickhouse-connect, in this process), a ReplacingMergeTree keyed by pair and minute;
- ``--sink memory``: the row is appended to a list (when per-event inserts would take too long).

It does less than deptpulse's worker (no validation against the directory, no dedup, no request
lifecycles or business time) and offers no effectively-once guarantee. When it has seen
``--events`` events it writes ``{"events", "first_ns", "last_ns"}`` to ``--result`` (the wall
clock at its first and its Nth event, after that event's write) and keeps running until stopped.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import faust
import orjson

TABLE_DDL = (
    "CREATE TABLE IF NOT EXISTS csat_minute (provider String, customer String, window_start DateTime, "
    "events UInt64, csat_sum UInt64, csat_count UInt64, version UInt64) "
    "ENGINE = ReplacingMergeTree(version) ORDER BY (provider, customer, window_start)"
)
COLUMNS = ("provider", "customer", "window_start", "events", "csat_sum", "csat_count", "version")


def chdb_writer(path: Path) -> Any:
    """A function that inserts one row per call into ``csat_minute`` of a chdb at ``path``."""
    import clickhouse_connect

    client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    client.command("CREATE DATABASE IF NOT EXISTS recipe")
    client.database = "recipe"
    client.command(TABLE_DDL)

    def write(row: list[Any]) -> None:
        client.insert("csat_minute", [row], column_names=COLUMNS)

    return write


def create_app(args: argparse.Namespace) -> faust.App:
    app = faust.App(
        args.app_id,  # also the consumer group: every run reads the topic from the beginning
        broker=f"kafka://{args.bootstrap}",
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        web_port=args.web_port,
        datadir=str(args.datadir),
        store="memory://",
        topic_partitions=args.partitions,
        consumer_auto_offset_reset="earliest",
    )
    topic = app.topic(
        args.topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    table = app.Table("csat_per_pair_minute", default=lambda: [0, 0, 0], partitions=args.partitions).tumbling(
        60, expires=3600
    )
    if args.sink == "chdb":
        write = chdb_writer(args.datadir / "clickhouse")
    else:
        written: list[list[Any]] = []
        write = written.append
    state = {"seen": 0, "first_ns": 0}

    @app.agent(topic)
    async def aggregate(stream: Any) -> None:
        async for event in stream.events():
            if not state["first_ns"]:
                state["first_ns"] = time.time_ns()
            body = orjson.loads(event.value)
            pair = f"{body.get('provider_department')}|{body.get('customer_department')}"
            count, csat_sum, csat_count = table[pair].current()
            csat = body.get("csat")
            if csat is not None:
                csat_sum, csat_count = csat_sum + csat, csat_count + 1
            table[pair] = [count + 1, csat_sum, csat_count]
            window_start = int(event.message.timestamp // 60 * 60)
            provider, customer = pair.split("|")
            state["seen"] += 1
            write([provider, customer, window_start, count + 1, csat_sum, csat_count, state["seen"]])
            if state["seen"] == args.events:
                _write_result(args.result, state["seen"], state["first_ns"], time.time_ns())

    return app


def _write_result(path: Path, events: int, first_ns: int, last_ns: int) -> None:
    with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False) as out:
        out.write(orjson.dumps({"events": events, "first_ns": first_ns, "last_ns": last_ns}))
    os.replace(out.name, path)  # the benchmark never reads a half-written file


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.faust_recipe", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--events", type=int, required=True, help="report when this many events were handled")
    parser.add_argument("--app-id", required=True, help="Faust app id and consumer group; unique per run")
    parser.add_argument("--web-port", type=int, required=True)
    parser.add_argument("--datadir", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--sink", choices=("chdb", "memory"), default="chdb")
    parser.add_argument("--loglevel", default="warn")
    args = parser.parse_args()
    app = create_app(args)
    sys.argv = [sys.argv[0], "worker", "--loglevel", args.loglevel]  # Faust's own CLI reads these
    app.main()


if __name__ == "__main__":
    main()
