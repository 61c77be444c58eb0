"""The department directory: departments, their heads, calendars, service catalogues with SLA
targets, alert policies, and the mappings from source-system values to department ids.

One YAML file per organisation (``deploy/directory/example-org.yaml`` ships as an example).
Load it with :func:`load_directory`; errors name the file and the offending field.
"""

from __future__ import annotations

import re
from datetime import date, time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.events import DepartmentId, Priority

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _seconds(value: Any) -> Any:
    """Accept durations as seconds (int) or as '30m', '4h', '2d'."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"invalid duration {value!r}: use seconds or e.g. '30m', '4h', '2d'")
        return int(float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    return value


# The JSON Schema shows what YAML may hold (seconds or '4h'); the constraint sits before the validator
# so pydantic emits `exclusiveMinimum` (after it, it emitted a non-standard `gt`).
Seconds = Annotated[
    int,
    Field(gt=0),
    BeforeValidator(
        _seconds,
        json_schema_input_type=Annotated[int, Field(gt=0)] | Annotated[str, Field(pattern=_DURATION.pattern)],
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WeChatApp(_Model):
    """A WeCom (WeChat Work) app that messages the head: Alertmanager's native ``wechat_configs``."""

    corp_id: Annotated[str, Field(min_length=1)]
    agent_id: Annotated[str, Field(pattern=r"^\d+$", description="The app's AgentId (digits).")]
    to_user: str | None = Field(default=None, description="WeCom user ids, '|'-separated.")
    to_party: str | None = Field(default=None, description="WeCom department ids, '|'-separated.")
    api_secret_file: str = Field(
        min_length=1,
        description="Path on Alertmanager's host of a file holding the app's secret (never the secret). "
        "Needs Alertmanager 0.31 or later.",
    )

    @model_validator(mode="after")
    def _someone(self) -> WeChatApp:
        if not (self.to_user or self.to_party):
            raise ValueError("a WeCom app needs to_user or to_party: whom to message")
        return self


_ROBOT_VARIABLE: Final = re.compile(r"[A-Z_][A-Z0-9_]*")
_OWN_RELAY_URL: Final = re.compile(r"https?://\S+")


def _robot_variable(value: str | None) -> str | None:
    # A robot's URL carries its key: it belongs in the relay's environment, not in this file. A URL
    # here keeps its earlier meaning: a relay of the deployment's own, posted Alertmanager's webhook.
    if value is not None and not (_ROBOT_VARIABLE.fullmatch(value) or _OWN_RELAY_URL.fullmatch(value)):
        raise ValueError(
            "wecom_webhook names the environment variable of `deptpulse wecom-relay` that holds the "
            "group robot's URL (e.g. DEPTPULSE_WECOM_ROBOT_HR), or the http(s) URL of a relay of your own"
        )
    return value


class Head(_Model):
    """The department head: receives alerts and scorecards."""

    name: str
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]
    wecom_webhook: Annotated[str | None, AfterValidator(_robot_variable)] = Field(
        default=None,
        description="A WeCom group robot, through the relay (`deptpulse wecom-relay`): the name of the "
        "relay's environment variable holding the robot's webhook URL, e.g. DEPTPULSE_WECOM_ROBOT_HR; "
        "or the http(s) URL of a relay of your own, posted Alertmanager's generic webhook (as before).",
    )
    wechat: WeChatApp | None = Field(default=None, description="A WeCom app messaging the head.")
    slack_channel: str | None = None
    webhook_url: str | None = None

    @property
    def wecom_robot_variable(self) -> str | None:
        """The relay's variable holding the head's group robot URL; None without one (or with a
        relay of the deployment's own)."""
        value = self.wecom_webhook
        return value if value is not None and _ROBOT_VARIABLE.fullmatch(value) else None

    @property
    def wecom_own_relay(self) -> str | None:
        """The URL of a relay of the deployment's own that wecom_webhook names, if it names one."""
        value = self.wecom_webhook
        return value if value is not None and _OWN_RELAY_URL.fullmatch(value) else None


class WorkingInterval(_Model):
    start: time
    end: time

    @model_validator(mode="after")
    def _ordered(self) -> WorkingInterval:
        if self.end <= self.start:
            raise ValueError(f"working hours end {self.end} must be after start {self.start}")
        return self


def _intervals(value: Any) -> Any:
    """'09:00-12:00' -> {'start': '09:00', 'end': '12:00'}."""
    if isinstance(value, list):
        return [
            dict(zip(("start", "end"), item.split("-"), strict=True)) if isinstance(item, str) else item
            for item in value
        ]
    return value


class Calendar(_Model):
    """Business hours of a department, in its own timezone."""

    timezone: str
    working_hours: dict[
        Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        Annotated[
            list[WorkingInterval],
            BeforeValidator(
                _intervals,
                json_schema_input_type=list[
                    Annotated[str, Field(pattern=r"^\d{1,2}:\d{2}-\d{1,2}:\d{2}$")] | WorkingInterval
                ],
            ),
        ],
    ]
    holidays: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value


class SlaTarget(_Model):
    first_response: Seconds = Field(description="Target seconds to the first provider reply.")
    resolution: Seconds = Field(description="Target seconds to resolution.")
    clock: Literal["business", "calendar"] = "business"


class Service(_Model):
    id: Annotated[str, Field(min_length=1, max_length=128)]
    name: str
    sla: dict[Priority, SlaTarget] = Field(default_factory=dict)


class AlertPolicy(_Model):
    """When a department head is alerted; sample minimums keep two answers from paging anyone."""

    csat_min_sample: int = Field(default=10, ge=1)
    nps_min_sample: int = Field(default=20, ge=1)
    sla_min_sample: int = Field(default=10, ge=1)
    satisfied_share_target: float = Field(default=0.80, gt=0, le=1)
    csat_target: float = Field(default=4.0, ge=1, le=5)
    sla_attainment_target: float = Field(default=0.95, gt=0, lt=1)
    nps_target: float = Field(default=0, ge=-100, le=100)
    # A survey campaign answered by fewer of those invited is flagged: its figures speak for few.
    survey_min_response_rate: float = Field(default=0.30, ge=0, le=1)


class SourceMapping(_Model):
    """Values of a source system's field that mean this department (e.g. a Jira project key)."""

    source: str
    field: str
    values: list[str] = Field(min_length=1)


class Department(_Model):
    id: DepartmentId
    name: str = Field(description="Display name, any language (e.g. 人力资源部).")
    locale: Literal["en", "zh"] = "en"
    head: Head
    calendar: Calendar
    services: list[Service] = Field(default_factory=list)
    default_sla: dict[Priority, SlaTarget] = Field(default_factory=dict)
    alert_policy: AlertPolicy | None = None
    mappings: list[SourceMapping] = Field(default_factory=list)
    visibility: Literal["own", "organisation"] = Field(
        default="own",
        description="What the head reads through the read API besides their own department: own, or "
        "organisation (also the provider x customer matrix of every department).",
    )


class UnmappedValue(LookupError):
    """A source-system value that no department's mapping names."""

    def __init__(self, source: str, field: str, value: str) -> None:
        super().__init__(f"no department mapping for {source} field {field!r} value {value!r}")
        self.source, self.field, self.value = source, field, value


class Directory(_Model):
    organisation: str
    alert_policy: AlertPolicy = Field(default_factory=AlertPolicy)
    departments: list[Department] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_and_unambiguous(self) -> Directory:
        seen: set[str] = set()
        for department in self.departments:
            if department.id in seen:
                raise ValueError(f"duplicate department id {department.id!r}")
            seen.add(department.id)
        services = [service.id for department in self.departments for service in department.services]
        duplicates = {service for service in services if services.count(service) > 1}
        if duplicates:
            raise ValueError(f"duplicate service ids {sorted(duplicates)}")
        mapped: dict[tuple[str, str, str], str] = {}
        for department in self.departments:
            for mapping in department.mappings:
                for value in mapping.values:
                    key = (mapping.source, mapping.field, value)
                    if mapped.setdefault(key, department.id) != department.id:
                        raise ValueError(f"{key} is mapped to both {mapped[key]!r} and {department.id!r}")
        return self

    @cached_property
    def _by_id(self) -> dict[str, Department]:
        return {department.id: department for department in self.departments}

    @cached_property
    def _services(self) -> dict[str, tuple[Department, Service]]:
        return {service.id: (d, service) for d in self.departments for service in d.services}

    @cached_property
    def _mappings(self) -> dict[tuple[str, str, str], str]:
        return {
            (mapping.source, mapping.field, value): department.id
            for department in self.departments
            for mapping in department.mappings
            for value in mapping.values
        }

    def has_department(self, department_id: str) -> bool:
        return department_id in self._by_id

    def has_service(self, service_id: str) -> bool:
        return service_id in self._services

    def department(self, department_id: str) -> Department:
        try:
            return self._by_id[department_id]
        except KeyError:
            raise KeyError(f"unknown department {department_id!r}") from None

    def department_ids(self) -> list[str]:
        return [department.id for department in self.departments]

    def policy_for(self, department_id: str) -> AlertPolicy:
        return self.department(department_id).alert_policy or self.alert_policy

    def sla_target(
        self, provider_department: str, service_category: str | None, priority: str | None
    ) -> SlaTarget | None:
        """The SLA for a request: the service's target for its priority, else the department default."""
        department = self.department(provider_department)
        if priority is None:
            return None
        if service_category is not None and service_category in self._services:
            owner, service = self._services[service_category]
            if owner.id == provider_department and priority in service.sla:
                return service.sla[priority]
        target: SlaTarget | None = department.default_sla.get(priority)  # type: ignore[call-overload]
        return target

    def resolve(self, source: str, field: str, value: str) -> str:
        """Department id for a source-system value; :class:`UnmappedValue` names what is missing."""
        try:
            return self._mappings[(source, field, value)]
        except KeyError:
            raise UnmappedValue(source, field, value) from None


class DirectoryError(ValueError):
    """The directory file is unreadable or invalid; the message names the file and field."""


def load_directory(path: Path | str) -> Directory:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DirectoryError(f"cannot read directory {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise DirectoryError(f"directory {path} is not valid YAML: {exc}") from None
    try:
        return Directory.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'directory'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        raise DirectoryError(f"invalid directory {path}: {problems}") from None
