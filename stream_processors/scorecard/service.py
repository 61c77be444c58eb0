"""The scorecard as a service: department ids checked against the directory, sums read from storage,
rows computed in Python. The read API, ``deptpulse report`` and the HTML page all go through a
:class:`ScorecardSource`: this local one, or :class:`~stream_processors.scorecard.remote.RemoteScorecard`
over the worker's read API.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, Protocol

from schemas.directory import AlertPolicy, Directory
from stream_processors.core import MinuteAggregate, MinuteAggregator
from stream_processors.core.aggregates import merge_into
from stream_processors.scorecard.queries import AggregateReader
from stream_processors.scorecard.questions import QuestionRow, question_rows
from stream_processors.scorecard.rows import (
    ScorecardRow,
    Timeseries,
    scorecard_row,
    timeseries_point,
)
from stream_processors.scorecard.windows import Window, shown


class UnknownDepartment(ValueError):
    """A department id that the directory does not know."""


class UnknownService(ValueError):
    """A service id that the directory does not know, or that another department provides."""


def check_service(directory: Directory, service: str | None, provider: str | None) -> None:
    """Raise :class:`UnknownService` unless ``service`` is None or one of the provider's services
    (any department's, without a provider); the message lists the valid ids."""
    if service is None:
        return
    departments = [directory.department(provider)] if provider else directory.departments
    known = [each.id for department in departments for each in department.services]
    if service not in known:
        whose = f"{provider}'s services" if provider else "services"
        raise UnknownService(f"unknown service {shown(service)}: {whose} are {', '.join(known) or 'none'}")


OTHER_SERVICE: Final = "other"  # how rows of events without a service are labelled


def service_name(directory: Directory, service: str | None) -> str:
    """The service's display name from the directory, "other" for events without one."""
    if not service:
        return OTHER_SERVICE
    for department in directory.departments:
        for each in department.services:
            if each.id == service:
                return each.name
    return service


def check_department(directory: Directory, department: str | None, role: str) -> None:
    """Raise :class:`UnknownDepartment` unless ``department`` is None or a directory id."""
    if department is not None and not directory.has_department(department):
        raise UnknownDepartment(
            f"unknown {role} department {shown(department)}: known are {', '.join(directory.department_ids())}"
        )


def policy_of(directory: Directory, department: str | None) -> AlertPolicy:
    """The department's alert policy (its sample minimums); the directory's default for None or for
    a department the data names but the directory no longer has."""
    if department is not None and directory.has_department(department):
        return directory.policy_for(department)
    return directory.alert_policy


def display_name(directory: Directory, department: str) -> str:
    """The department's display name (e.g. 人力资源部); the bare id for one the directory lacks."""
    return directory.department(department).name if directory.has_department(department) else department


class ScorecardSource(Protocol):
    """Scorecard rows, the provider x customer matrix and time series for a window."""

    def scorecard(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> list[ScorecardRow]: ...

    def matrix(self, window: Window) -> list[ScorecardRow]: ...

    def timeseries(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> Timeseries: ...

    def services(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> list[ScorecardRow]: ...

    def questions(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> list[QuestionRow]: ...


def _merged(aggregates: Iterable[MinuteAggregate]) -> MinuteAggregate:
    total = MinuteAggregator.initialize()
    for aggregate in aggregates:
        merge_into(total, aggregate)
    return total


class ScorecardService:
    """A :class:`ScorecardSource` over an :class:`AggregateReader` (ClickHouse) and the directory."""

    def __init__(self, reader: AggregateReader, directory: Directory) -> None:
        self.reader = reader
        self.directory = directory

    def _order(self, departments: Iterable[str]) -> list[str]:
        """Directory order first, then ids the directory no longer knows, sorted."""
        known = self.directory.department_ids()
        present = set(departments)
        return [d for d in known if d in present] + sorted(present - set(known))

    def scorecard(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> list[ScorecardRow]:
        """Per provider (``provider``, or every one): its overall row, then a row per customer that
        had data in this window or the previous one (only ``customer``'s when it is given)."""
        check_department(self.directory, provider, "provider")
        check_department(self.directory, customer, "customer")
        sums = self.reader.pair_sums(window, provider)
        providers = (
            [provider]
            if provider
            else self._order(
                [
                    *self.directory.department_ids(),
                    *(p for p, _ in sums.current),
                    *(p for p, _ in sums.previous),
                ]
            )
        )
        rows = []
        for each in providers:
            pairs = {pair for pair in (*sums.current, *sums.previous) if pair[0] == each}
            rows.append(
                self._row(
                    window,
                    each,
                    None,
                    [sums.current[p] for p in pairs if p in sums.current],
                    [sums.previous[p] for p in pairs if p in sums.previous],
                )
            )
            for served in self._order(c for _, c in pairs):
                if customer is None or served == customer:
                    pair = (each, served)
                    rows.append(
                        self._row(window, each, served, _only(sums.current, pair), _only(sums.previous, pair))
                    )
        return rows

    def matrix(self, window: Window) -> list[ScorecardRow]:
        """A row for every (provider, customer) pair with data in this window or the previous one."""
        sums = self.reader.pair_sums(window)
        pairs = set(sums.current) | set(sums.previous)
        providers = self._order(p for p, _ in pairs)
        customers = self._order(c for _, c in pairs)
        return [
            self._row(window, p, c, _only(sums.current, (p, c)), _only(sums.previous, (p, c)))
            for p in providers
            for c in customers
            if (p, c) in pairs
        ]

    def services(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> list[ScorecardRow]:
        """Per provider (``provider``, or every one): its overall row (over ``customer`` only, when
        given), then a row per service with data in this window or the previous one: the provider's
        services in directory order, other ids sorted, events without a service ("") last."""
        check_department(self.directory, provider, "provider")
        check_department(self.directory, customer, "customer")
        sums = self.reader.service_sums(window, provider, customer)
        keys = set(sums.current) | set(sums.previous)
        providers = [provider] if provider else self._order(p for p, _ in keys)
        rows = []
        for each in providers:
            mine = {service for p, service in keys if p == each}
            overall = (
                [sums.current[k] for k in keys if k[0] == each and k in sums.current],
                [sums.previous[k] for k in keys if k[0] == each and k in sums.previous],
            )
            rows.append(self._row(window, each, customer, *overall))
            for service in self._service_order(each, mine):
                key = (each, service)
                rows.append(
                    self._row(
                        window, each, customer, _only(sums.current, key), _only(sums.previous, key), service
                    )
                )
        return rows

    def questions(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> list[QuestionRow]:
        """Per provider, a row per survey question answered in this window or the one before,
        the lowest mean first."""
        check_department(self.directory, provider, "provider")
        check_department(self.directory, customer, "customer")
        counts = self.reader.question_counts(window, provider, customer)
        policies = {d: self.directory.policy_for(d) for d in self.directory.department_ids()}
        return question_rows(
            counts, window, policies, self.directory.alert_policy, customer, self.directory.department_ids()
        )

    def _service_order(self, provider: str, services: set[str]) -> list[str]:
        listed = (
            [s.id for s in self.directory.department(provider).services]
            if self.directory.has_department(provider)
            else []
        )
        ordered = [s for s in listed if s in services]
        return ordered + sorted(services - set(listed) - {""}) + ([""] if "" in services else [])

    def timeseries(
        self, window: Window, provider: str | None = None, customer: str | None = None
    ) -> Timeseries:
        """Points over the window (:meth:`Window.step` apart), empty steps included as zeros."""
        check_department(self.directory, provider, "provider")
        check_department(self.directory, customer, "customer")
        sums = self.reader.series_sums(window, provider, customer)
        policy = policy_of(self.directory, provider)
        points = [
            timeseries_point(start, sums.get(index) or MinuteAggregate(), policy)
            for index, start in enumerate(window.point_starts())
        ]
        return Timeseries(
            provider_department=provider,
            customer_department=customer,
            since=window.since,
            until=window.until,
            step_seconds=int(window.step().total_seconds()),
            points=points,
        )

    def _row(
        self,
        window: Window,
        provider: str,
        customer: str | None,
        current: Iterable[MinuteAggregate],
        previous: Iterable[MinuteAggregate],
        service: str | None = None,
    ) -> ScorecardRow:
        return scorecard_row(
            provider,
            customer,
            window.since,
            window.until,
            _merged(current),
            _merged(previous),
            policy_of(self.directory, provider),
            service,
        )


def _only(sums: Mapping[tuple[str, str], MinuteAggregate], pair: tuple[str, str]) -> list[MinuteAggregate]:
    return [sums[pair]] if pair in sums else []
