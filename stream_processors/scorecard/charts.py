"""The scorecard's SVG charts as geometry: the trend lines and the provider x customer matrices in
their own coordinates, drawn by ``templates/scorecard/charts.html``."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from schemas.directory import AlertPolicy, Directory
from stream_processors.scorecard.rows import ScorecardRow, figure_evidence
from stream_processors.scorecard.service import display_name, policy_of

EMPTY: Final = "#eef0f3"


def nice_ceiling(value: float) -> float:
    """1, 2, 2.5 or 5 times a power of ten, at least ``value``."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= value:
            return factor * power
    return 10 * power


@dataclass(frozen=True)
class Series:
    """A figure over the window's points, on a y axis from ``y_min`` to ``y_max``."""

    title: str
    values: list[float | None]
    hollow: list[bool]  # below the minimum sample
    counts: list[int]
    y_min: float
    y_max: float
    target: float | None
    y_label: Callable[[float], str]


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class XLabel:
    x: float
    first: str
    second: str  # the date under a time of day; "" for daily steps


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    hollow: bool
    tip: str


@dataclass(frozen=True)
class Marker:
    x: float
    label: str


@dataclass(frozen=True)
class LineChart:
    """An SVG line chart's parts in the chart's coordinates."""

    title: str
    ticks: list[Tick]
    target: Tick | None
    x_labels: list[XLabel]
    polylines: list[str]  # "x,y x,y …" per run of points with enough samples
    points: list[Point]
    markers: list[Marker]
    empty: bool
    width: int = 570
    height: int = 200
    left: int = 52
    right: int = 14
    top: int = 12
    bottom: int = 34

    @property
    def plot_w(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> int:
        return self.height - self.top - self.bottom


def line_chart(
    series: Series,
    starts: Sequence[datetime],
    step: timedelta,
    zone: ZoneInfo,
    markers: Sequence[tuple[datetime, str]] = (),
) -> LineChart:
    """Gaps where there is no sample; points below the minimum sample are hollow and left
    unconnected, so a thin weekend does not draw a cliff. ``markers`` (moment, label) inside the
    window are drawn as dashed vertical lines: improvement actions."""
    chart = LineChart(series.title, [], None, [], [], [], [], True)
    left, top, plot_w, plot_h = chart.left, chart.top, chart.plot_w, chart.plot_h
    n = max(1, len(series.values))
    span = series.y_max - series.y_min or 1.0

    def x(index: int) -> float:
        return left + (index + 0.5) * plot_w / n

    def y(value: float) -> float:
        clamped = min(series.y_max, max(series.y_min, value))
        return top + plot_h - (clamped - series.y_min) / span * plot_h

    ticks = [Tick(y(v), series.y_label(v)) for v in (series.y_min + span * tick / 4 for tick in range(5))]
    target = None if series.target is None else Tick(y(series.target), series.y_label(series.target))
    # x labels: at most 7, evenly spread; dates for daily steps, times (and the date) below a day.
    x_labels = []
    labels = min(7, n)
    for k in range(labels):
        index = round(k * (n - 1) / max(1, labels - 1))
        local = starts[index].astimezone(zone)
        daily = step >= timedelta(days=1)
        x_labels.append(
            XLabel(
                x(index),
                local.strftime("%b %d") if daily else local.strftime("%H:%M"),
                "" if daily else local.strftime("%b %d"),
            )
        )
    segment: list[str] = []
    segments: list[list[str]] = []
    for index, maybe in enumerate(series.values):
        if maybe is None or series.hollow[index]:  # lines join only the points with enough samples
            if segment:
                segments.append(segment)
            segment = []
        else:
            segment.append(f"{x(index):.1f},{y(maybe):.1f}")
    if segment:
        segments.append(segment)
    points = [
        Point(
            x(index),
            y(value),
            series.hollow[index],
            f"{starts[index].astimezone(zone):%Y-%m-%d %H:%M}: {series.y_label(value)} (n={series.counts[index]})",
        )
        for index, value in enumerate(series.values)
        if value is not None
    ]
    drawn = []
    if starts:
        chart_start, chart_end = starts[0], starts[-1] + step
        drawn = [
            Marker(left + (moment - chart_start) / (chart_end - chart_start) * plot_w, label)
            for moment, label in markers
            if chart_start <= moment < chart_end
        ]
    return LineChart(
        series.title,
        ticks,
        target,
        x_labels,
        [" ".join(points) for points in segments if len(points) > 1],
        points,
        drawn,
        not any(value is not None for value in series.values),
    )


@dataclass(frozen=True)
class HeatCell:
    x: int
    fill: str
    text: str  # the figure; "" for no row or too few samples
    sub: str  # n=count; "" for no row
    tip: str


@dataclass(frozen=True)
class HeatRow:
    y: int
    name: str
    mine: bool  # the report's provider: bold and outlined
    cells: list[HeatCell]


@dataclass(frozen=True)
class Heatmap:
    """Providers (rows) x customers (columns) as an SVG grid, in the grid's coordinates."""

    title: str
    columns: list[tuple[float, str]]  # (centre x, customer name)
    rows: list[HeatRow]
    cell_w: int = 84
    cell_h: int = 36
    label_w: int = 170
    header_h: int = 96

    @property
    def width(self) -> int:
        return self.label_w + self.cell_w * len(self.columns) + 130  # room for the last slanted name

    @property
    def height(self) -> int:
        return self.header_h + self.cell_h * len(self.columns) + 8


def heatmap(
    directory: Directory,
    matrix: Sequence[ScorecardRow],
    provider_shown: str,
    title: str,
    figure: Callable[[ScorecardRow], tuple[float | None, int, bool]],
    colour: Callable[[ScorecardRow, AlertPolicy], str],
    label: Callable[[float], str],
) -> Heatmap:
    """Every provider x customer pair of ``matrix``, ``provider_shown`` marked."""
    by_pair = {(row.provider_department, row.customer_department): row for row in matrix}
    ids = directory.department_ids()
    extra = sorted({d for pair in by_pair for d in pair if d is not None and d not in ids})
    departments = ids + extra
    grid = Heatmap(title, [], [])
    columns = [
        (grid.label_w + column * grid.cell_w + grid.cell_w / 2, display_name(directory, customer))
        for column, customer in enumerate(departments)
    ]
    rows = []
    for row_index, provider in enumerate(departments):
        policy = policy_of(directory, provider)
        cells = []
        for column, customer in enumerate(departments):
            row = by_pair.get((provider, customer))
            fill, text, sub = EMPTY, "", ""
            if row is not None:
                value, count, short = figure(row)
                if short or value is None:
                    fill, text, sub = "url(#hatch)", "", f"n={count}"
                else:
                    fill, text, sub = colour(row, policy), label(value), f"n={count}"
            tip = f"{display_name(directory, provider)} → {display_name(directory, customer)}"
            cells.append(HeatCell(grid.label_w + column * grid.cell_w, fill, text, sub, tip))
        rows.append(
            HeatRow(
                grid.header_h + row_index * grid.cell_h,
                display_name(directory, provider),
                provider == provider_shown,
                cells,
            )
        )
    return Heatmap(title, columns, rows)


EVIDENCE_FILL: Final = {"below": "#e06c5c", "above": "#62b57a", "unclear": "#f6dd85", "none": EMPTY}


def evidence_fill(name: str) -> Callable[[ScorecardRow, AlertPolicy], str]:
    """A cell's colour from the evidence of its figure against the target (the alerts' rule)."""
    return lambda row, policy: EVIDENCE_FILL[figure_evidence(row, policy)[name]]
