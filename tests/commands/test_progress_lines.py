"""Progress lines in a CI log: `plan` and `apply` against the sandbox, with stderr not a
terminal and time moved by the requests themselves (a slow account, without waiting for one):
a long listing and long writes say how far they are every interval; a fast run says nothing
more than before."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from reconciler.commands.apply import ApplyRequest
from reconciler.commands.apply import run as run_apply
from reconciler.commands.context import Settings
from reconciler.commands.environment import Environment
from reconciler.commands.plan import PlanRequest
from reconciler.commands.plan import run as run_plan
from reconciler.heymarket import HeymarketClient, credentials_from_env
from reconciler.report.console import Console
from tests.account import OWNER, declare, live_phones
from tests.sandbox_handle import SandboxHandle

COUNT_PATH = "/v1/contacts/count"
CONFIG = f"ownership:\n  owner: {OWNER}\nprune:\n  max_deletes: 25\n  max_delete_percent: 100\n"


@pytest.fixture
def project_files() -> dict[str, str]:
    return {"reconciler.yaml": CONFIG}


class SlowAccount:
    """A console clock that the requests move: each request of the given kinds takes
    ``seconds`` (list pages, bulk writes, deletes), and every request is remembered."""

    def __init__(self, seconds: float, kinds: set[tuple[str, str]]) -> None:
        self.now = 1_000.0
        self.seconds = seconds
        self.kinds = kinds
        self.requests: list[tuple[str, str]] = []

    def clock(self) -> float:
        return self.now

    def connect(self, settings: Settings, environ: Mapping[str, str], insecure: bool) -> Any:
        def on_request(method: str, path: str) -> None:
            self.requests.append((method, path))
            if (method, path) in self.kinds:
                self.now += self.seconds

        return HeymarketClient(
            settings.api_url,
            credentials_from_env(environ),
            on_request=on_request,
            page_size=5,
            batch_size=3,
        )


def environment(project: Path, account: SlowAccount) -> tuple[Environment, list[str]]:
    out: list[str] = []
    err: list[str] = []
    console = Console(out=out.append, err=err.append, ask=lambda _question: "", clock=account.clock)
    env = Environment(
        environ=os.environ, cwd=project, console=console, connect_client=account.connect
    )
    return env, err


def progress_lines(err: list[str]) -> list[str]:
    return [line for line in err if re.fullmatch(r"[A-Z][a-z ]+: [\d,]+ .*\(\d+ s\)\n", line)]


def seed(sandbox: SandboxHandle, count: int, *, owned: bool = False) -> None:
    custom = {"custom": {"Managed by": OWNER}} if owned else {}
    sandbox.seed(
        [{"phone": f"1510555{n:04d}", "first": f"Person {n}", **custom} for n in range(count)]
    )


def test_a_long_listing_says_how_far_it_is_with_the_accounts_count(
    project: Path, sandbox: SandboxHandle
) -> None:
    seed(sandbox, 60)
    declare(project)
    account = SlowAccount(4.0, {("POST", "/v2/contacts/list")})
    env, err = environment(project, account)
    assert run_plan(PlanRequest(refresh="full"), env) == 0
    # 13 pages of 5 at 4 s each: a line at 12 s, 24 s, 36 s and 48 s.
    assert progress_lines(err) == [
        "Listing contacts: 15 of ~60 (12 s)\n",
        "Listing contacts: 30 of ~60 (24 s)\n",
        "Listing contacts: 45 of ~60 (36 s)\n",
        "Listing contacts: 60 of ~60 (48 s)\n",
    ]
    assert account.requests.count(("POST", COUNT_PATH)) == 1


def test_a_fast_listing_prints_no_line_and_asks_for_no_count(
    project: Path, sandbox: SandboxHandle
) -> None:
    seed(sandbox, 60)
    declare(project)
    account = SlowAccount(0.5, {("POST", "/v2/contacts/list")})
    env, err = environment(project, account)
    assert run_plan(PlanRequest(refresh="full"), env) == 0
    assert progress_lines(err) == []
    assert ("POST", COUNT_PATH) not in account.requests


def test_long_writes_and_deletes_say_how_far_they_are(
    project: Path, sandbox: SandboxHandle
) -> None:
    seed(sandbox, 9, owned=True)
    declare(project, *({"phone": f"1415555{n:04d}", "first": f"New {n}"} for n in range(30)))
    account = SlowAccount(4.0, {("POST", "/v2/contacts"), ("DELETE", "/v2/contacts")})
    env, err = environment(project, account)
    assert run_apply(ApplyRequest(auto_approve=True, prune=True), env) == 0
    # 10 batches of 3 creates, then 3 of 3 deletes, 4 s each.
    assert progress_lines(err) == [
        "Writing: 9 of 30 changes (12 s)\n",
        "Writing: 18 of 30 changes (24 s)\n",
        "Writing: 27 of 30 changes (36 s)\n",
        "Deleting: 9 of 9 contacts (12 s)\n",
    ]
    assert len(live_phones(sandbox)) == 30


def test_a_fast_apply_prints_no_progress_line(project: Path, sandbox: SandboxHandle) -> None:
    seed(sandbox, 9, owned=True)
    declare(project, *({"phone": f"1415555{n:04d}", "first": f"New {n}"} for n in range(30)))
    account = SlowAccount(0.5, {("POST", "/v2/contacts"), ("DELETE", "/v2/contacts")})
    env, err = environment(project, account)
    assert run_apply(ApplyRequest(auto_approve=True, prune=True), env) == 0
    assert progress_lines(err) == []
