"""The whole tool against a Heymarket-like server that is not our sandbox.

``OtherServer`` follows /work/shared/heymarket-api.md (a loopback stdlib HTTP server in a
thread) but decides differently wherever the page is silent or loose: a silent page cap of
50, a bulk cap of 50 refused with a bare 413, ``updated`` with milliseconds and ``+00:00``,
contact ids as text and custom-field ids as numbers, ``custom`` null, optional fields left
out, ``rev`` absent, the count as a bare number, the delete's "ok" as plain text, the JWT
required (the legacy key refused), ``iat`` in the future refused, a clock a few seconds
behind, 429s without ``Retry-After``, ``ascending: false`` when omitted, and a bulk write
stamping every item with one ``updated`` so runs of one moment cross page boundaries."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid as uuid_module
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest

from reconciler.cli import main
from tests.account import OWNER

SECRET_ID = "other-id"
SECRET_KEY = "other-key-0123456789abcdef0123456789"
LEGACY_KEY = "legacy-key"
PAGE_CAP = 50
BULK_CAP = 50


@dataclass
class Stored:
    id: int
    uuid: str
    phone: str
    fields: dict[str, Any]
    custom: dict[str, Any]
    rev: int
    updated: datetime


@dataclass
class ServerState:
    contacts: dict[int, Stored] = field(default_factory=dict)
    fields: dict[int, str] = field(default_factory=dict)
    next_id: int = 5000
    next_field: int = 70
    # Seconds this server's clock is behind the machine's (negative: ahead).
    skew: float = 4.0
    with_rev: bool = False
    ids_as_text: bool = True
    milliseconds: bool = True
    # How a body over BULK_CAP is refused: a bare 413, or a 400 in words of this server's own.
    oversize: str = "413"
    # Refuse a `limit` over PAGE_CAP with a 400 instead of capping it silently.
    refuse_large_limit: bool = False
    rate_limit: int = 120
    # Answer the next n requests with 429 (no Retry-After), as a busy minute would.
    busy: int = 0
    sent: list[float] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> datetime:
        moment = datetime.now(UTC) - timedelta(seconds=self.skew)
        if not self.milliseconds:
            return moment.replace(microsecond=0)
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)

    def add_field(self, title: str) -> tuple[int, bool]:
        for field_id, existing in self.fields.items():
            if existing == title:
                return field_id, True
        self.next_field += 1
        self.fields[self.next_field] = title
        return self.next_field, False

    def add_contact(self, phone: str, values: dict[str, Any], stamp: datetime) -> Stored:
        self.next_id += 1
        custom = {str(key): value for key, value in (values.pop("custom", None) or {}).items()}
        fields = {key: value for key, value in values.items() if value not in (None, "")}
        if "display_name" not in fields and ("first" in fields or "last" in fields):
            fields["display_name"] = " ".join(
                str(fields[name]) for name in ("first", "last") if name in fields
            )
        contact = Stored(self.next_id, str(uuid_module.uuid4()), phone, fields, custom, 1, stamp)
        self.contacts[contact.id] = contact
        return contact

    def render(self, contact: Stored) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": str(contact.id) if self.ids_as_text else contact.id,
            "uuid": contact.uuid,
            "phone": contact.phone,
            "contact_channels": [{"channel_type": "phone", "channel_id": contact.phone}],
            "team_id": 9,
            "created": "2020-01-01T00:00:00.000+00:00",
            "updated": contact.updated.isoformat(
                timespec="milliseconds" if self.milliseconds else "seconds"
            ),
            "custom": dict(contact.custom) or None,
        }
        record.update(contact.fields)
        if self.with_rev:
            record["rev"] = contact.rev
        return record


class Handler(BaseHTTPRequestHandler):
    server: OtherHttpServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _reply(self, status: int, body: Any, *, text: bool = False) -> None:
        data = (body if text else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if text else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Request-Id", uuid_module.uuid4().hex)
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self, state: ServerState) -> bool:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if token == LEGACY_KEY:
            return False
        try:
            claims = jwt.decode(
                token,
                f"{SECRET_ID}||{SECRET_KEY}",
                algorithms=["HS256"],
                options={"require": ["iss", "iat"], "verify_iat": False},
            )
        except jwt.PyJWTError:
            return False
        server_now = state.now().timestamp()
        issued_at = float(claims["iat"])
        # Strict: a token from the future is refused, and one older than 5 minutes.
        return bool(claims["iss"] == SECRET_ID) and issued_at <= server_now <= issued_at + 300

    def _serve(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        time.sleep(random.uniform(0.005, 0.03))
        with state.lock:
            route = f"{self.command} {self.path}"
            state.requests.append(route)
            if not self._authorized(state):
                self._reply(401, {"error": "unauthorized", "message": "invalid token"})
                return
            moment = time.monotonic()
            state.sent = [sent for sent in state.sent if sent > moment - 60]
            if state.busy > 0 or len(state.sent) >= state.rate_limit:
                state.busy = max(0, state.busy - 1)
                self._reply(429, {"error": "rate_limited", "message": "slow down"})
                return
            state.sent.append(moment)
            body = json.loads(raw) if raw else None
            handler = ROUTES.get(route)
            if handler is None:
                self._reply(404, {"error": "not_found", "message": route})
                return
            handler(self, state, body)


def refuse_oversize(handler: Handler, state: ServerState) -> None:
    if state.oversize == "413":
        handler._reply(413, "Request Entity Too Large", text=True)
    else:
        handler._reply(400, {"error": "bad_data", "message": "at most 50 contacts per call"})


def list_contacts(handler: Handler, state: ServerState, body: dict[str, Any]) -> None:
    limit = int(body.get("limit", 30))
    if limit > PAGE_CAP and state.refuse_large_limit:
        handler._reply(400, {"error": "bad_data", "message": "limit must be 1..50"})
        return
    limit = min(limit, PAGE_CAP)
    page = int(body.get("page", 0))
    ascending = bool(body.get("ascending", False))
    date = body.get("date")
    bound = datetime.fromisoformat(date.replace("Z", "+00:00")) if date else None
    order = sorted(state.contacts.values(), key=lambda c: (c.updated, c.id), reverse=not ascending)
    if bound is not None:
        order = [c for c in order if (c.updated >= bound if ascending else c.updated <= bound)]
    chosen = order[page * limit : (page + 1) * limit]
    handler._reply(200, [state.render(contact) for contact in chosen])


def search(handler: Handler, state: ServerState, body: dict[str, Any]) -> None:
    phones = {str(p) for ch in body["contact_channels"] for p in ch["channel_ids"]}
    found = [state.render(c) for c in state.contacts.values() if c.phone in phones]
    handler._reply(200, found)


def count(handler: Handler, state: ServerState, body: Any) -> None:
    handler._reply(200, len(state.contacts))


def list_fields(handler: Handler, state: ServerState, body: Any) -> None:
    handler._reply(200, [{"id": key, "title": title} for key, title in state.fields.items()])


def create_fields(handler: Handler, state: ServerState, body: list[dict[str, str]]) -> None:
    answer = []
    for item in body:
        field_id, duplicate = state.add_field(item["title"])
        answer.append({"id": field_id, "title": item["title"], "duplicate": duplicate})
    handler._reply(200, answer)


def upsert(handler: Handler, state: ServerState, body: dict[str, Any]) -> None:
    items = body["contacts"]
    if len(items) > BULK_CAP:
        refuse_oversize(handler, state)
        return
    stamp = state.now()
    done: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    by_uuid = {c.uuid: c for c in state.contacts.values()}
    phones = {c.phone for c in state.contacts.values()}
    for item in items:
        values = {k: v for k, v in item.items() if k not in ("contact_id", "contact_channels")}
        phone = item["contact_channels"][0]["channel_id"]
        unknown = [key for key in (values.get("custom") or {}) if int(key) not in state.fields]
        if unknown:
            failed.append({"contact": item, "error": "invalid_field", "message": "no such field"})
            continue
        if "contact_id" in item:
            contact = by_uuid.get(item["contact_id"])
            if contact is None:
                failed.append({"contact": item, "error": "not_found", "message": "no contact"})
                continue
            for key, value in (values.pop("custom", None) or {}).items():
                if value in (None, ""):
                    contact.custom.pop(str(key), None)
                else:
                    contact.custom[str(key)] = value
            for key, value in values.items():
                # Cleared fields, and an opt-out that is off, are left out of the record.
                if value is None or value == "" or value is False:
                    contact.fields.pop(key, None)
                else:
                    contact.fields[key] = value
            contact.rev += 1
            contact.updated = stamp
        else:
            if phone in phones:
                failed.append({"contact": item, "error": "duplicate_phone", "message": "exists"})
                continue
            if values.get("is_opted_out") is False:
                values.pop("is_opted_out")
            contact = state.add_contact(phone, values, stamp)
            phones.add(phone)
        done.append({"id": contact.id, "uuid": contact.uuid})
    answer: dict[str, Any] = {"contacts": done}
    if failed:
        answer["failed_contacts"] = failed
    handler._reply(200, answer)


def delete(handler: Handler, state: ServerState, body: dict[str, Any]) -> None:
    uuids = {u for ch in body["contact_channels"] for u in ch["channel_ids"]}
    if len(uuids) > BULK_CAP:
        refuse_oversize(handler, state)
        return
    for contact in [c for c in state.contacts.values() if c.uuid in uuids]:
        del state.contacts[contact.id]
    handler._reply(200, "ok", text=True)


ROUTES = {
    "POST /v2/contacts/list": list_contacts,
    "POST /v2/contacts/search": search,
    "POST /v1/contacts/count": count,
    "POST /v1/contact-fields": list_fields,
    "POST /v1/contacts/fields": create_fields,
    "POST /v2/contacts": upsert,
    "DELETE /v2/contacts": delete,
}


class OtherHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: ServerState) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = state

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


# Two servers that differ from the sandbox, and from each other, wherever the page allows.
VARIANTS: dict[str, Callable[[], ServerState]] = {
    "413-text-ids-ms-no-rev-slow-clock": ServerState,
    "400-wording-int-ids-seconds-rev-fast-clock": lambda: ServerState(
        skew=-5.0,
        with_rev=True,
        ids_as_text=False,
        milliseconds=False,
        oversize="400",
        refuse_large_limit=True,
    ),
}


@pytest.fixture(params=sorted(VARIANTS))
def other(request: pytest.FixtureRequest) -> Iterator[OtherHttpServer]:
    server = OtherHttpServer(VARIANTS[request.param]())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def project_files() -> dict[str, str]:
    return {
        "reconciler.yaml": f"ownership:\n  owner: {OWNER}\napi:\n  requests_per_minute: 100\n"
        "prune:\n  max_deletes: 50\n  max_delete_percent: 50\n"
    }


@pytest.fixture
def project_env(other: OtherHttpServer) -> dict[str, str]:
    """The other server's address and its JWT pair, instead of the sandbox's."""
    return {
        "HEYMARKET_API_URL": other.url,
        "HEYMARKET_SECRET_ID": SECRET_ID,
        "HEYMARKET_SECRET_KEY": SECRET_KEY,
    }


def declare(project: Path, contacts: list[dict[str, Any]]) -> None:
    (project / "contacts" / "team.yaml").write_text(
        json.dumps({"contacts": contacts}), encoding="utf-8"
    )


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["plan", "--format", "json", *args]) in (0, 2)
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


def seed_app_contacts(state: ServerState, count: int) -> None:
    """Contacts typed in the app: unowned, many sharing one moment across the page cap."""
    stamp = state.now() - timedelta(days=1)
    for n in range(count):
        values: dict[str, Any] = {"first": f"App{n}"}
        if n % 3 == 0:
            values["email"] = f"app{n}@example.com"
        state.add_contact(f"1415555{n:04d}", values, stamp if n < count - 5 else state.now())


def test_plan_apply_prune_export_restore_against_another_server(
    project: Path, other: OtherHttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    state = other.state
    state.add_field("Tier")
    seed_app_contacts(state, 70)
    declared: list[dict[str, Any]] = [
        {"phone": f"1628555{n:04d}", "first": f"New {n}", "custom": {"Tier": "gold"}}
        for n in range(80)
    ]
    declare(project, declared)

    first = plan_json(capsys)
    assert first["summary"]["create"] == 80
    state.busy = 2  # a busy minute: 429s without Retry-After, then room again
    assert main(["apply", "--auto-approve"]) == 0
    assert len(state.contacts) == 150
    assert main(["plan", "--detailed-exitcode"]) == 0
    assert main(["plan", "--detailed-exitcode", "--refresh", "full"]) == 0

    declare(project, declared[:60])
    assert main(["apply", "--auto-approve", "--prune"]) == 0
    live_phones = {contact.phone for contact in state.contacts.values()}
    assert len(live_phones) == 130
    assert not any(f"1628555{n:04d}" in live_phones for n in range(60, 80))
    assert all(f"1415555{n:04d}" in live_phones for n in range(70))
    assert main(["plan", "--prune", "--detailed-exitcode"]) == 0

    assert main(["export", "--out", "exported"]) == 0
    adoption = plan_json(capsys, "--contacts", "exported", "--prune")
    assert adoption["summary"] == {"create": 0, "update": 70, "delete": 0, "unchanged": 60}
    assert all(change["adopt"] for change in adoption["changes"])

    backups = sorted((project / ".reconciler" / "backups").iterdir())
    assert main(["restore", "--auto-approve", str(backups[-1])]) == 0
    assert len(state.contacts) == 150
    restored = plan_json(capsys, "--contacts", "exported", "--prune")
    assert restored["summary"]["delete"] == 20


def test_a_saved_plan_applies_once_and_is_refused_once_the_server_changed_a_contact(
    project: Path, other: OtherHttpServer
) -> None:
    state = other.state
    seed_app_contacts(state, 10)
    declare(project, [{"phone": f"1415555{n:04d}", "last": "Adopted"} for n in range(10)])
    assert main(["plan", "--out", "adopt.plan"]) == 0
    assert main(["apply", "--auto-approve", "adopt.plan"]) == 0
    assert all(contact.fields.get("last") == "Adopted" for contact in state.contacts.values())

    declare(project, [{"phone": f"1415555{n:04d}", "last": "Renamed"} for n in range(10)])
    assert main(["plan", "--out", "rename.plan"]) == 0
    time.sleep(0.01)  # past the millisecond of the plan's reads (the other server has `rev`)
    touched = next(iter(state.contacts.values()))
    touched.fields["first"] = "Typed in the app meanwhile"
    touched.rev += 1
    touched.updated = state.now()
    assert main(["apply", "--auto-approve", "rename.plan"]) == 3
    assert not any(contact.fields.get("last") == "Renamed" for contact in state.contacts.values())


def test_the_legacy_key_refused_by_a_server_that_requires_the_jwt_names_the_variable(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HEYMARKET_SECRET_ID")
    monkeypatch.delenv("HEYMARKET_SECRET_KEY")
    monkeypatch.setenv("HEYMARKET_API_KEY", LEGACY_KEY)
    declare(project, [{"phone": "14155550000"}])
    assert main(["plan"]) == 1
    error = capsys.readouterr().err
    assert "HEYMARKET_API_KEY" in error and LEGACY_KEY not in error
    assert "set HEYMARKET_SECRET_ID and HEYMARKET_SECRET_KEY instead" in error
