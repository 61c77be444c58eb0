"""How the terminal table and the HTML page write figures: one place, so both read the same."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schemas.directory import AlertPolicy
    from stream_processors.scorecard.rows import ScorecardRow

DASH = "–"
MINUS = "−"


def duration(seconds: float | None) -> str:
    """Business seconds as '45 s', '12 min', '3.4 h' (working hours: never converted to days)."""
    if seconds is None:
        return DASH
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours < 100 else f"{hours:.0f} h"


def share(value: float | None) -> str:
    """0.934 -> '93.4 %'."""
    return DASH if value is None else f"{100 * value:.1f} %"


def _signed(value: float, text: str) -> str:
    if float(text) == 0:  # rounds to zero: no sign
        return text.lstrip("-")
    return ("+" if value > 0 else MINUS) + text.lstrip("-")


def change(value: float | None, kind: str) -> str:
    """A change against the previous window: kind is 'count', 'score', 'share' (percentage points),
    'nps' or 'duration'."""
    if value is None:
        return DASH
    if kind == "count":
        return _signed(value, f"{value:.0f}")
    if kind == "score":
        return _signed(value, f"{value:.2f}")
    if kind == "share":
        return _signed(value, f"{100 * value:.1f}") + " pp"
    if kind == "nps":
        return _signed(value, f"{value:.0f}")
    if kind == "duration":
        text = duration(abs(value))
        return text if value == 0 else ("+" if value > 0 else MINUS) + text
    raise ValueError(f"unknown kind of change {kind!r}")


def score(value: float | None, digits: int = 2) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def nps(value: float | None, margin: float | None) -> str:
    if value is None:
        return DASH
    text = f"{value:+.0f}".replace("-", MINUS)
    return f"{text} ± {margin:.0f}" if margin is not None else text


def insufficient(count: int, minimum: int) -> str:
    """What stands where a figure's sample is too small."""
    return f"n={count} (<{minimum})"


def interval(low: float | None, high: float | None, kind: str) -> str:
    """The 95 % interval of a difference, written like a change: '−3 to +12' (kind as in :func:`change`)."""
    if low is None or high is None:
        return DASH
    return f"{change(low, kind)} to {change(high, kind)}"


# The page's CSS class and the terminal's style of a before/after verdict (campaigns, actions).
VERDICT_CLASS = {"improved": "up", "worse": "down", "no detectable change": "flat", "insufficient": "short"}
VERDICT_STYLE = {"improved": "green", "worse": "red", "no detectable change": "", "insufficient": "dim"}


# --- a scorecard row as cells ------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One figure of a scorecard row as text with its change against the previous window, or, for a
    sample below the policy's minimum (``short``), only the count: never a figure that means nothing."""

    text: str
    change: str = DASH
    short: bool = False

    @property
    def changed(self) -> bool:
        """Whether there is a change to show beside the figure."""
        return self.change != DASH


def row_cells(row: ScorecardRow, policy: AlertPolicy) -> list[Cell]:
    """The figure columns of a row, after the customer's name, in the order of the table heads:
    opened, resolved, reopened, first response p50/p90, resolution p50/p90, SLA met, CSAT average,
    satisfied share, NPS. The terminal table and the HTML page both render these."""
    sla_count = row.sla_met + row.sla_breached

    def short(count: int, minimum: int) -> Cell:
        return Cell(insufficient(count, minimum), short=True)

    return [
        Cell(str(row.requests_opened), change(row.requests_opened_change, "count")),
        Cell(str(row.requests_resolved)),
        Cell(str(row.requests_reopened)),
        Cell(
            f"{duration(row.first_response_p50_s)} / {duration(row.first_response_p90_s)}",
            change(row.first_response_p90_s_change, "duration"),
        ),
        Cell(f"{duration(row.resolution_p50_s)} / {duration(row.resolution_p90_s)}"),
        short(sla_count, policy.sla_min_sample)
        if row.sla_insufficient
        else Cell(f"{share(row.sla_attainment)} of {sla_count}", change(row.sla_attainment_change, "share")),
        short(row.csat_count, policy.csat_min_sample)
        if row.csat_insufficient
        else Cell(f"{score(row.csat_avg)} (n={row.csat_count})", change(row.csat_avg_change, "score")),
        short(row.csat_count, policy.csat_min_sample)
        if row.csat_insufficient
        else Cell(
            f"{share(row.csat_satisfied_share)} (≥ {share(row.csat_satisfied_share_lower95)})",
            change(row.csat_satisfied_share_change, "share"),
        ),
        short(row.nps_count, policy.nps_min_sample)
        if row.nps_insufficient
        else Cell(f"{nps(row.nps, row.nps_margin95)} (n={row.nps_count})", change(row.nps_change, "nps")),
    ]
