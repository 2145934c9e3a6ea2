"""One request to one reply, knowing nothing of sockets: find the route, check the
credentials, inject the faults, decode the body, and turn every refusal into the documented
error body."""

from __future__ import annotations

import sys
import time
import traceback
from typing import Final
from urllib.parse import parse_qs, urlsplit

from reconciler.files.untrusted_json import UnreadableJson, decode_json
from reconciler.sandbox.api_routes import ApiRoutes
from reconciler.sandbox.control_routes import CONTROL_PREFIX, ControlRoutes
from reconciler.sandbox.credentials import Credentials
from reconciler.sandbox.faults import Faults, FaultSettingError, RequestStats
from reconciler.sandbox.replies import DROP, Handler, Reply, error_reply
from reconciler.sandbox.store import ContactStore, DamagedStoreError
from reconciler.sandbox.wire import BadRequest

# The writes a dropped connection or an injected 500 can follow once they have committed.
BULK_WRITE_ROUTES: Final = frozenset({"POST /v2/contacts", "DELETE /v2/contacts"})


class SandboxApp:
    """Routes, auth and faults around a ContactStore."""

    def __init__(self, store: ContactStore, credentials: Credentials, faults: Faults) -> None:
        self.store = store
        self.credentials = credentials
        self.faults = faults
        self.stats = RequestStats()
        self._routes: dict[str, Handler] = {
            **ApiRoutes(store, faults).table(),
            **ControlRoutes(store, faults, self.stats).table(),
        }

    def handle(self, method: str, target: str, authorization: str | None, body: bytes) -> Reply:
        url = urlsplit(target)
        route = f"{method} {url.path.rstrip('/') or '/'}"
        handler = self._routes.get(route)
        if handler is None:
            return error_reply(404, "not_found", f"no such endpoint: {method} {url.path}")
        is_control = route.split(" ", 1)[1].startswith(CONTROL_PREFIX)
        if not is_control:
            self.stats.count(route)
            settings = self.faults.settings
            if settings.latency_ms:
                time.sleep(settings.latency_ms / 1000)
        if not self.credentials.accepts(authorization):
            return error_reply(
                401, "unauthorized", "missing, invalid or expired bearer token (API key or JWT)"
            )
        if is_control:
            return self._run(handler, body, url.query)
        decision = self.faults.admit()
        if not decision.allowed:
            headers = {}
            if self.faults.settings.retry_after:
                headers["Retry-After"] = str(decision.retry_after_seconds)
            return error_reply(
                429, "rate_limited", "too many requests in this minute; back off", **headers
            )
        commit_before_drop = route in BULK_WRITE_ROUTES and self.faults.settings.drop_after_commit
        if self.faults.take_drop():
            if commit_before_drop:
                self._run(handler, body, url.query)
            return DROP
        if self.faults.should_fail_randomly():
            return error_reply(500, "internal_error", "injected failure (fail_rate)")
        reply = self._run(handler, body, url.query)
        if (
            route in BULK_WRITE_ROUTES
            and 200 <= reply.status < 300
            and self.faults.take_commit_then_fail()
        ):
            return error_reply(500, "internal_error", "injected failure after commit")
        return reply

    def _run(self, handler: Handler, body: bytes, query: str) -> Reply:
        try:
            payload = decode_json(body) if body.strip() else None
        except UnreadableJson as problem:
            return error_reply(400, "bad_data", f"body is not valid JSON: {problem}")
        try:
            return handler(payload, parse_qs(query))
        except (BadRequest, FaultSettingError) as problem:
            return error_reply(400, "bad_data", str(problem))
        except DamagedStoreError as problem:  # a --db file damaged outside the sandbox
            return error_reply(500, "internal_error", str(problem))
        except Exception as unexpected:  # a sandbox bug must still answer, as a 500
            traceback.print_exc(file=sys.stderr)
            return error_reply(500, "internal_error", f"{type(unexpected).__name__}")
