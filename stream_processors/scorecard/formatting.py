"""How the terminal table and the HTML page write figures: one place, so both read the same."""

from __future__ import annotations

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
