"""The scorecard as a rich table for the terminal: a section per provider, its overall row first."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from schemas.directory import Directory
from stream_processors.scorecard import formatting as fmt
from stream_processors.scorecard.rows import ScorecardRow
from stream_processors.scorecard.service import display_name, policy_of


def department_name(directory: Directory, department: str) -> str:
    """'人力资源部 (hr)'; the bare id for one the directory no longer knows."""
    name = display_name(directory, department)
    return name if name == department else f"{name} ({department})"


def _text(cell: fmt.Cell) -> Text:
    """A cell in the terminal: the change in italics after the figure, a short sample dimmed."""
    if cell.short:
        return Text(cell.text, style="dim")
    text = Text(cell.text)
    if cell.change != fmt.DASH:
        text.append(f" {cell.change}", style="italic")
    return text


def scorecard_table(rows: Sequence[ScorecardRow], directory: Directory, title: str) -> Table:
    """One table; changes against the previous window follow each headline figure in italics."""
    table = Table(title=title, title_justify="left", show_lines=False, header_style="bold")
    table.add_column("Customer", no_wrap=True)
    table.add_column("Opened", justify="right")
    table.add_column("Resolved", justify="right")
    table.add_column("Reopened", justify="right")
    table.add_column("1st response p50 / p90\n(business)", justify="right")
    table.add_column("Resolution p50 / p90\n(business)", justify="right")
    table.add_column("SLA met", justify="right")
    table.add_column("CSAT avg", justify="right")
    table.add_column("Satisfied (≥ lower 95 %)", justify="right")
    table.add_column("NPS ± 95 %", justify="right")
    provider = None
    for row in rows:
        policy = policy_of(directory, row.provider_department)
        if row.provider_department != provider:
            if provider is not None:
                table.add_section()
            provider = row.provider_department
        overall = row.customer_department is None
        label = (
            f"{department_name(directory, row.provider_department)}: all customers"
            if overall
            else f"  {department_name(directory, row.customer_department or '')}"
        )
        table.add_row(
            Text(label, style="bold" if overall else ""), *(_text(cell) for cell in fmt.row_cells(row, policy))
        )
    return table
