"""The sandbox's HTTP side: routes, auth, fault injection, and the test-control endpoints.

``SandboxApp.handle`` turns one request into one reply (or a dropped connection) and knows
nothing of sockets; ``SandboxServer`` is the stdlib threaded HTTP server around it."""

from __future__ import annotations

import hmac
import json
import secrets
import signal
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, Final, TextIO
from urllib.parse import parse_qs, urlsplit

import jwt

from reconciler.core.errors import Problem, SandboxError
from reconciler.desired.yaml_safety import load_yaml
from reconciler.files.untrusted_json import UnreadableJson, decode_json
from reconciler.sandbox.faults import Faults, FaultSettingError, FaultSettings, RequestStats
from reconciler.sandbox.store import ContactStore, DamagedStoreError
from reconciler.sandbox.wire import (
    BadRequest,
    ContactRecord,
    ContactWrite,
    FailedItem,
    ItemError,
    channel_ids,
    parse_seed_contact,
    parse_timestamp,
    parse_write,
)

TOKEN_LIFETIME_SECONDS: Final = 300
# Tolerated clock difference between a client and the sandbox when checking `iat`.
CLOCK_SKEW_SECONDS: Final = 10
DEFAULT_PAGE_SIZE: Final = 30
BULK_WRITE_ROUTES: Final = frozenset({"POST /v2/contacts", "DELETE /v2/contacts"})
CONTROL_PREFIX: Final = "/_sandbox/"

# The first line the command prints; launch.py reads the URL from it.
BANNER_PREFIX = "Sandbox listening on "


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the sandbox accepts: the legacy key, or a JWT signed with id||key."""

    api_key: str = field(repr=False)
    secret_id: str = field(repr=False)
    secret_key: str = field(repr=False)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> tuple[Credentials, frozenset[str]]:
        """Each of HEYMARKET_API_KEY / _SECRET_ID / _SECRET_KEY from ``environ`` if set,
        otherwise generated; also returns the names that were generated."""
        generated: set[str] = set()

        def pick(name: str, make: Callable[[], str]) -> str:
            value = environ.get(name, "").strip()
            if value:
                return value
            generated.add(name)
            return make()

        credentials = cls(
            api_key=pick("HEYMARKET_API_KEY", lambda: "sandbox-" + secrets.token_hex(16)),
            secret_id=pick("HEYMARKET_SECRET_ID", lambda: "sandbox-id-" + secrets.token_hex(6)),
            secret_key=pick("HEYMARKET_SECRET_KEY", lambda: secrets.token_hex(24)),
        )
        return credentials, frozenset(generated)

    def accepts(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        token = authorization.removeprefix("Bearer ").strip()
        if hmac.compare_digest(token.encode(), self.api_key.encode()):
            return True
        try:
            claims = jwt.decode(
                token,
                f"{self.secret_id}||{self.secret_key}",
                algorithms=["HS256"],
                options={"require": ["iss", "iat"]},
                leeway=CLOCK_SKEW_SECONDS,
            )
        except jwt.PyJWTError:
            return False
        issued_at = claims.get("iat")
        return (
            claims.get("iss") == self.secret_id
            and isinstance(issued_at, int | float)
            and time.time() <= issued_at + TOKEN_LIFETIME_SECONDS
        )


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


# A handler's way of saying "close the socket without answering".
DROP: Final = Reply(status=0, body=None)


def error_reply(status: int, code: str, message: str, **headers: str) -> Reply:
    return Reply(status, {"error": code, "message": message}, headers)


Handler = Callable[[Any, Mapping[str, list[str]]], Reply]


class SandboxApp:
    """Routes, auth and faults around a ContactStore."""

    def __init__(self, store: ContactStore, credentials: Credentials, faults: Faults) -> None:
        self.store = store
        self.credentials = credentials
        self.faults = faults
        self.stats = RequestStats()
        self._routes: dict[str, Handler] = {
            "POST /v2/contacts/list": self._list,
            "POST /v2/contacts/search": self._search,
            "POST /v2/contacts": self._bulk_upsert,
            "DELETE /v2/contacts": self._bulk_delete,
            "POST /v1/batch/contacts": self._legacy_batch,
            "POST /v1/contacts/count": self._count,
            "POST /v1/contact-fields": self._list_fields,
            "POST /v1/contacts/fields": self._create_fields,
            "POST /_sandbox/reset": self._control_reset,
            "POST /_sandbox/seed": self._control_seed,
            "POST /_sandbox/fields": self._control_fields,
            "GET /_sandbox/contacts": self._control_contacts,
            "GET /_sandbox/faults": self._control_faults,
            "POST /_sandbox/faults": self._control_faults,
            "GET /_sandbox/stats": self._control_stats,
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

    # -- the Heymarket API -------------------------------------------------------------

    def _list(self, payload: Any, _query: Mapping[str, list[str]]) -> Reply:
        options = _object(payload or {})
        limit = _whole(options.get("limit", DEFAULT_PAGE_SIZE), "limit", minimum=1)
        page = _whole(options.get("page", 0), "page", minimum=0)
        ascending = options.get("ascending", False)
        if not isinstance(ascending, bool):
            raise BadRequest("ascending must be true or false")
        date = options.get("date")
        records = self.store.list_page(
            # larger pages are cut down silently, as documented in heymarket-api.md
            limit=min(limit, self.faults.settings.page_cap),
            page=page,
            date=None if date in (None, "") else parse_timestamp(date),
            ascending=ascending,
        )
        return Reply(200, [record.as_json() for record in records])

    def _search(self, payload: Any, _query: Mapping[str, list[str]]) -> Reply:
        phones = channel_ids(payload, "phone")
        uuids = channel_ids(payload, "id")
        if phones is None and uuids is None:
            raise BadRequest("search needs a contact_channels entry of channel_type phone or id")
        found = {r.id: r for r in self.store.find_by("phone", phones or [])}
        found.update({r.id: r for r in self.store.find_by("uuid", uuids or [])})
        return Reply(200, [found[key].as_json() for key in sorted(found)])

    def _bulk_upsert(self, payload: Any, _query: Mapping[str, list[str]]) -> Reply:
        items = _object(payload).get("contacts")
        if not isinstance(items, list):
            raise BadRequest('body must be {"contacts": [...]}')
        self._check_bulk_size(len(items))
        writes, refused = _parse_items(items)
        succeeded, failed = self.store.bulk_write(writes)
        return Reply(
            200,
            {
                "contacts": [record.as_json() for record in succeeded],
                "failed_contacts": [item.as_json() for item in refused + failed],
            },
        )

    def _bulk_delete(self, payload: Any, _query: Mapping[str, list[str]]) -> Reply:
        uuids = channel_ids(payload, "id")
        if uuids is None:
            raise BadRequest("delete needs a contact_channels entry of channel_type id")
        self._check_bulk_size(len(uuids))
        self.store.delete(uuids)
        return Reply(200, "ok")

    def _legacy_batch(self, payload: Any, query: Mapping[str, list[str]]) -> Reply:
        if not isinstance(payload, list):
            raise BadRequest("body must be a JSON array of contacts")
        self._check_bulk_size(len(payload))
        overwrite = query.get("overwrite", ["false"])[-1].lower() in ("true", "1")
        writes, refused = _parse_items(payload)
        failed = refused + self.store.legacy_batch(writes, overwrite=overwrite)
        return Reply(200, [item.as_json() for item in failed] if failed else "ok")

    def _count(self, _payload: Any, _query: Mapping[str, list[str]]) -> Reply:
        return Reply(200, {"count": self.store.count()})

    def _list_fields(self, _payload: Any, _query: Mapping[str, list[str]]) -> Reply:
        return Reply(200, [definition.as_json() for definition in self.store.fields()])

    def _create_fields(self, payload: Any, _query: Mapping[str, list[str]]) -> Reply:
        if not isinstance(payload, list) or not all(
            isinstance(item, Mapping) and isinstance(item.get("title"), str) for item in payload
        ):
            raise BadRequest('body must be [{"title": "..."}]')
        titles = [item["title"].strip() for item in payload]
        if not all(titles):
            raise BadRequest("a custom field needs a non-empty title")
        created = self.store.create_fields(titles)
        return Reply(
            200, [{"id": d.id, "title": d.title, "duplicate": d.duplicate} for d in created]
        )

    def _check_bulk_size(self, size: int) -> None:
        if size > self.faults.settings.bulk_cap:
            raise BadRequest("too many contacts")

    # -- test control ------------------------------------------------------------------

    def _control_reset(self, _payload: Any, _query: Mapping[str, list[str]]) -> Reply:
        self.store.reset()
        self.faults.reset()
        self.stats.reset()
        return Reply(200, "ok")

    def _control_seed(self, payload: Any, _query: Mapping[str, list[str]]) -> Reply:
        return Reply(200, [r.as_json() for r in self.seed(_contact_list(payload))])

    def seed(self, items: list[Any]) -> list[ContactRecord]:
        return self.store.seed([parse_seed_contact(item) for item in items])

    def _control_fields(self, payload: Any, _query: Mapping[str, list[str]]) -> Reply:
        titles = payload.get("titles") if isinstance(payload, Mapping) else payload
        if not isinstance(titles, list) or not all(isinstance(t, str) and t for t in titles):
            raise BadRequest('body must be {"titles": ["...", ...]}')
        return Reply(200, {d.title: str(d.id) for d in self.store.create_fields(titles)})

    def _control_contacts(self, _payload: Any, _query: Mapping[str, list[str]]) -> Reply:
        return Reply(200, [record.as_json() for record in self.store.all_contacts()])

    def _control_faults(self, payload: Any, _query: Mapping[str, list[str]]) -> Reply:
        if payload is not None:
            self.faults.update(_object(payload))
        return Reply(200, self.faults.settings.as_json())

    def _control_stats(self, _payload: Any, _query: Mapping[str, list[str]]) -> Reply:
        return Reply(200, self.stats.as_json())


def _object(payload: Any) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise BadRequest("body must be a JSON object")
    return payload


def _whole(value: Any, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BadRequest(f"{name} must be a whole number >= {minimum}")
    return value


def _contact_list(payload: Any) -> list[Any]:
    items = payload.get("contacts") if isinstance(payload, Mapping) else payload
    if not isinstance(items, list):
        raise BadRequest('a seed is a list of contacts (or {"contacts": [...]})')
    return items


def _parse_items(items: list[Any]) -> tuple[list[ContactWrite], list[FailedItem]]:
    writes: list[ContactWrite] = []
    refused: list[FailedItem] = []
    for item in items:
        try:
            writes.append(parse_write(item))
        except ItemError as refusal:
            refused.append(FailedItem(item, refusal.code, refusal.message))
    return writes, refused


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


def load_seed_file(path: Path) -> list[Any]:
    """A JSON or YAML list of contacts (or a mapping with a ``contacts`` list). The YAML goes
    through the same gate as contacts files: no anchors, no tags, nesting capped."""
    try:
        data = path.read_bytes()
    except OSError as problem:
        raise SandboxError(f"cannot read seed file {path}: {problem.strerror}") from None
    malformed = f"seed file {path} is not valid JSON or YAML"
    value: Any
    if path.suffix.lower() == ".json":
        try:
            value = decode_json(data)
        except UnreadableJson as problem:
            where = f"line {problem.line}: " if problem.line is not None else ""
            raise SandboxError(f"{malformed}: {where}{problem.reason}") from None
    else:
        loaded = load_yaml(data, str(path))
        if isinstance(loaded, Problem):
            raise SandboxError(
                f"{malformed}: line {loaded.line}, column {loaded.column}: {loaded.message}"
            )
        value = None if loaded is None else loaded.value
    try:
        return _contact_list(value)
    except BadRequest as problem:
        raise SandboxError(f"seed file {path}: {problem}") from None


def run_sandbox(
    *,
    host: str,
    port: int,
    db: Path | None,
    seed_file: Path | None,
    initial_faults: FaultSettings,
    environ: Mapping[str, str],
    out: TextIO,
) -> int:
    """Serve until Ctrl-C or SIGTERM; returns the exit code (0 on a clean stop)."""
    credentials, generated = Credentials.from_environment(environ)
    try:
        store = ContactStore(db)
    except Exception as problem:
        raise SandboxError(f"cannot open sandbox database {db}: {problem}") from None
    app = SandboxApp(store, credentials, Faults(initial_faults))
    if seed_file is not None:
        items = load_seed_file(seed_file)
        try:
            app.seed(items)
        except BadRequest as problem:
            raise SandboxError(f"seed file {seed_file}: {problem}") from None
    try:
        server = SandboxServer((host, port), app)
    except OSError as problem:
        raise SandboxError(f"cannot listen on {host}:{port}: {problem.strerror}") from None

    def stop(_signal: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    exports = [f"HEYMARKET_API_URL={server.url}"]
    values = {
        "HEYMARKET_API_KEY": credentials.api_key,
        "HEYMARKET_SECRET_ID": credentials.secret_id,
        "HEYMARKET_SECRET_KEY": credentials.secret_key,
    }
    # Only what the sandbox made up is printed; credentials it was given are never echoed.
    exports += [f"{name}={value}" for name, value in values.items() if name in generated]
    kept = sorted(set(values) - generated)
    print(f"{BANNER_PREFIX}{server.url}", file=out)
    note = f"  # accepting {', '.join(kept)} from the environment" if kept else ""
    print(f"export {' '.join(exports)}{note}", file=out, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        store.close()
    print("Sandbox stopped.", file=out, flush=True)
    return 0
