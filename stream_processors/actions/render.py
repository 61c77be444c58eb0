"""Actions and their effect as a terminal table, CSV, the scorecard page's "Actions and their effect"
table (an HTML fragment) and the markers of the actions' starts on its charts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Final, NamedTuple

from rich.table import Table
from rich.text import Text

from schemas.directory import Directory
from stream_processors.actions.measuring import ActionRow
from stream_processors.core.effects import Effect
from stream_processors.scorecard import formatting as fmt
from stream_processors.scorecard.export import csv_text, terminal_text
from stream_processors.scorecard.render_table import department_name, service_label
from stream_processors.scorecard.service import display_name, service_name
from stream_processors.templating import template

# Each figure of effects.compare: its label and how its values and differences are written.
FIGURES: Final = {
    "satisfied_share": ("Satisfied share (CSAT 4-5)", "share"),
    "csat_avg": ("CSAT average", "score"),
    "nps": ("NPS", "nps"),
    "sla_attainment": ("SLA attainment", "share"),
    "first_response_p50_s": ("First response p50", "duration"),
    "resolution_p50_s": ("Resolution p50", "duration"),
}


def figure_label(effect: Effect) -> str:
    return FIGURES.get(effect.figure, (effect.figure, ""))[0]


def value_text(value: float | None, kind: str) -> str:
    if kind == "share":
        return fmt.share(value)
    if kind == "nps":
        return fmt.nps(value, None)
    if kind == "duration":
        return fmt.duration(value)
    return fmt.score(value)


def before_after(effect: Effect) -> str:
    """'82.0 % → 91.5 %'; below the sample minimum only the counts: 'n=4 → n=12'."""
    if effect.problem:
        return effect.problem
    if effect.verdict == "insufficient":
        return f"n={effect.before_count} → n={effect.after_count}"
    kind = FIGURES.get(effect.figure, ("", "score"))[1]
    return f"{value_text(effect.before, kind)} → {value_text(effect.after, kind)}"


def difference_text(effect: Effect) -> str:
    """'+9.5 pp (+4.1 pp to +14.8 pp)'; a dash below the sample minimum."""
    if effect.verdict == "insufficient" or effect.difference is None:
        return fmt.DASH
    kind = FIGURES.get(effect.figure, ("", "score"))[1]
    return f"{fmt.change(effect.difference, kind)} ({fmt.interval(effect.low, effect.high, kind)})"


def scope_text(row: ActionRow, directory: Directory) -> str:
    """'招聘 (Recruiting), for Finance' or 'every service'."""
    service = service_name(directory, row.service_category) if row.service_category else "every service"
    customer = f", for {display_name(directory, row.customer_department)}" if row.customer_department else ""
    return service + customer


# --- terminal and CSV -----------------------------------------------------------------------------


def actions_table(rows: Sequence[ActionRow], directory: Directory) -> Table:
    """A section per action, newest start first: its figures, then its notes."""
    window = f"{(rows[0].before_until - rows[0].before_since).days} days" if rows else "the windows"
    table = Table(
        title=f"deptpulse actions and their effect ({window} before the start against {window} after "
        "the settling period; UTC days; 95 % intervals)",
        title_justify="left",
    )
    for head in ("started", "action", "figure", "before → after", "difference (95 % interval)", "verdict"):
        table.add_column(head)
    for row in rows:
        described = Text(row.title, style="bold")
        described.append(
            f"\n{department_name(directory, row.provider_department)}: "
            + (service_label(directory, row.service_category) if row.service_category else "every service")
            + (
                f", for {department_name(directory, row.customer_department)}"
                if row.customer_department
                else ""
            )
            + (f"\nowner {row.owner}" if row.owner else "")
        )
        lines: list[tuple[Any, ...]] = [  # user and data text as Text: never read as rich markup
            (
                Text(figure_label(e)),
                Text(before_after(e)),
                difference_text(e),
                Text(e.verdict, style=fmt.VERDICT_STYLE[e.verdict]),
            )
            for e in row.effects
        ]
        lines.extend((Text(note, style="italic"), "", "", "") for note in row.notes)
        for index, line in enumerate(lines or [("", "", "", "")]):
            first = index == 0
            table.add_row(
                row.started_on.isoformat() if first else "",
                described if first else "",
                *line,
                end_section=index == max(len(lines), 1) - 1,
            )
    return table


def actions_text(
    rows: Sequence[ActionRow], directory: Directory, width: int = 200, styled: bool = False
) -> str:
    if not rows:
        return "no action recorded (deptpulse actions add)\n"
    return terminal_text(actions_table(rows, directory), width, styled)


ACTION_FIELDS: Final = (
    "event_id",
    "provider_department",
    "service_category",
    "customer_department",
    "title",
    "started_on",
    "owner",
    "status",
    "before_since",
    "before_until",
    "after_since",
    "after_until",
)
EFFECT_FIELDS: Final = (
    "figure",
    "before",
    "after",
    "difference",
    "low",
    "high",
    "before_count",
    "after_count",
    "verdict",
    "problem",
)


def actions_csv(rows: Sequence[ActionRow]) -> str:
    """A line per action and figure (one line for an action still measuring); notes on every line."""
    records: list[dict[str, Any]] = []
    for row in rows:
        action = row.model_dump(mode="json")
        effects = action.pop("effects") or [{}]
        records.extend({**action, **effect} for effect in effects)
    return csv_text(records, (*ACTION_FIELDS, *EFFECT_FIELDS, "notes"))


# --- HTML -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EffectCells:
    """One figure's before → after, difference and verdict, as the page shows them."""

    figure: str
    before_after: str
    difference: str
    verdict: str
    css: str
    shaded: bool  # below the sample minimum or a data problem


@dataclass(frozen=True)
class ActionLine:
    """An action and its lines: one per figure, then one per note; none while nothing is measured."""

    row: ActionRow
    scope: str
    owner: str
    cells: list[EffectCells | str]  # a str is a note


@dataclass(frozen=True)
class ActionsSection:
    days: int  # before and after windows
    settling: int
    lines: list[ActionLine]


def actions_context(actions_with_effects: Sequence[ActionRow], directory: Directory) -> ActionsSection | None:
    """What templates/actions/actions.html shows; None without an action."""
    if not actions_with_effects:
        return None
    first = actions_with_effects[0]
    lines = [
        ActionLine(
            row,
            scope_text(row, directory),
            row.owner or fmt.DASH,
            [
                *(
                    EffectCells(
                        figure_label(effect),
                        before_after(effect),
                        difference_text(effect),
                        effect.verdict,
                        fmt.VERDICT_CLASS[effect.verdict],
                        effect.verdict == "insufficient" or bool(effect.problem),
                    )
                    for effect in row.effects
                ),
                *row.notes,
            ],
        )
        for row in actions_with_effects
    ]
    return ActionsSection(
        (first.before_until - first.before_since).days, (first.after_since - first.before_until).days, lines
    )


def render_actions_html(actions_with_effects: Sequence[ActionRow], directory: Directory) -> str:
    """The scorecard page's "Actions and their effect" table: per action its title, service, start and
    owner, each figure's before → after, the difference with its 95 % interval and the verdict, and
    notes (still measuring, overlapping actions)."""
    return template("actions/actions.html").render(actions=actions_context(actions_with_effects, directory))


class ActionMarker(NamedTuple):
    """Where a chart marks an action: the UTC midnight its windows start from, and its title."""

    started_on: date
    at: datetime
    title: str


def action_markers(actions: Sequence[ActionRow]) -> list[ActionMarker]:
    """The actions' starts for the scorecard's charts, oldest first (titles unescaped: escape them)."""
    return sorted(
        ActionMarker(row.started_on, datetime.combine(row.started_on, time(), tzinfo=UTC), row.title)
        for row in actions
    )
