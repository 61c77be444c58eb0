"""Who is asking the read API, and what they may read: headers and link parameters in, a
:class:`Reader` or an :class:`AccessRefused` out; then a request's parameters in, its
:class:`Scope` or an :class:`AccessRefused` out. No HTTP framework here: the worker's web server
and the tests' stand-in both go through :meth:`ReadApi.handle
<stream_processors.scorecard.read_api.ReadApi.handle>`, which calls this.

A head reads their own department as provider, other providers' rows only where the customer is
their department, the organisation matrix only where the directory says ``visibility:
organisation``, and comments only with a credential that names a person (a token or the proxy's
user), not with a link, which can be forwarded. Reasons never hold a secret nor the name of a
department other than the reader's own.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from schemas.directory import Directory
from schemas.secrets import matching_owner
from stream_processors.access.heads import LINK_PARAMS, Heads, link_signature, load_heads
from stream_processors.scorecard.windows import shown

Via = Literal["local", "token", "link", "proxy"]
_FALSE: Final = ("", "0", "false")


class AccessRefused(Exception):
    """A request refused before any query: ``status`` (400, 401, 403) and a reason safe to send."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _unauthorized(reason: str) -> AccessRefused:
    return AccessRefused(401, reason)


@dataclass(frozen=True)
class Reader:
    """Who is asking: a department's head, or (``department`` None) anyone on the local stack."""

    department: str | None
    via: Via
    visibility: Literal["own", "organisation"] = "organisation"


@dataclass(frozen=True)
class Target:
    """What a request reads, as far as access goes.

    ``kind``: ``provider`` (an endpoint with a ``provider`` parameter), ``matrix``, ``page`` (the
    served scorecard of ``page_department``) or ``other``. ``customer_view``: other providers'
    rows may be read for customer = the reader's department. ``comments``: free text.
    """

    kind: Literal["provider", "matrix", "page", "other"]
    customer_view: bool = False
    comments: bool = False
    page_department: str | None = None


@dataclass(frozen=True)
class Scope:
    """A request as it may be answered: its parameters (the reader's department filled in as the
    provider where none was given), rows kept only for ``only_customer`` when set, and whether
    the organisation matrix may be shown."""

    params: dict[str, str]
    only_customer: str | None = None
    matrix_shared: bool = True


def is_loopback(host: str) -> bool:
    """Whether a bind address is reachable only from this host."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ReadAccess:
    """Authentication (:meth:`authenticate`) and authorisation (:meth:`authorise`) of reads.

    ``anonymous``: requests without credentials read everything (the local stack: loopback and no
    heads file). ``trusted_user_header``: a header a reverse proxy sets to the signed-in user,
    mapped to a head by the heads file's ``proxy_users``; None (the default) ignores it.
    """

    def __init__(
        self,
        directory: Directory,
        heads: Heads | None,
        *,
        anonymous: bool,
        trusted_user_header: str | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._directory = directory
        self._heads = heads.by_department if heads is not None else {}
        self.anonymous = anonymous
        self._trusted_user_header = trusted_user_header.lower() if trusted_user_header else None
        self._now = now
        self._tokens = [
            (head.token.get_secret_value().encode(), department)
            for department, head in self._heads.items()
            if head.token is not None
        ]
        self._proxy_users = {
            user: department for department, head in self._heads.items() for user in head.proxy_users
        }

    @classmethod
    def local(cls, directory: Directory) -> ReadAccess:
        """Everyone reads everything: the local stack's read API (and tests of what it answers)."""
        return cls(directory, None, anonymous=True)

    @classmethod
    def configured(
        cls,
        directory: Directory,
        *,
        bind_host: str,
        heads_path: Path | None,
        environ: Mapping[str, str],
        trusted_user_header: str | None = None,
    ) -> ReadAccess:
        """From the settings: anonymous only on loopback without a heads file; raises HeadsError."""
        heads = load_heads(heads_path, directory, environ) if heads_path is not None else None
        return cls(
            directory,
            heads,
            anonymous=heads is None and is_loopback(bind_host),
            trusted_user_header=trusted_user_header,
        )

    # --- who ---------------------------------------------------------------------------------------

    def authenticate(self, headers: Mapping[str, str], link: Mapping[str, str]) -> Reader:
        """The reader of a request; ``headers`` lower-cased, ``link`` the link parameters given."""
        authorization = headers.get("authorization")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise _unauthorized("the Authorization header must be 'Bearer <token>'")
            department = matching_owner(self._tokens, token.strip().encode())
            if department is None:
                raise _unauthorized("unknown token")
            return self._reader(department, "token")
        if link:
            return self._link(link)
        if self._trusted_user_header is not None:
            user = headers.get(self._trusted_user_header)
            if user is not None:
                department = self._proxy_users.get(user.strip())
                if department is None:
                    raise _unauthorized("the signed-in user is not a department head here")
                return self._reader(department, "proxy")
        if self.anonymous:
            return Reader(None, "local")
        raise _unauthorized("credentials needed: 'Authorization: Bearer <token>' or a signed link")

    def _reader(self, department: str, via: Via) -> Reader:
        return Reader(department, via, self._directory.department(department).visibility)

    def _link(self, link: Mapping[str, str]) -> Reader:
        if set(link) != set(LINK_PARAMS):
            raise _unauthorized(f"a signed link has {', '.join(LINK_PARAMS)}")
        department, expires_text, signature = (link[name] for name in LINK_PARAMS)
        try:
            expires = int(expires_text)
        except ValueError:
            raise _unauthorized("the link's expires is not epoch seconds") from None
        head = self._heads.get(department)
        # A department without a link secret is checked against nothing that can match, in the
        # same time: the answer does not tell which departments have one.
        expected = (
            link_signature(head.link_secret, department, expires)
            if head is not None and head.link_secret is not None
            else "-" * 64
        )
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            raise _unauthorized("the link's signature does not match: ask for a new link")
        if expires <= self._now().timestamp():
            raise _unauthorized("the link has expired: ask for a new link")
        return self._reader(department, "link")

    # --- what --------------------------------------------------------------------------------------

    def authorise(self, reader: Reader, target: Target, params: Mapping[str, str]) -> Scope:
        """The request's :class:`Scope` for ``reader``; :class:`AccessRefused` (400/403) otherwise."""
        scope = Scope(dict(params))
        own = reader.department
        if own is None:
            return scope
        for role in ("provider", "customer"):
            value = params.get(role)
            if value is not None and not self._directory.has_department(value):
                # Not check_department's message: that one lists every department.
                raise AccessRefused(400, f"unknown {role} department {shown(value)}")
        if target.kind == "page":
            if target.page_department != own:
                raise AccessRefused(403, f"a head reads their own department's page: /scorecard/{own}")
            if params.get("with_comments", "0").lower() not in _FALSE and reader.via == "link":
                raise _comments_need_a_person()
            return replace(scope, matrix_shared=reader.visibility == "organisation")
        if target.kind == "matrix":
            if reader.visibility != "organisation":
                raise AccessRefused(403, "the organisation matrix is not shared with your department")
            return scope
        if target.kind != "provider":
            raise AccessRefused(403, "this endpoint is not open to department heads")
        if target.comments and reader.via == "link":
            raise _comments_need_a_person()
        provider, customer = params.get("provider"), params.get("customer")
        if target.customer_view and customer == own and provider != own:
            return replace(scope, only_customer=own)  # every provider's (or one's) rows for own
        if provider not in (None, own):
            raise AccessRefused(
                403,
                f"a head reads their own department as provider (provider={own}), and other "
                f"providers' rows only as their customer (customer={own})",
            )
        scope.params["provider"] = own
        return scope


def _comments_need_a_person() -> AccessRefused:
    return AccessRefused(403, "comments need the head's token; a link does not give them")
