"""The sandbox on a socket: the stdlib threaded HTTP server, handing each request's method,
path, Authorization header and body to SandboxApp and writing back its reply as JSON."""

from __future__ import annotations

import json
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from reconciler.sandbox.app import SandboxApp
from reconciler.sandbox.replies import DROP, error_reply


class _RequestHandler(BaseHTTPRequestHandler):
    # Keep-alive: a client listing 100k contacts reuses one connection for 1,001 requests.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this, Nagle + delayed ACK add
    # ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    server_version = "HeymarketSandbox/1"
    server: SandboxServer

    def _dispatch(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            # The body's end is unknown, so the connection cannot be reused.
            self.close_connection = True
            reply = error_reply(400, "bad_data", "Content-Length must be a whole number")
        else:
            body = self.rfile.read(length) if length > 0 else b""
            reply = self.server.app.handle(
                self.command, self.path, self.headers.get("Authorization"), body
            )
        if reply is DROP:
            self.close_connection = True
            return
        encoded = json.dumps(reply.body, separators=(",", ":")).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(encoded)))
        self.send_header("X-Request-Id", uuid.uuid4().hex)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(encoded)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the sandbox serves thousands of requests a second in benchmarks."""


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: SandboxApp) -> None:
        self.app = app
        super().__init__(address, _RequestHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"
