"""The scorecard: rolling windows over the minute aggregates, as rows, a matrix and time series.

ClickHouse does the heavy lifting (``sum``/``sumMap`` GROUP BY over ``minute_buckets``); Python
computes percentiles, Wilson bounds and NPS from the merged sums with :mod:`stream_processors.core`.

- :mod:`.windows`: ``--window 1h|24h|7d|28d`` ending now, or ``--since/--until``; the previous window.
- :mod:`.queries`: the parameterised SQL (:class:`ClickHouseAggregates`).
- :mod:`.rows`: :class:`ScorecardRow` (the JSON row, with the small-sample rule), time-series points.
- :mod:`.service`: :class:`ScorecardService`, ids checked against the directory.
- :mod:`.read_api`: ``/api/v1/scorecard|matrix|timeseries`` handlers, :func:`register_faust_views`.
- :mod:`.remote`: the same source over HTTP, for ``deptpulse report`` while the worker holds chdb.
- :mod:`.report`, :mod:`.render_table`, :mod:`.render_html`: ``deptpulse report``'s formats; the HTML
  page from ``stream_processors/templates/scorecard/`` (Jinja2), its charts' geometry in :mod:`.charts`.
- :mod:`.page`: that HTML page as the read API serves it (``/scorecard/<department>``).
"""

from stream_processors.scorecard.rows import ROW_FIELDS, ScorecardRow, Timeseries, TimeseriesPoint
from stream_processors.scorecard.service import ScorecardService, ScorecardSource, UnknownDepartment
from stream_processors.scorecard.windows import Window, WindowError, resolve_window

__all__ = [
    "ROW_FIELDS",
    "ScorecardRow",
    "ScorecardService",
    "ScorecardSource",
    "Timeseries",
    "TimeseriesPoint",
    "UnknownDepartment",
    "Window",
    "WindowError",
    "resolve_window",
]
