"""The heads file: which credentials are a department's head on the read API.

One YAML file (``deploy/read-api/heads.example.yaml`` ships as an example), path in
``DEPTPULSE_READ_API_HEADS_PATH``. Per department id: ``token_env`` (the variable holding the
head's bearer token), ``link_secret_env`` (the variable holding the secret that signs the head's
links) and ``proxy_users`` (user names a trusted reverse proxy may vouch for). Secrets live only in
the environment, which the caller passes in; a short (< 32 characters) or shared secret refuses to
load, naming the department, never the value.

A signed link carries ``head=<department>&expires=<epoch seconds>&signature=<hex>``, the signature
being HMAC-SHA256 over ``<department>\\n<expires>`` with the department's link secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import urlencode

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from schemas.directory import Directory
from schemas.ids import DepartmentId
from schemas.secrets import SecretError, secret_from_environment

MIN_SECRET_LENGTH: Final = 32
LINK_PARAMS: Final = ("head", "expires", "signature")

EnvironmentVariable = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class HeadsError(ValueError):
    """The heads file is unreadable or invalid, or a secret is missing, short or shared."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HeadEntry(_Model):
    """One department's credentials, by the names of the variables that hold them."""

    token_env: EnvironmentVariable | None = Field(default=None, description="Holds the head's token.")
    link_secret_env: EnvironmentVariable | None = Field(
        default=None, description="Holds the secret that signs the head's links."
    )
    proxy_users: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="User names a trusted reverse proxy may send for this head."
    )

    @model_validator(mode="after")
    def _some_credential(self) -> HeadEntry:
        if self.token_env is None and self.link_secret_env is None and not self.proxy_users:
            raise ValueError("give token_env, link_secret_env or proxy_users")
        return self


class HeadsFile(_Model):
    heads: dict[DepartmentId, HeadEntry] = Field(min_length=1)


@dataclass(frozen=True)
class HeadCredentials:
    """A department head's resolved credentials (secrets as :class:`SecretStr`: never printed)."""

    department: str
    token: SecretStr | None
    link_secret: SecretStr | None
    proxy_users: frozenset[str]


@dataclass(frozen=True)
class Heads:
    """Every head's credentials, by department id."""

    by_department: Mapping[str, HeadCredentials]


def parse_heads(
    raw: Any, directory: Directory, environ: Mapping[str, str], where: str = "heads file"
) -> Heads:
    """Check already-parsed YAML against the directory and resolve the secrets from ``environ``."""
    try:
        entries = HeadsFile.model_validate(raw).heads
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'file'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise HeadsError(f"invalid {where}: {problems}") from None
    owners: dict[bytes, str] = {}
    proxy_owners: dict[str, str] = {}
    resolved: dict[str, HeadCredentials] = {}
    for department, entry in entries.items():
        if not directory.has_department(department):
            raise HeadsError(f"{where}: department {department!r} is not in the directory")
        secrets: list[SecretStr | None] = []
        for what, variable in (("token", entry.token_env), ("link secret", entry.link_secret_env)):
            if variable is None:
                secrets.append(None)
                continue
            try:
                secret = secret_from_environment(variable, environ, MIN_SECRET_LENGTH)
            except SecretError as exc:
                raise HeadsError(f"{where}: department {department!r}, {what}: {exc}") from None
            owner = owners.setdefault(secret.get_secret_value().encode(), department)
            if owner != department:
                raise HeadsError(f"{where}: departments {owner!r} and {department!r} share a secret")
            if secrets and secrets[0] is not None and secrets[0] == secret:
                raise HeadsError(
                    f"{where}: department {department!r} uses one secret as token and link secret"
                )
            secrets.append(secret)
        for user in entry.proxy_users:
            owner = proxy_owners.setdefault(user, department)
            if owner != department:
                raise HeadsError(f"{where}: proxy user {user!r} is named by {owner!r} and {department!r}")
        resolved[department] = HeadCredentials(
            department, secrets[0], secrets[1], frozenset(entry.proxy_users)
        )
    return Heads(resolved)


def load_heads(path: Path | str, directory: Directory, environ: Mapping[str, str]) -> Heads:
    """Read and check the heads file; :class:`HeadsError` names the file and the department."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HeadsError(f"cannot read heads file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise HeadsError(f"heads file {path} is not valid YAML: {exc}") from None
    return parse_heads(raw, directory, environ, where=f"heads file {path}")


def link_signature(link_secret: SecretStr, department: str, expires: int) -> str:
    """The hex HMAC-SHA256 of ``<department>\\n<expires>`` under the department's link secret."""
    message = f"{department}\n{expires}".encode()
    return hmac.digest(link_secret.get_secret_value().encode(), message, hashlib.sha256).hex()


def signed_link(base_url: str, department: str, link_secret: SecretStr, expires_at: datetime) -> str:
    """``<base_url>/scorecard/<department>?head=…&expires=…&signature=…``, valid until ``expires_at``."""
    expires = int(expires_at.timestamp())
    query = urlencode(
        {
            "head": department,
            "expires": expires,
            "signature": link_signature(link_secret, department, expires),
        }
    )
    return f"{base_url.rstrip('/')}/scorecard/{department}?{query}"
