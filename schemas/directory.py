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
from typing import Annotated, Any, Final, Literal, NamedTuple
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

from schemas.ids import WAITING_ON_CUSTOMER, DepartmentId, Priority

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


# A canonical status as the adapters write it (producers/sources/common.py: slugs such as
# waiting_on_customer, in_progress, hold).
CanonicalStatus = Annotated[str, Field(min_length=1, max_length=64)]


class SlaTarget(_Model):
    first_response: Seconds = Field(description="Target seconds to the first provider reply.")
    resolution: Seconds = Field(description="Target seconds to resolution.")
    clock: Literal["business", "calendar"] = "business"
    pause_statuses: list[CanonicalStatus] | None = Field(
        default=None,
        description="Canonical statuses that pause this SLA's clock; default: the provider department's "
        "pause_statuses.",
    )


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
    first_response_attainment_target: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Goal for the share of first responses within target; default sla_attainment_target.",
    )
    resolution_attainment_target: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Goal for the share of resolutions within target; default sla_attainment_target.",
    )
    nps_target: float = Field(default=0, ge=-100, le=100)
    # A survey campaign answered by fewer of those invited is flagged: its figures speak for few.
    survey_min_response_rate: float = Field(default=0.30, ge=0, le=1)
    sla_at_risk_share: float = Field(
        default=0.20,
        gt=0,
        lt=1,
        description="An open request is at risk when at most this share of its first-response or "
        "resolution target is left on the SLA's clock (business time, pauses excluded): 0.2 warns with "
        "a fifth of the target to go. The worker's at-risk gauge, its alert and the scorecard's list.",
    )


    @property
    def first_response_target(self) -> float:
        """The first-response attainment goal: its own, else the combined verdict's."""
        return self.first_response_attainment_target or self.sla_attainment_target

    @property
    def resolution_target(self) -> float:
        """The resolution attainment goal: its own, else the combined verdict's."""
        return self.resolution_attainment_target or self.sla_attainment_target


class CustomerAgreement(_Model):
    """An operational-level agreement: what the provider promises one customer department."""

    customer: DepartmentId = Field(description="The customer department's id.")
    sla: dict[Priority, SlaTarget] = Field(
        default_factory=dict, description="Targets per priority for every service of the provider."
    )
    services: dict[Annotated[str, Field(min_length=1, max_length=128)], dict[Priority, SlaTarget]] = Field(
        default_factory=dict, description="Targets per priority for one service of the provider (its id)."
    )
    alert_policy: AlertPolicy | None = Field(
        default=None,
        description="Alert policy of this pair: the fields set here override the provider's policy.",
    )


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
    customer_agreements: list[CustomerAgreement] = Field(
        default_factory=list,
        description="Operational-level agreements per customer department: SLA targets and alert policy "
        "of the pair, where they differ from the provider's.",
    )
    pause_statuses: list[CanonicalStatus] = Field(
        default_factory=lambda: [WAITING_ON_CUSTOMER],
        description="Canonical statuses that pause this department's SLA clocks (an SLA target may set "
        "its own).",
    )
    alert_policy: AlertPolicy | None = None
    mappings: list[SourceMapping] = Field(default_factory=list)
    visibility: Literal["own", "organisation"] = Field(
        default="own",
        description="What the head reads through the read API besides their own department: own, or "
        "organisation (also the provider x customer matrix of every department).",
    )


class SlaRule(NamedTuple):
    """The SLA target that applies to a request and where in the directory it is set."""

    target: SlaTarget
    rule: str  # e.g. "departments[it].customer_agreements[finance].sla.P2"
    pause_statuses: frozenset[str]  # the canonical statuses that pause its clock


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
        for department in self.departments:
            own_services = {service.id for service in department.services}
            customers: set[str] = set()
            for agreement in department.customer_agreements:
                where = f"department {department.id!r}: customer agreement with {agreement.customer!r}"
                if agreement.customer not in seen:
                    raise ValueError(f"{where}: {agreement.customer!r} is not a department of the directory")
                if agreement.customer in customers:
                    raise ValueError(f"{where} is given twice")
                customers.add(agreement.customer)
                foreign = sorted(set(agreement.services) - own_services)
                if foreign:
                    raise ValueError(f"{where}: {foreign} are not services of {department.id!r}")
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

    @cached_property
    def _agreements(self) -> dict[tuple[str, str], CustomerAgreement]:
        return {
            (department.id, agreement.customer): agreement
            for department in self.departments
            for agreement in department.customer_agreements
        }

    def policy_for(self, department_id: str) -> AlertPolicy:
        """The provider's alert policy: its own, else the organisation's."""
        return self.department(department_id).alert_policy or self.alert_policy

    def policy_for_pair(self, provider_department: str, customer_department: str) -> AlertPolicy:
        """The alert policy of one provider x customer pair: the fields its customer agreement's
        ``alert_policy`` sets, over the provider's policy (:meth:`policy_for`)."""
        base = self.policy_for(provider_department)
        agreement = self._agreements.get((provider_department, customer_department))
        if agreement is None or agreement.alert_policy is None:
            return base
        pair = agreement.alert_policy
        return base.model_copy(update={name: getattr(pair, name) for name in pair.model_fields_set})

    def pair_policies(self) -> dict[tuple[str, str], AlertPolicy]:
        """(provider, customer) -> policy, for the pairs whose agreement sets an alert policy."""
        return {
            pair: self.policy_for_pair(*pair)
            for pair, agreement in self._agreements.items()
            if agreement.alert_policy is not None
        }

    def sla_rule(
        self,
        provider_department: str,
        service_category: str | None,
        priority: str | None,
        customer_department: str | None = None,
    ) -> SlaRule | None:
        """The SLA target of a request and the rule of the directory it comes from; None without one.

        The first that sets a target for the request's priority wins:
        1. the provider's agreement with the customer (``customer_agreements``), for the service;
        2. that agreement, for every service (its ``sla``);
        3. the provider's service (``services[].sla``);
        4. the provider's ``default_sla``.
        Without a priority there is no target. A service of another department is ignored.
        """
        department = self.department(provider_department)
        if priority is None:
            return None
        at = f"departments[{provider_department}]"
        own_service = None
        if service_category is not None and service_category in self._services:
            owner, service = self._services[service_category]
            if owner.id == provider_department:
                own_service = service
        agreement = (
            self._agreements.get((provider_department, customer_department))
            if customer_department is not None
            else None
        )
        candidates: list[tuple[str, dict[Any, SlaTarget]]] = []
        if agreement is not None:
            pair_at = f"{at}.customer_agreements[{agreement.customer}]"
            if own_service is not None and own_service.id in agreement.services:
                candidates.append(
                    (f"{pair_at}.services[{own_service.id}]", agreement.services[own_service.id])
                )
            candidates.append((f"{pair_at}.sla", agreement.sla))
        if own_service is not None:
            candidates.append((f"{at}.services[{own_service.id}].sla", own_service.sla))
        candidates.append((f"{at}.default_sla", department.default_sla))
        for rule, targets in candidates:
            target = targets.get(priority)
            if target is not None:
                pauses = department.pause_statuses if target.pause_statuses is None else target.pause_statuses
                return SlaRule(target, f"{rule}.{priority}", frozenset(pauses))
        return None

    def sla_target(
        self,
        provider_department: str,
        service_category: str | None,
        priority: str | None,
        customer_department: str | None = None,
    ) -> SlaTarget | None:
        """The SLA target of a request, or None; how rules fall back: :meth:`sla_rule`."""
        rule = self.sla_rule(provider_department, service_category, priority, customer_department)
        return None if rule is None else rule.target

    def pause_statuses(self, provider_department: str, target: SlaTarget | None = None) -> frozenset[str]:
        """The canonical statuses that pause a clock: the SLA target's own, else the provider's."""
        if target is not None and target.pause_statuses is not None:
            return frozenset(target.pause_statuses)
        return frozenset(self.department(provider_department).pause_statuses)

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
