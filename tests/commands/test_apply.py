"""`reconciler apply` end to end against the sandbox over real HTTP: it converges, and every
guard refuses with exit 3 before a single write request."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.commands.apply import ApplyRequest
from reconciler.commands.apply import run as run_apply
from reconciler.commands.context import LiveState, load_desired, make_plan, resolve_settings
from reconciler.commands.environment import Environment
from reconciler.core.errors import ApprovalRequiredError
from reconciler.files.saved_plans import (
    current_provenance,
    write_saved_plan,
)
from reconciler.heymarket import HeymarketClient, credentials_from_env
from reconciler.report.console import Console
from tests.account import (
    CONFIG,
    OWNER,
    by_phone,
    declare,
    journal_lines,
    owned,
    writes,
)
from tests.sandbox_handle import SandboxHandle


def test_apply_then_plan_is_empty(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    fields = sandbox.create_fields(["Tier"])
    sandbox.seed(
        [
            {"phone": "15105550001", "first": "Unmarked", "email": "old@example.com"},
            {"phone": "15105550002", "first": "Stays", "custom": {fields["Tier"]: "bronze"}},
        ]
    )
    declare(
        project,
        {"phone": "15105550001", "first": "Adopted", "email": "new@example.com"},
        {"phone": "15105550002", "custom": {"Tier": "gold"}},
        {
            "phone": "15105550003",
            "first": "New",
            "is_opted_out": True,
            "custom": {"Tier": "silver"},
        },
    )
    assert main(["apply", "--auto-approve"]) == 0
    out = capsys.readouterr().out
    assert "Apply complete: 1 created, 2 updated, 0 deleted, 0 failed." in out

    live = by_phone(sandbox)
    marker_id = next(k for k, v in live["15105550003"]["custom"].items() if v == OWNER)
    assert live["15105550001"]["first"] == "Adopted"
    assert live["15105550001"]["custom"][marker_id] == OWNER
    assert live["15105550002"]["custom"][fields["Tier"]] == "gold"
    assert live["15105550003"]["is_opted_out"] is True
    # One field creation (the marker) and one bulk write for all three contacts.
    assert writes(sandbox) == {"POST /v1/contacts/fields": 1, "POST /v2/contacts": 1}

    assert main(["plan", "--detailed-exitcode"]) == 0
    assert "No changes." in capsys.readouterr().out
    assert main(["apply", "--auto-approve"]) == 0
    assert "No changes." in capsys.readouterr().out
    assert writes(sandbox) == {"POST /v1/contacts/fields": 1, "POST /v2/contacts": 1}

    lines = journal_lines(project)
    assert [(line["action"], line["phone"], line["result"]) for line in lines] == [
        ("create", "15105550003", "applied"),
        ("update", "15105550001", "applied"),
        ("update", "15105550002", "applied"),
    ]
    assert all(line["contact_id"] == live[line["phone"]]["uuid"] for line in lines)


def test_invalid_desired_state_makes_no_request(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    owned(sandbox, "15105550010")
    (project / "contacts" / "bad.yaml").write_text(
        'contacts:\n  - phone: "15105550011"\n    frist: Typo\n', encoding="utf-8"
    )
    assert main(["apply", "--auto-approve", "--prune", "--max-deletes", "5"]) == 1
    assert "contacts/bad.yaml:3:5" in capsys.readouterr().err
    assert sandbox.stats()["requests"] == 0
    assert "15105550010" in by_phone(sandbox)


def _guard_setup(project: Path, sandbox: SandboxHandle, config: str) -> None:
    """Two owned contacts no longer declared among ten owned, plus a create and a missing
    custom field: a guard that lets anything through shows up as a write."""
    (project / "reconciler.yaml").write_text(config, encoding="utf-8")
    phones = [f"151055501{n:02d}" for n in range(10)]
    owned(sandbox, *phones)
    declare(
        project,
        *({"phone": phone} for phone in phones[2:]),
        {"phone": "15105550199", "first": "New", "custom": {"Brand new field": "x"}},
    )


@pytest.mark.parametrize(
    ("config", "args", "message"),
    [
        (
            f"ownership:\n  owner: {OWNER}\nprune:\n  max_deletes: 1\n",
            ["--auto-approve", "--prune"],
            "over prune.max_deletes (1)",
        ),
        (
            f"ownership:\n  owner: {OWNER}\nprune:\n  max_delete_percent: 5\n",
            ["--auto-approve", "--prune"],
            "2 is 20.0% of 10 owned contacts, over prune.max_delete_percent (5%)",
        ),
        (CONFIG, ["--auto-approve", "--prune", "--max-deletes", "1"], "over --max-deletes (1)"),
        (CONFIG, [], "stdin is not a terminal"),
        (CONFIG, ["--prune"], "--auto-approve"),
    ],
    ids=["cap-by-count", "cap-by-percent", "cap-for-this-run", "no-tty", "no-tty-prune"],
)
def test_guards_refuse_with_exit_3_and_write_nothing(
    project: Path,
    sandbox: SandboxHandle,
    capsys: pytest.CaptureFixture[str],
    config: str,
    args: list[str],
    message: str,
) -> None:
    _guard_setup(project, sandbox, config)
    before = sandbox.contacts()
    assert main(["apply", *args]) == 3
    assert message in capsys.readouterr().err
    assert writes(sandbox) == {}
    assert sandbox.contacts() == before
    assert journal_lines(project) == []


def test_the_caps_let_an_allowed_prune_through(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    _guard_setup(
        project, sandbox, CONFIG.replace("max_delete_percent: 50", "max_delete_percent: 5")
    )
    assert main(["apply", "--auto-approve", "--prune", "--max-deletes", "2"]) == 0
    printed = capsys.readouterr()
    assert "1 created, 0 updated, 2 deleted, 0 failed." in printed.out
    # The plan shown before applying must not claim that this allowed run will be refused.
    assert "will refuse" not in printed.err
    assert "15105550100" not in by_phone(sandbox)


def _console(
    answer: str | None, on_ask: Callable[[], None] = lambda: None
) -> tuple[Console, list[str]]:
    printed: list[str] = []

    def ask(question: str) -> str:
        printed.append(question)
        on_ask()
        return answer or ""

    console = Console(
        out=printed.append, err=printed.append, ask=ask, stdin_is_tty=answer is not None
    )
    return console, printed


@pytest.mark.parametrize("answer", ["no", "y", "YES please", ""])
def test_anything_but_yes_cancels(project: Path, sandbox: SandboxHandle, answer: str) -> None:
    _guard_setup(project, sandbox, CONFIG)
    console, printed = _console(answer)
    with pytest.raises(ApprovalRequiredError, match=r"Apply cancelled\."):
        run_apply(
            ApplyRequest(prune=True), Environment(environ=os.environ, cwd=project, console=console)
        )
    assert "Do you want to apply these changes? Only 'yes' will be accepted:" in printed
    assert writes(sandbox) == {}


def test_yes_applies(project: Path, sandbox: SandboxHandle) -> None:
    _guard_setup(project, sandbox, CONFIG)
    console, printed = _console("yes\n")
    assert (
        run_apply(
            ApplyRequest(prune=True), Environment(environ=os.environ, cwd=project, console=console)
        )
        == 0
    )
    assert "Apply complete: 1 created, 0 updated, 2 deleted, 0 failed.\n" in printed


@pytest.mark.parametrize(("answer", "code"), [(b"no\n", 3), (b"yes\n", 0)])
def test_the_question_on_a_real_terminal(
    project: Path, sandbox: SandboxHandle, answer: bytes, code: int
) -> None:
    declare(project, {"phone": "15105550300", "first": "Terminal"})
    leader, follower = pty.openpty()
    try:
        os.write(leader, answer)
        completed = subprocess.run(
            [sys.executable, "-m", "reconciler", "apply"],
            stdin=follower,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
            timeout=60,
            check=False,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert completed.returncode == code, completed.stderr
    assert "Only 'yes' will be accepted:" in completed.stderr
    if code == 3:
        assert "Apply cancelled." in completed.stderr
        assert writes(sandbox) == {}
    else:
        assert "15105550300" in by_phone(sandbox)


# --- saved plans -------------------------------------------------------------------------


def save_plan(project: Path, *, prune: bool = False, name: str = "plan.json") -> Path:
    settings = resolve_settings(
        config_file=None, contacts_dir=None, api_url=None, environ=os.environ, cwd=project
    )
    desired = load_desired(settings)
    with HeymarketClient(settings.api_url, credentials_from_env(os.environ)) as client:
        live = LiveState(tuple(client.list_contacts()), tuple(client.list_custom_fields()))
    plan = make_plan(desired, live, settings.config, prune=prune).plan
    path = project / name
    provenance = current_provenance(desired.contacts, settings.api_url, plan.marker, project)
    write_saved_plan(path, plan, provenance)
    return path


def test_a_fresh_saved_plan_applies_without_asking(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    owned(sandbox, "15105550400", "15105550401")
    declare(project, {"phone": "15105550400", "first": "Renamed"}, {"phone": "15105550402"})
    plan_file = save_plan(project, prune=True)
    assert main(["apply", "plan.json", "--prune"]) == 0
    assert "1 created, 1 updated, 1 deleted, 0 failed." in capsys.readouterr().out
    assert set(by_phone(sandbox)) == {"15105550400", "15105550402"}
    assert plan_file.exists()


@pytest.mark.parametrize("change", ["rev", "desired", "appeared"])
def test_a_stale_saved_plan_is_refused(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str], change: str
) -> None:
    owned(sandbox, "15105550500")
    declare(project, {"phone": "15105550500", "first": "Planned"}, {"phone": "15105550501"})
    save_plan(project)
    if change == "rev":
        # Someone edits the contact in Heymarket after the review.
        record = by_phone(sandbox)["15105550500"]
        with sandbox.client() as client:
            client.bulk_upsert([{"contact_id": record["uuid"], "first": "Edited in the app"}])
    elif change == "desired":
        declare(project, {"phone": "15105550500", "first": "Changed"}, {"phone": "15105550501"})
    else:
        sandbox.seed([{"phone": "15105550501", "first": "Texted in"}])
    before, writes_before = sandbox.contacts(), writes(sandbox)
    assert main(["apply", "plan.json"]) == 3
    err = capsys.readouterr().err
    assert "Make a new plan" in err
    assert writes(sandbox) == writes_before
    assert sandbox.contacts() == before


@pytest.mark.parametrize(("planned", "applied"), [(True, False), (False, True)])
def test_a_prune_mismatch_is_refused(
    project: Path,
    sandbox: SandboxHandle,
    capsys: pytest.CaptureFixture[str],
    planned: bool,
    applied: bool,
) -> None:
    owned(sandbox, "15105550600", "15105550601")
    declare(project, {"phone": "15105550600", "first": "Kept"})
    save_plan(project, prune=planned)
    before = sandbox.contacts()
    args = ["apply", "plan.json", *(["--prune"] if applied else [])]
    assert main(args) == 3
    assert "--prune" in capsys.readouterr().err
    assert writes(sandbox) == {}
    assert sandbox.contacts() == before


def test_github_step_summary(
    project: Path, sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = project / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    declare(project, {"phone": "15105550700", "first": "Summarised"})
    assert main(["apply", "--auto-approve"]) == 0
    text = summary.read_text(encoding="utf-8")
    assert "### reconciler apply" in text
    assert "| 1 | 0 | 0 | 0 |" in text


def test_a_prune_backup_holds_each_full_record_as_the_account_had_it(
    project: Path, sandbox: SandboxHandle
) -> None:
    declare(project, {"phone": "15105550100", "first": "Kept"})
    before = {record["phone"]: record for record in owned(sandbox, "15105550100", "15105550101")}

    assert main(["apply", "--auto-approve", "--prune"]) == 0

    (backup,) = (project / ".reconciler" / "backups").glob("prune-*.jsonl")
    (line,) = backup.read_text(encoding="utf-8").splitlines()
    # Every field the API answered, not only the ones the tool models (created, channels...).
    assert json.loads(line)["record"] == before["15105550101"]
    assert "15105550101" not in by_phone(sandbox)
