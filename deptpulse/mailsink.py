"""A local mail sink: an SMTP server on loopback that writes each message to ``<outbox>/NNNN-<subject>.eml``.

The generated Alertmanager configuration sends mail to ``127.0.0.1:2525`` by default; this sink is
what listens there on a developer's machine and in the demo, so alerts can be read as files.
Each file is the message as received, preceded by an ``X-Envelope-To`` header with the SMTP
recipients (the ``To`` header may differ from who the message was delivered to).

Run it with ``python -m deptpulse.mailsink --outbox DIR [--host 127.0.0.1] [--port 2525]``; it stops
on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import itertools
import re
import signal
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

DEFAULT_PORT = 2525
ENVELOPE_HEADER = "X-Envelope-To"
_SLUG_LENGTH = 60


def subject_slug(subject: str) -> str:
    """A file-name-safe form of a subject (letters and digits of any script, dashes); never empty."""
    normalised = unicodedata.normalize("NFKC", subject).lower()
    slug = re.sub(r"[^\w]+", "-", normalised).strip("-_")[:_SLUG_LENGTH].strip("-_")
    return slug or "message"


class OutboxHandler:
    """aiosmtpd handler: every accepted message becomes one numbered .eml file."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox
        outbox.mkdir(parents=True, exist_ok=True)
        # Numbers continue after what is there, so a restarted sink never overwrites a message.
        numbers = [int(path.name[:4]) for path in outbox.glob("[0-9][0-9][0-9][0-9]-*.eml")]
        self._numbers = itertools.count(max(numbers, default=0) + 1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.content
        message = email.message_from_bytes(content, policy=email.policy.default)
        with self._lock:
            number = next(self._numbers)
        path = self.outbox / f"{number:04d}-{subject_slug(str(message.get('Subject', '')))}.eml"
        header = f"{ENVELOPE_HEADER}: {', '.join(envelope.rcpt_tos)}\r\n".encode()
        partial = path.with_suffix(".part")  # readers glob *.eml: they never see half a message
        partial.write_bytes(header + content)
        partial.rename(path)
        return "250 OK"


@dataclass(frozen=True)
class OutboxMessage:
    """One message of the outbox as a reader wants it."""

    path: Path
    subject: str
    envelope_to: tuple[str, ...]
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return str(part.get_content()) if part is not None else ""


def read_outbox(outbox: Path) -> list[OutboxMessage]:
    """Every message in ``outbox``, oldest first."""
    return list(_messages(outbox))


def _messages(outbox: Path) -> Iterator[OutboxMessage]:
    for path in sorted(outbox.glob("[0-9][0-9][0-9][0-9]-*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        recipients = tuple(
            address.strip() for address in str(message.get(ENVELOPE_HEADER, "")).split(",") if address.strip()
        )
        yield OutboxMessage(path, str(message.get("Subject", "")), recipients, message)


def serve(outbox: Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Accept mail on ``host:port`` into ``outbox`` until SIGTERM or SIGINT."""
    from aiosmtpd.controller import Controller  # here: only the sink needs aiosmtpd

    controller = Controller(OutboxHandler(outbox), hostname=host, port=port)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    controller.start()
    print(f"mail sink on {host}:{port}, writing to {outbox}", flush=True)
    try:
        stop.wait()
    finally:
        controller.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deptpulse.mailsink", description=__doc__.splitlines()[0])
    parser.add_argument("--outbox", type=Path, required=True, help="Directory the .eml files go to.")
    parser.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"Port (default {DEFAULT_PORT}).")
    arguments = parser.parse_args(argv)
    serve(arguments.outbox, arguments.host, arguments.port)


if __name__ == "__main__":
    main()
