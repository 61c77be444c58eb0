"""Secrets referenced by environment variable, and constant-time matching of a presented one.

Shared by the gateway's integrations file and the read API's heads file: both name the variable
that holds each secret (``token_env``), and the caller passes the environment in.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from typing import TypeVar

from pydantic import SecretStr

Owner = TypeVar("Owner")


class SecretError(ValueError):
    """A referenced secret is missing or too short; the message names the variable, never the value."""


def secret_from_environment(variable: str, environ: Mapping[str, str], min_length: int) -> SecretStr:
    """``environ[variable]`` as a :class:`SecretStr`; :class:`SecretError` when unset or too short."""
    value = environ.get(variable)
    if not value:
        raise SecretError(f"environment variable {variable} is not set (it holds a secret)")
    if len(value) < min_length:
        raise SecretError(
            f"environment variable {variable} is too short: use at least {min_length} characters"
        )
    return SecretStr(value)


def matching_owner(candidates: Iterable[tuple[bytes, Owner]], presented: bytes) -> Owner | None:
    """The owner of the candidate equal to ``presented``: compared in constant time against every
    candidate, no early exit, so timing tells nothing about which one, if any, came close."""
    found: Owner | None = None
    for expected, owner in candidates:
        if hmac.compare_digest(expected, presented) and found is None:
            found = owner
    return found
