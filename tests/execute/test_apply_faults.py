"""`apply` on a bad day, against the sandbox's injected faults: refused contacts, writes whose
outcome is unknown, deletes that fail, a backup that cannot be written, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from reconciler.cli import main
from reconciler.commands.apply import ApplyRequest
from reconciler.commands.apply import run as run_apply
from reconciler.commands.context import Settings
from reconciler.commands.environment import Environment
from reconciler.heymarket import HeymarketClient, credentials_from_env
from reconciler.report.console import Console
from tests.account import OWNER, by_phone, declare, journal_lines, owned, writes
from tests.sandbox_handle import SandboxHandle


def _approving_console(on_ask: Any = None) -> tuple[Console, list[str]]:
    """A terminal user who answers "yes" (after doing ``on_ask`` while the prompt waits)."""
    printed: list[str] = []

    def ask(question: str) -> str:
        printed.append(question)
        if on_ask is not None:
            on_ask()
        return "yes\n"

    return Console(out=printed.append, err=printed.append, ask=ask, stdin_is_tty=True), printed


def test_refused_contacts_are_reported_and_the_rest_applied(
    project: Path, sandbox: SandboxHandle
) -> None:
    owned(sandbox, "15105551000", "15105551001", "15105551099")
    declare(
        project,
        {"phone": "15105551000", "first": "Deleted meanwhile"},
        {"phone": "15105551001", "first": "Updated"},
        {"phone": "15105551002", "first": "Created meanwhile"},
        {"phone": "15105551003", "first": "Created"},
    )

    def meanwhile() -> None:
        # While the prompt waits, someone deletes one contact and adds another in the app.
        record = by_phone(sandbox)["15105551000"]
        with sandbox.client() as client:
            client.bulk_delete([record["uuid"]])
        sandbox.seed([{"phone": "15105551002", "first": "From the app"}])

    console, printed = _approving_console(meanwhile)
    request = ApplyRequest(prune=True, max_deletes=5)
    assert run_apply(request, Environment(environ=os.environ, cwd=project, console=console)) == 1
    text = "".join(printed)
    assert "Failed: update 15105551000 (contacts/team.yaml:" in text
    assert "not_found" in text
    assert "Failed: create 15105551002 (contacts/team.yaml:" in text
    assert "duplicate_phone" in text
    assert "Apply complete: 1 created, 1 updated, 0 deleted, 2 failed." in text
    # The prune is skipped when anything before it failed: the owned, undeclared contact stays.
    assert "prune skipped" in text
    live = by_phone(sandbox)
    assert live["15105551001"]["first"] == "Updated"
    assert live["15105551003"]["first"] == "Created"
    assert "15105551099" in live
    results = {(line["phone"], line["result"]) for line in journal_lines(project)}
    assert ("15105551000", "failed") in results
    assert ("15105551002", "failed") in results
    assert ("15105551003", "applied") in results


@pytest.mark.parametrize(
    "faults",
    [{"commit_then_fail": 1}, {"drop_connections": 1, "drop_after_commit": True}],
    ids=["commit-then-500", "commit-then-drop"],
)
def test_a_committed_batch_without_an_answer_creates_no_duplicate(
    project: Path, sandbox: SandboxHandle, faults: dict[str, Any]
) -> None:
    sandbox.create_fields(["Managed by"])
    phones = [f"151055520{n:02d}" for n in range(60)] + [f"151055521{n:02d}" for n in range(90)]
    declare(project, *({"phone": phone, "first": f"N{phone[-3:]}"} for phone in phones))
    console, printed = _approving_console(lambda: sandbox.set_faults(**faults))
    assert (
        run_apply(ApplyRequest(), Environment(environ=os.environ, cwd=project, console=console))
        == 0
    )
    assert "Apply complete: 150 created, 0 updated, 0 deleted, 0 failed.\n" in printed
    stored = Counter(record["phone"] for record in sandbox.contacts())
    assert set(stored) == set(phones)
    assert max(stored.values()) == 1
    # Two batches, and no third: the first one's contacts were found by the re-read.
    assert writes(sandbox) == {"POST /v2/contacts": 2}
    lines = journal_lines(project)
    first = lines[0]["phone"]
    assert [line["result"] for line in lines if line["phone"] == first] == ["ambiguous", "applied"]
    assert main(["plan", "--detailed-exitcode"]) == 0


def test_a_batch_lost_before_it_committed_is_sent_again_once(
    project: Path, sandbox: SandboxHandle
) -> None:
    sandbox.create_fields(["Managed by"])
    phones = [f"151055530{n:02d}" for n in range(30)]
    declare(project, *({"phone": phone} for phone in phones))
    console, printed = _approving_console(lambda: sandbox.set_faults(drop_connections=1))
    assert (
        run_apply(ApplyRequest(), Environment(environ=os.environ, cwd=project, console=console))
        == 0
    )
    assert "Apply complete: 30 created, 0 updated, 0 deleted, 0 failed.\n" in printed
    stored = Counter(record["phone"] for record in sandbox.contacts())
    assert set(stored) == set(phones)
    assert max(stored.values()) == 1
    assert writes(sandbox) == {"POST /v2/contacts": 2}


def _connect_with_hook(sandbox: SandboxHandle, on_delete: Any) -> Any:
    def connect(settings: Settings, environ: Mapping[str, str], insecure: bool) -> HeymarketClient:
        def on_request(method: str, path: str) -> None:
            if method == "DELETE":
                on_delete()

        return HeymarketClient(
            settings.api_url, credentials_from_env(environ), on_request=on_request
        )

    return connect


def test_the_backup_is_on_disk_before_the_delete_request(
    project: Path, sandbox: SandboxHandle
) -> None:
    seeded = owned(sandbox, "15105554000", "15105554001", "15105554002")
    declare(project, {"phone": "15105554000"})
    backups = project / ".reconciler" / "backups"
    seen_at_delete: list[list[dict[str, Any]]] = []

    def on_delete() -> None:
        files = sorted(backups.glob("prune-*.jsonl"))
        seen_at_delete.append(
            [json.loads(line) for path in files for line in path.read_text().splitlines()]
        )
        # Then the delete request is lost without being carried out.
        sandbox.set_faults(drop_connections=1)

    console, printed = _approving_console()
    code = run_apply(
        ApplyRequest(prune=True, max_deletes=2),
        Environment(
            environ=os.environ,
            cwd=project,
            console=console,
            connect_client=_connect_with_hook(sandbox, on_delete),
        ),
    )
    assert code == 1
    assert len(seen_at_delete) == 1
    in_backup = {line["phone"]: line for line in seen_at_delete[0]}
    assert set(in_backup) == {"15105554001", "15105554002"}
    record = in_backup["15105554001"]["record"]
    assert record["uuid"] == seeded[1]["uuid"]
    assert record["first"] == "Owned 01"
    assert in_backup["15105554001"]["custom_by_title"] == {"Managed by": OWNER}
    # The delete did not happen: they are still live, and apply says so.
    assert {"15105554001", "15105554002"} <= set(by_phone(sandbox))
    text = "".join(printed)
    assert "Failed: delete 15105554001" in text
    assert "still there" in text
    assert "0 deleted, 2 failed." in text
    assert {line["result"] for line in journal_lines(project)} == {"failed"}


def test_a_delete_that_commits_then_fails_is_verified_as_done(
    project: Path, sandbox: SandboxHandle
) -> None:
    owned(sandbox, "15105554100", "15105554101")
    declare(project, {"phone": "15105554100"})
    console, printed = _approving_console()
    code = run_apply(
        ApplyRequest(prune=True, max_deletes=1),
        Environment(
            environ=os.environ,
            cwd=project,
            console=console,
            connect_client=_connect_with_hook(
                sandbox, lambda: sandbox.set_faults(commit_then_fail=1)
            ),
        ),
    )
    assert code == 0
    assert "Apply complete: 0 created, 0 updated, 1 deleted, 0 failed.\n" in printed
    assert "15105554101" not in by_phone(sandbox)
    assert [line["result"] for line in journal_lines(project)] == ["applied"]


def test_an_unwritable_backup_directory_deletes_nothing(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "not-a-directory").write_text("a file where the backups should go\n")
    config = (project / "reconciler.yaml").read_text()
    (project / "reconciler.yaml").write_text(
        config + "  backup_dir: not-a-directory/backups\n", encoding="utf-8"
    )
    owned(sandbox, "15105554200", "15105554201")
    declare(project, {"phone": "15105554200"})
    assert main(["apply", "--auto-approve", "--prune", "--max-deletes", "1"]) == 1
    err = capsys.readouterr().err
    assert "cannot write the prune backup" in err
    assert "Nothing was deleted" in err
    assert "DELETE /v2/contacts" not in writes(sandbox)
    assert "15105554201" in by_phone(sandbox)


def test_ctrl_c_stops_between_batches_and_a_rerun_converges(
    project: Path, sandbox: SandboxHandle
) -> None:
    sandbox.create_fields(["Managed by"])
    phones = [f"1510555{n:04d}" for n in range(5000, 5300)]
    declare(project, *({"phone": phone} for phone in phones))
    sandbox.set_faults(latency_ms=300)
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "--auto-approve"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        deadline = time.monotonic() + 60
        while not sandbox.stats()["by_route"].get("POST /v2/contacts"):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "apply never started writing"
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    assert "Run apply again to finish" in err
    assert "Apply interrupted: " in out
    created = {record["phone"] for record in sandbox.contacts()}
    assert 0 < len(created) < len(phones)
    # The journal claims exactly what happened: no more, no less.
    assert {
        line["phone"] for line in journal_lines(project) if line["result"] == "applied"
    } == created
    sandbox.set_faults(latency_ms=0)
    assert main(["apply", "--auto-approve"]) == 0
    stored = Counter(record["phone"] for record in sandbox.contacts())
    assert set(stored) == set(phones)
    assert max(stored.values()) == 1
