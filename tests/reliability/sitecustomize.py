"""Fault injection for worker subprocesses started by the reliability tests; inert elsewhere.

Python imports ``sitecustomize`` at start-up from ``sys.path``; the tests put this directory on
the worker's ``PYTHONPATH`` together with ``RELIABILITY_FAULTS=<dir>``. Only then are the
:class:`~stream_processors.sinks.clickhouse.ClickHouseSink` calls wrapped, and each call looks
at files in that directory, so a test switches faults on and off while the worker runs:

- ``clickhouse_down``: every sink call raises ``ConnectionRefusedError`` (ClickHouse unreachable).
- ``pause_insert``: the aggregate insert (the commit point) writes ``in_insert`` and sleeps; the
  file holds ``before`` (sleep, then insert) or ``after`` (insert, then sleep), so a SIGKILL
  lands just before or just after the batch is committed.

The wrapping lives for the life of the worker process and is never undone: it exists only in a
process the test started and kills.
"""

from __future__ import annotations

import os

_FAULTS = os.environ.get("RELIABILITY_FAULTS")


def _install(directory: str) -> None:
    import functools
    import time
    from pathlib import Path
    from typing import Any

    from stream_processors.sinks import clickhouse

    faults = Path(directory)

    def down_check(method: Any) -> Any:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if (faults / "clickhouse_down").exists():
                raise ConnectionRefusedError(f"injected: ClickHouse down ({method.__name__})")
            return method(*args, **kwargs)

        return wrapper

    def paused_insert(method: Any) -> Any:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                when = (faults / "pause_insert").read_text().strip()
            except FileNotFoundError:
                return method(*args, **kwargs)
            if when == "after":
                result = method(*args, **kwargs)
            (faults / "in_insert").write_text(f"{os.getpid()} {when}\n")
            time.sleep(60)  # the test kills us here
            return result if when == "after" else method(*args, **kwargs)

        return wrapper

    sink = clickhouse.ClickHouseSink
    for name in ("write_side_tables", "batch_landed", "applied_offsets", "applied_payloads", "window_aggregates"):
        setattr(sink, name, down_check(getattr(sink, name)))
    sink.write_aggregates = down_check(paused_insert(sink.write_aggregates))  # type: ignore[method-assign]


if _FAULTS:
    _install(_FAULTS)
