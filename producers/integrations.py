"""The gateway's integrations file: who may post, with which credentials, for which sources.

One YAML file (``deploy/gateway/integrations.example.yaml`` ships as an example). Each
integration names the sources it may publish for and one or more credentials; a request that
presents any one of them is that integration. Secrets are :class:`~pydantic.SecretStr` and are
best referenced by environment variable (``token_env: DEPTPULSE_GW_JIRA_TOKEN``) so they need not
live in the file. The caller passes the environment in: this module never reads ``os.environ``.

Credential types:

``bearer``
    ``Authorization: Bearer <token>``; any route.
``zendesk-signature``
    Zendesk signed webhooks: ``X-Zendesk-Webhook-Signature`` = base64(HMAC-SHA256(secret,
    timestamp + body)) with ``X-Zendesk-Webhook-Signature-Timestamp``.
``hub-signature``
    A shared-secret HMAC as Jira Cloud admin webhooks send it: ``X-Hub-Signature: sha256=<hex
    HMAC-SHA256(secret, body)>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from schemas.directory import Seconds
from schemas.secrets import SecretError, secret_from_environment

# The vendors the gateway has a webhook route for; the route's name is the events' `source`.
WEBHOOK_SOURCES = ("jira-sm", "servicenow", "zendesk")

MIN_SECRET_LENGTH = 16

SourceName = Annotated[str, Field(min_length=1, max_length=64)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Credential(_Model):
    """A secret given inline (``secret``) or, better, by the name of an environment variable."""

    secret: SecretStr | None = Field(default=None, description="The secret itself (prefer secret_env).")
    secret_env: str | None = Field(default=None, description="Environment variable holding the secret.")

    @model_validator(mode="before")
    @classmethod
    def _token_aliases(cls, data: Any) -> Any:
        # Bearer credentials read better as `token` / `token_env`.
        if isinstance(data, dict) and data.get("type") == "bearer":
            data = dict(data)
            for alias, name in (("token", "secret"), ("token_env", "secret_env")):
                if alias in data:
                    if name in data:
                        raise ValueError(f"give either {alias!r} or {name!r}, not both")
                    data[name] = data.pop(alias)
        return data

    @model_validator(mode="after")
    def _one_source(self) -> _Credential:
        if (self.secret is None) == (self.secret_env is None):
            raise ValueError(
                "give exactly one of the secret (token/secret) or its variable (token_env/secret_env)"
            )
        if self.secret is not None and len(self.secret.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"the secret is too short: use at least {MIN_SECRET_LENGTH} characters")
        return self

    def with_secret(self, environ: Mapping[str, str]) -> Self:
        """A copy holding the secret itself, read from ``environ[secret_env]`` when referenced."""
        if self.secret is not None:
            return self
        assert self.secret_env is not None
        try:
            secret = secret_from_environment(self.secret_env, environ, MIN_SECRET_LENGTH)
        except SecretError as exc:
            raise IntegrationsError(str(exc)) from None
        return self.model_copy(update={"secret": secret})

    def secret_bytes(self) -> bytes:
        if self.secret is None:
            raise IntegrationsError(f"secret {self.secret_env} not resolved: load with load_integrations")
        return self.secret.get_secret_value().encode()


class BearerCredential(_Credential):
    type: Literal["bearer"]


class ZendeskSignatureCredential(_Credential):
    type: Literal["zendesk-signature"]


class HubSignatureCredential(_Credential):
    type: Literal["hub-signature"]


Credential = Annotated[
    BearerCredential | ZendeskSignatureCredential | HubSignatureCredential, Field(discriminator="type")
]


class RateLimit(_Model):
    """A token bucket: ``requests_per_second`` sustained, bursts up to ``burst`` requests."""

    requests_per_second: float = Field(gt=0)
    burst: int = Field(default=0, ge=0, description="Bucket size; 0 means one second's worth.")

    @property
    def capacity(self) -> float:
        return float(self.burst) if self.burst else max(1.0, self.requests_per_second)


class Integration(_Model):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
    sources: list[SourceName] = Field(
        min_length=1,
        description="Sources it may publish: webhook routes of these vendors and canonical events "
        "whose `source` is one of these.",
    )
    credentials: list[Credential] = Field(min_length=1)
    rate_limit: RateLimit | None = Field(default=None, description="None: not limited.")


class Integrations(_Model):
    replay_window: Seconds = Field(
        default=300, description="Signed timestamps older or newer than this are refused (seconds or '5m')."
    )
    integrations: list[Integration] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Integrations:
        names = [integration.name for integration in self.integrations]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate integration names {duplicates}")
        return self

    def with_secrets(self, environ: Mapping[str, str]) -> Integrations:
        """A copy with every referenced secret read from ``environ``; fails naming a missing variable.

        Also refuses one secret shared by two integrations: the credential is what identifies the
        integration, so it must be unambiguous.
        """
        owners: dict[tuple[str, bytes], str] = {}
        resolved = []
        for integration in self.integrations:
            credentials = [credential.with_secret(environ) for credential in integration.credentials]
            for credential in credentials:
                owner = owners.setdefault((credential.type, credential.secret_bytes()), integration.name)
                if owner != integration.name:
                    raise IntegrationsError(
                        f"integrations {owner!r} and {integration.name!r} share a {credential.type} secret"
                    )
            resolved.append(integration.model_copy(update={"credentials": credentials}))
        return self.model_copy(update={"integrations": resolved})


class IntegrationsError(ValueError):
    """The integrations file is unreadable or invalid, or a secret is missing; the message says which."""


def load_integrations(path: Path | str, environ: Mapping[str, str]) -> Integrations:
    """Read and check the integrations file, with every referenced secret read from ``environ``."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise IntegrationsError(f"cannot read integrations file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise IntegrationsError(f"integrations file {path} is not valid YAML: {exc}") from None
    integrations = parse_integrations(raw, where=str(path))
    try:
        return integrations.with_secrets(environ)
    except IntegrationsError as exc:
        raise IntegrationsError(f"integrations file {path}: {exc}") from None


def parse_integrations(raw: Any, where: str = "integrations") -> Integrations:
    """Validate already-parsed YAML/JSON; errors name the field (never a secret's value)."""
    try:
        return Integrations.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'file'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise IntegrationsError(f"invalid {where}: {problems}") from None
