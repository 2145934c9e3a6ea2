"""A large apply on a bad day: random 500s, writes that commit and then fail, dropped
connections (before and after the commit), latency, and bursts of 429 with and without
``Retry-After``, all at once. The run must end in exactly the declared state, with no
contact created twice, every change either applied or reported, and a number of requests
that stays within what the faults can explain.

The short version runs in the default suite; ``pytest -m slow`` runs 5,000 changes."""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.commands.apply import ApplyRequest
from reconciler.commands.apply import run as run_apply
from reconciler.commands.context import (
    Settings,
    cache_directory,
    connect,
    fetch_live_state,
    load_desired,
    make_plan,
    resolve_settings,
)
from reconciler.commands.environment import Environment
from reconciler.heymarket import HeymarketClient, credentials_from_env
from reconciler.report.console import Console
from tests.account import journal_lines
from tests.sandbox_handle import SandboxHandle

OWNER = "soak-team"
MARKER = "Managed by"
PAGE = 100
# Real seconds the client may sleep per retry: the sandbox's Retry-After is counted in whole
# seconds (up to a minute), which a test cannot afford to wait for.
SLEEP_CAP_SECONDS = 0.02
MAX_APPLY_RUNS = 3


@pytest.fixture
def project_files() -> dict[str, str]:
    return {
        "reconciler.yaml": f"ownership:\n  owner: {OWNER}\napi:\n  requests_per_minute: 100000\n"
        "prune:\n  max_delete_percent: 100\n"
    }


@dataclass
class CountingTransport(httpx.BaseTransport):
    """The real HTTP transport, with a count of what came back: what the faults cost."""

    inner: httpx.HTTPTransport = field(default_factory=httpx.HTTPTransport)
    statuses: Counter[int] = field(default_factory=Counter)
    retry_after_headers: Counter[bool] = field(default_factory=Counter)
    lost: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = self.inner.handle_request(request)
        except httpx.TransportError:
            with self.lock:
                self.lost += 1
            raise
        with self.lock:
            self.statuses[response.status_code] += 1
            if response.status_code == 429:
                self.retry_after_headers["Retry-After" in response.headers] += 1
        return response

    def close(self) -> None:
        self.inner.close()

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + self.lost

    @property
    def faulted(self) -> int:
        """Answers that were 5xx or never came: each costs a retry or a re-read and re-send."""
        return sum(n for status, n in self.statuses.items() if status >= 500) + self.lost


def _short_sleep(seconds: float) -> None:
    time.sleep(min(max(seconds, 0.0), SLEEP_CAP_SECONDS))


@dataclass(frozen=True)
class Account:
    creates: list[str]
    updates: list[str]
    deletes: list[str]

    @property
    def declared(self) -> list[str]:
        return self.creates + self.updates

    @property
    def changes(self) -> int:
        return len(self.creates) + len(self.updates) + len(self.deletes)


def _prepare(
    project: Path, sandbox: SandboxHandle, creates: int, updates: int, deletes: int
) -> Account:
    account = Account(
        creates=[f"1520000{n:04d}" for n in range(creates)],
        updates=[f"1530000{n:04d}" for n in range(updates)],
        deletes=[f"1540000{n:04d}" for n in range(deletes)],
    )
    marker_id = sandbox.create_fields([MARKER])[MARKER]
    sandbox.seed(
        [
            {"phone": phone, "first": "Old", "custom": {marker_id: OWNER}}
            for phone in account.updates + account.deletes
        ]
    )
    (project / "contacts" / "team.json.yaml").write_text(
        json.dumps({"contacts": [_declared(phone) for phone in account.declared]}),
        encoding="utf-8",
    )
    return account


def _declared(phone: str) -> dict[str, Any]:
    return {"phone": phone, "first": f"First {phone[-4:]}", "last": f"Last {phone[3:5]}"}


@dataclass
class RateLimitBursts:
    """Every so often, a burst of 429s (the sandbox admits one request, then refuses), first
    with ``Retry-After``, then without; between bursts, a dropped connection is armed, the
    write behind it committed or not, in turn."""

    sandbox: SandboxHandle
    transport: CountingTransport
    stop: threading.Event = field(default_factory=threading.Event)
    bursts: int = 0

    def run(self) -> None:
        flip = True
        while not self.stop.is_set():
            self.sandbox.set_faults(rate_limit=1, retry_after=True)
            self.bursts += 1
            self._until_refused(with_header=True)
            self.sandbox.set_faults(retry_after=False)
            self._until_refused(with_header=False)
            self.sandbox.set_faults(rate_limit=0, drop_connections=1, drop_after_commit=flip)
            flip = not flip
            self.stop.wait(0.2)

    def _until_refused(self, *, with_header: bool) -> None:
        """Until the client has met one more such 429 (or a moment has passed)."""
        seen = self.transport.retry_after_headers[with_header]
        deadline = time.monotonic() + 0.3
        while self.transport.retry_after_headers[with_header] == seen:
            if time.monotonic() > deadline or self.stop.wait(0.005):
                return

    @contextlib.contextmanager
    def running(self) -> Iterator[RateLimitBursts]:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            thread.join()
            self.sandbox.set_faults(rate_limit=0)


def _fault_free_run(account: Account, live_before: int) -> int:
    """The requests of one apply with no fault: the listing (the larger of the account before
    and after, plus the snapshot's check), the field list, the bulk writes, and for the prune
    a re-read, the deletes and a verifying search. A rerun plans from the same declarations
    against an account closer to them, so it needs no more."""
    listing = max(live_before, len(account.declared)) // PAGE + 2
    writes = math.ceil(len(account.declared) / PAGE)
    prune = 3 * math.ceil(len(account.deletes) / PAGE)
    return listing + 1 + writes + prune


def _soak(project: Path, sandbox: SandboxHandle, creates: int, updates: int, deletes: int) -> None:
    account = _prepare(project, sandbox, creates, updates, deletes)
    live_before = len(account.updates) + len(account.deletes)
    environ = {**os.environ, **sandbox.env()}
    transport = CountingTransport()

    def connect_client(
        settings: Settings, env: Mapping[str, str], _insecure: bool
    ) -> HeymarketClient:
        return HeymarketClient(
            settings.api_url,
            credentials_from_env(env),
            requests_per_minute=settings.config.api.requests_per_minute,
            transport=transport,
            sleep=_short_sleep,
            max_retry_wait=3600.0,
        )

    sandbox.set_faults(
        fail_rate=0.03,
        commit_then_fail=4,
        drop_connections=4,
        drop_after_commit=True,
        latency_ms=1,
    )
    printed: list[str] = []
    console = Console(out=printed.append, err=printed.append, ask=lambda _q: "no")
    request = ApplyRequest(auto_approve=True, prune=True, max_deletes=len(account.deletes))
    codes: list[int] = []
    outputs: list[str] = []
    bursts = RateLimitBursts(sandbox, transport)
    with bursts.running():
        for _run in range(MAX_APPLY_RUNS):
            printed.clear()
            journaled = len(journal_lines(project))
            code = run_apply(
                request,
                Environment(
                    environ=environ, cwd=project, console=console, connect_client=connect_client
                ),
            )
            codes.append(code)
            outputs.append("".join(printed))
            _every_change_applied_or_reported(journal_lines(project)[journaled:], printed)
            if code == 0:
                break
    assert codes[-1] == 0, "".join(printed)
    # The sandbox, like Heymarket, refuses a second contact with a phone: a refusal here would
    # mean a write whose outcome was unknown was sent again blindly.
    assert not any("duplicate_phone" in output for output in outputs)
    sandbox.set_faults(fail_rate=0.0, latency_ms=0, commit_then_fail=0, drop_connections=0)

    stored = sandbox.contacts()
    phones = Counter(record["phone"] for record in stored)
    assert max(phones.values()) == 1, [p for p, n in phones.items() if n > 1][:5]
    assert set(phones) == set(account.declared)
    for record in stored:
        wanted = _declared(record["phone"])
        assert (record["first"], record["last"]) == (wanted["first"], wanted["last"])
        assert OWNER in record["custom"].values()

    settings = resolve_settings(
        config_file=None, contacts_dir=None, api_url=None, environ=environ, cwd=project
    )
    with connect(settings, environ) as client:
        live = fetch_live_state(client, refresh="full", cache_dir=cache_directory(settings))
    assert not make_plan(load_desired(settings), live, settings.config, prune=True).plan.changes

    # Each fault costs at most a retry of its request, or for a batch a re-read and a re-send
    # (whose own faults are counted again); a 429 costs itself. A delete whose answer never
    # came is reported, not retried, so another run is needed: each run costs no more than a
    # fault-free one.
    bound = len(codes) * _fault_free_run(account, live_before)
    bound += transport.statuses[429] + 3 * transport.faulted
    assert transport.faulted > 0
    assert transport.retry_after_headers[True] > 0 and transport.retry_after_headers[False] > 0
    assert transport.requests <= bound, (transport.requests, bound, transport.statuses)


def _every_change_applied_or_reported(lines: list[dict[str, Any]], printed: list[str]) -> None:
    """Each contact a run wrote or tried to write is in the journal as applied, or the run
    said it failed (``Failed: ...``): nothing is left in silence."""
    settled = {line["phone"] for line in lines if line["result"] == "applied"}
    text = "".join(printed)
    for line in lines:
        if line["phone"] not in settled:
            assert f"Failed: {line['action']} {line['phone']}" in text, (line, text[-2000:])


def test_a_faulty_day_converges_600_changes(project: Path, sandbox: SandboxHandle) -> None:
    _soak(project, sandbox, creates=300, updates=250, deletes=50)


@pytest.mark.slow
def test_a_faulty_day_converges_5000_changes(project: Path, sandbox: SandboxHandle) -> None:
    _soak(project, sandbox, creates=3000, updates=1800, deletes=200)
