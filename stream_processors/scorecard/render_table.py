"""The scorecard as a rich table for the terminal: a section per provider, its overall row first."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from schemas.directory import Directory
from stream_processors.scorecard import formatting as fmt
from stream_processors.scorecard.questions import QuestionRow
from stream_processors.scorecard.rows import ScorecardRow, weakest
from stream_processors.scorecard.service import display_name, policy_of, service_name


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


def service_label(directory: Directory, service: str) -> str:
    """'Recruiting (hr.recruiting)'; 'other' for events without a service."""
    name = service_name(directory, service)
    return name if not service or name == service else f"{name} ({service})"


def scorecard_table(rows: Sequence[ScorecardRow], directory: Directory, title: str) -> Table:
    """One table; changes against the previous window follow each headline figure in italics.
    Rows by service (``service_category`` set) are labelled by service, the weakest one marked."""
    by_service = any(row.service_category is not None for row in rows)
    table = Table(title=title, title_justify="left", show_lines=False, header_style="bold")
    table.add_column("Service" if by_service else "Customer", no_wrap=True)
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
        if by_service:
            overall = row.service_category is None
            customers = (
                "all customers"
                if row.customer_department is None
                else department_name(directory, row.customer_department)
            )
            mark = ""
            if not overall:
                services = [
                    r for r in rows if r.provider_department == provider and r.service_category is not None
                ]
                mark = "  ◀ weakest" if weakest(services, policy) is row else ""
            label = (
                f"{department_name(directory, row.provider_department)}: {customers}"
                if overall
                else f"  {service_label(directory, row.service_category or '')}{mark}"
            )
        else:
            overall = row.customer_department is None
            label = (
                f"{department_name(directory, row.provider_department)}: all customers"
                if overall
                else f"  {department_name(directory, row.customer_department or '')}"
            )
        table.add_row(
            Text(label, style="bold" if overall else ""),
            *(_text(cell) for cell in fmt.row_cells(row, policy)),
        )
    return table


def questions_table(rows: Sequence[QuestionRow], directory: Directory, title: str) -> Table:
    """Survey questions: answers, the score distribution as a bar per score, mean [95 %], NPS."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in ("Question", "Service", "Answers", "Scores 0 … 10", "Mean [95 %]", "NPS ± 95 %", "Change"):
        table.add_column(
            column, no_wrap=True, justify="left" if column in ("Question", "Service") else "right"
        )
    provider = None
    for row in rows:
        if row.provider_department != provider:
            if provider is not None:
                table.add_section()
            provider = row.provider_department
            table.add_row(Text(department_name(directory, provider), style="bold"))
        policy = policy_of(directory, row.provider_department)
        figures = (
            [Text(fmt.insufficient(row.answers, policy.nps_min_sample), style="dim")] * 2
            if row.insufficient
            else [
                f"{fmt.score(row.mean, 1)} [{fmt.score(row.mean_low95, 1)}–{fmt.score(row.mean_high95, 1)}]",
                fmt.nps(row.nps, row.nps_margin95),
            ]
        )
        table.add_row(
            f"  {row.question_id or 'other'}",
            service_label(directory, row.service_category) if row.service_category else "",
            str(row.answers),
            sparkline(row.distribution),
            *figures,
            fmt.change(row.mean_change, "score"),
        )
    return table


_BARS = " ▁▂▃▄▅▆▇█"


def sparkline(counts: Sequence[int]) -> str:
    """One block character per score, its height the share of the most frequent score."""
    peak = max(counts, default=0)
    return "".join(_BARS[0 if peak == 0 else round(count / peak * (len(_BARS) - 1))] for count in counts)
