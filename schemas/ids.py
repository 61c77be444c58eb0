"""Identifiers and status values shared by the event contract and the department directory, and
what event validation needs of a directory; both import from here, neither from the other."""

from __future__ import annotations

from typing import Annotated, Final, Literal, Protocol

from pydantic import StringConstraints

DepartmentId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Priority = Literal["P1", "P2", "P3", "P4"]

# Status values with a meaning for the SLA clock; any other status string is allowed and kept.
WAITING_ON_CUSTOMER: Final = "waiting_on_customer"
IN_PROGRESS: Final = "in_progress"


class KnownIds(Protocol):
    """The departments and services events may name (:class:`schemas.directory.Directory` is one)."""

    def has_department(self, department_id: str) -> bool: ...

    def has_service(self, service_id: str) -> bool: ...
