"""Sending a digest: a multipart message through the SMTP relay Alertmanager uses, with bounded retries.

A temporary failure (the relay unreachable, a 4xx answer) is tried again after 1 s, then 2 s (three
tries in all); a permanent one (a 5xx answer: recipient or sender refused, login refused) is not.
Failures come back as a :class:`Delivery` with the reason, never as an exception.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.errors import HeaderDefect, HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from pydantic import SecretStr

from stream_processors.digest.compose import DigestMail

TIMEOUT_SECONDS = 30.0
ATTEMPTS = 3
FIRST_DELAY_SECONDS = 1.0


@dataclass(frozen=True)
class SmtpRelay:
    """Where and how mail is sent: the same values Alertmanager's configuration holds."""

    smarthost: str  # host:port
    sender: str
    hello: str = "localhost"
    require_tls: bool = False
    username: str | None = None
    password: SecretStr | None = None

    @property
    def host(self) -> str:
        return self.smarthost.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.smarthost.rsplit(":", 1)[1])


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    attempts: int
    reason: str = ""


def address_problem(address: str) -> str | None:
    """Why ``address`` cannot receive mail (RFC 5322 addr-spec), or None when it can."""
    if not address.strip():
        return "no e-mail address"
    try:
        parsed = Address(addr_spec=address.strip())
    except (HeaderDefect, HeaderParseError, ValueError, IndexError) as exc:
        return f"invalid e-mail address {address!r}: {exc}"
    if not parsed.username or not parsed.domain:
        return f"invalid e-mail address {address!r}: it needs a user and a domain"
    return None


def build_message(mail: DigestMail, sender: str, to: str, now: datetime) -> EmailMessage:
    """The multipart/alternative message: plain text first, HTML second."""
    message = EmailMessage()
    message["Subject"] = mail.subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["Content-Language"] = mail.lang
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


def send(relay: SmtpRelay, message: EmailMessage) -> None:
    """One attempt: connect, STARTTLS and log in as configured, send, quit."""
    with smtplib.SMTP(relay.host, relay.port, local_hostname=relay.hello, timeout=TIMEOUT_SECONDS) as smtp:
        if relay.require_tls:
            smtp.starttls(context=ssl.create_default_context())
        if relay.username:
            smtp.login(relay.username, relay.password.get_secret_value() if relay.password else "")
        smtp.send_message(message)


def _permanent(exc: Exception) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    code = getattr(exc, "smtp_code", None)
    return isinstance(code, int) and code >= 500


def _reason(relay: SmtpRelay, exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = "; ".join(
            f"{who}: {code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
            for who, (code, text) in exc.recipients.items()
        )
        return f"the mail relay {relay.smarthost} refused the recipient ({refused})"
    if isinstance(exc, smtplib.SMTPResponseException):
        text = (
            exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        )
        return f"the mail relay {relay.smarthost} answered {exc.smtp_code} {text}"
    if isinstance(exc, (smtplib.SMTPException, ssl.SSLError)):
        return f"the mail relay {relay.smarthost}: {exc}"
    detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"the mail relay {relay.smarthost} is unreachable: {detail}"


def deliver(
    relay: SmtpRelay,
    message: EmailMessage,
    *,
    attempts: int = ATTEMPTS,
    first_delay: float = FIRST_DELAY_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    attempt: Callable[[SmtpRelay, EmailMessage], None] = send,
) -> Delivery:
    """Send with retries and doubling delays; the outcome, never an exception."""
    reason = ""
    for number in range(1, attempts + 1):
        try:
            attempt(relay, message)
        except (smtplib.SMTPException, OSError) as exc:  # OSError: refused, unreachable, timeout, TLS
            reason = _reason(relay, exc)
            if _permanent(exc):
                return Delivery(False, number, reason)
            if number < attempts:
                sleep(first_delay * 2 ** (number - 1))
            continue
        return Delivery(True, number)
    return Delivery(False, attempts, f"{reason} (tried {attempts} times)")
