"""A read API (:class:`~stream_processors.scorecard.read_api.ReadApi`) on a loopback HTTP port: a
stand-in for the worker's web server in tests of the remote clients and of who may read what. The
request's headers go to ``ReadApi.handle``, as the worker's Faust views pass them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from stream_processors.scorecard.read_api import HtmlPage, ReadApi, response_headers


@contextmanager
def serving(api: ReadApi, served: list[str] | None = None) -> Iterator[int]:
    """Serve ``api`` on 127.0.0.1 until the block ends; yields the port. Paths asked go to ``served``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if served is not None:
                served.append(parts.path)
            status, body = api.handle(
                parts.path, parse_qs(parts.query, keep_blank_values=True), dict(self.headers.items())
            )
            if isinstance(body, HtmlPage):
                data, content_type = body.text.encode(), "text/html; charset=utf-8"
            else:
                data, content_type = json.dumps(body).encode(), "application/json"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in response_headers(status).items():
                self.send_header(name, value)
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
