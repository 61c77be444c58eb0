"""A read API (:class:`~stream_processors.scorecard.read_api.ReadApi`) on a loopback HTTP port: a
stand-in for the worker's web server in tests of the remote clients."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from stream_processors.scorecard.read_api import ReadApi


@contextmanager
def serving(api: ReadApi, served: list[str] | None = None) -> Iterator[int]:
    """Serve ``api`` on 127.0.0.1 until the block ends; yields the port. Paths asked go to ``served``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if served is not None:
                served.append(parts.path)
            status, body = api.handle(parts.path, parse_qs(parts.query, keep_blank_values=True))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
