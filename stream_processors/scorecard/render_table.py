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


def _with_change(figure: str, change: str) -> Text:
    text = Text(figure)
    if change != fmt.DASH:
        text.append(f" {change}", style="italic")
    return text


def _short(count: int, minimum: int) -> Text:
    return Text(fmt.insufficient(count, minimum), style="dim")


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
        sla_count = row.sla_met + row.sla_breached
        table.add_row(
            Text(label, style="bold" if overall else ""),
            _with_change(str(row.requests_opened), fmt.change(row.requests_opened_change, "count")),
            str(row.requests_resolved),
            str(row.requests_reopened),
            _with_change(
                f"{fmt.duration(row.first_response_p50_s)} / {fmt.duration(row.first_response_p90_s)}",
                fmt.change(row.first_response_p90_s_change, "duration"),
            ),
            f"{fmt.duration(row.resolution_p50_s)} / {fmt.duration(row.resolution_p90_s)}",
            _short(sla_count, policy.sla_min_sample)
            if row.sla_insufficient
            else _with_change(
                f"{fmt.share(row.sla_attainment)} of {sla_count}",
                fmt.change(row.sla_attainment_change, "share"),
            ),
            _short(row.csat_count, policy.csat_min_sample)
            if row.csat_insufficient
            else _with_change(
                f"{fmt.score(row.csat_avg)} (n={row.csat_count})", fmt.change(row.csat_avg_change, "score")
            ),
            _short(row.csat_count, policy.csat_min_sample)
            if row.csat_insufficient
            else _with_change(
                f"{fmt.share(row.csat_satisfied_share)} (≥ {fmt.share(row.csat_satisfied_share_lower95)})",
                fmt.change(row.csat_satisfied_share_change, "share"),
            ),
            _short(row.nps_count, policy.nps_min_sample)
            if row.nps_insufficient
            else _with_change(
                f"{fmt.nps(row.nps, row.nps_margin95)} (n={row.nps_count})", fmt.change(row.nps_change, "nps")
            ),
        )
    return table
