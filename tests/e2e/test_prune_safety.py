"""The safety model under sequences of events that could make a prune delete what it must
not: a protect list that changes after a plan was saved, protect patterns that cannot match
a phone, contacts files that are silently not read."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from reconciler.cli import main
from reconciler.commands.apply import ApplyRequest
from reconciler.commands.apply import run as run_apply
from reconciler.commands.context import Settings
from reconciler.commands.environment import Environment
from reconciler.core.errors import ReconcilerError
from reconciler.heymarket import HeymarketClient, credentials_from_env
from reconciler.live.snapshot import snapshot_path
from reconciler.report.console import Console
from tests.account import CONFIG, OWNER, forge_snapshot, live_phones
from tests.sandbox_handle import SandboxHandle


def rate_limited_after_the_second(
    sandbox: SandboxHandle, method: str, path: str
) -> Callable[[Settings, Mapping[str, str], bool], HeymarketClient]:
    """A connect hook whose client sees the rate limit switched on as its second request to
    ``method path`` is sent, and off again once another request follows, with too little
    patience to outlast it: that request fails after the server acted on the first."""
    sent = 0

    def on_request(request_method: str, request_path: str) -> None:
        nonlocal sent
        if (request_method, request_path) == (method, path):
            sent += 1
            if sent == 2:
                sandbox.set_faults(rate_limit=1)
        elif sent >= 2:
            sandbox.set_faults(rate_limit=0)

    def connect(settings: Settings, environ: Mapping[str, str], insecure: bool) -> HeymarketClient:
        return HeymarketClient(
            settings.api_url,
            credentials_from_env(environ),
            on_request=on_request,
            max_retry_wait=0.2,
        )

    return connect


def declare(directory: Path, *phones: str, name: str = "team.yaml") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    contacts: list[dict[str, Any]] = [{"phone": phone} for phone in phones]
    (directory / name).write_text(json.dumps({"contacts": contacts}) + "\n", encoding="utf-8")


def owned(sandbox: SandboxHandle, *phones: str) -> None:
    sandbox.seed([{"phone": phone, "custom": {"Managed by": OWNER}} for phone in phones])


def test_a_saved_plan_never_deletes_a_contact_protected_since(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    owned(sandbox, *(f"1510555070{n}" for n in range(4)))
    declare(project / "contacts", "15105550700", "15105550701", "15105550702")
    assert main(["plan", "--prune", "--out", "plan.json"]) == 0
    # After the review, someone protects the contact the plan would delete.
    (project / "reconciler.yaml").write_text(
        CONFIG + '  protect: ["15105550703"]\n', encoding="utf-8"
    )
    capsys.readouterr()
    assert main(["apply", "plan.json", "--prune"]) == 3
    # Today's plan, made under today's protect list, has no such delete.
    assert "delete 15105550703: in the saved plan only" in capsys.readouterr().err
    assert "15105550703" in live_phones(sandbox)


@pytest.mark.parametrize("pattern", ["1510x*", "-", "+", "15105550703\n", "\uff11510*"])
def test_a_protect_pattern_that_can_never_match_a_phone_is_an_error(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str], pattern: str
) -> None:
    owned(sandbox, "15105550700", "15105550703")
    declare(project / "contacts", "15105550700")
    (project / "reconciler.yaml").write_text(
        CONFIG + f"  protect: [{json.dumps(pattern)}]\n", encoding="utf-8"
    )
    assert main(["apply", "--auto-approve", "--prune"]) == 1
    assert "prune.protect" in capsys.readouterr().err
    assert "15105550703" in live_phones(sandbox)


@pytest.mark.parametrize(
    "pattern", ["+15105550703", "1 510 555 0703", " 15105550703", "+1 (510) 555-07*", "1510-*"]
)
def test_a_protect_pattern_written_as_people_write_phones_protects(
    project: Path, sandbox: SandboxHandle, pattern: str
) -> None:
    owned(sandbox, "15105550700", "15105550703", "15105550704")
    declare(project / "contacts", "15105550700")
    (project / "reconciler.yaml").write_text(
        CONFIG + f'  protect: [{json.dumps(pattern)}, "15105550704"]\n', encoding="utf-8"
    )
    assert main(["apply", "--auto-approve", "--prune"]) == 0
    assert live_phones(sandbox) == {"15105550700", "15105550703", "15105550704"}


def test_protect_patterns_with_wildcards_and_ranges_still_protect(
    project: Path, sandbox: SandboxHandle
) -> None:
    owned(sandbox, "15105550700", "15105550703", "15105550704", "15105550715")
    declare(project / "contacts", "15105550700")
    (project / "reconciler.yaml").write_text(
        CONFIG + '  protect: ["1510555070[0-3]", "1510555071?"]\n', encoding="utf-8"
    )
    assert main(["apply", "--auto-approve", "--prune"]) == 0
    assert live_phones(sandbox) == {"15105550700", "15105550703", "15105550715"}


def test_a_dangling_symlinked_contacts_file_is_an_error_not_an_empty_file(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    owned(sandbox, "15105550700", "15105550701")
    declare(project / "contacts", "15105550700")
    # The file behind the link moved away (a submodule not checked out, a renamed share).
    (project / "contacts" / "shared.yaml").symlink_to(project / "elsewhere" / "shared.yaml")
    assert main(["apply", "--auto-approve", "--prune"]) == 1
    assert "contacts/shared.yaml" in capsys.readouterr().err
    assert live_phones(sandbox) == {"15105550700", "15105550701"}


def test_a_symlinked_directory_of_contacts_is_an_error_not_skipped(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    owned(sandbox, "15105550700", "15105550701")
    declare(project / "contacts", "15105550700")
    declare(project / "shared", "15105550701")
    (project / "contacts" / "shared").symlink_to(project / "shared", target_is_directory=True)
    assert main(["apply", "--auto-approve", "--prune"]) == 1
    assert "contacts/shared" in capsys.readouterr().err
    assert live_phones(sandbox) == {"15105550700", "15105550701"}


def test_deletes_done_before_a_batch_fails_midway_are_journaled(
    project: Path, sandbox: SandboxHandle
) -> None:
    owned(sandbox, "15105550800", "15105550801", "15105550802", "15105550803")
    declare(project / "contacts", "15105550800")
    # The server takes two deletes at a time, so the client splits the batch of three; the
    # first half goes through, then the rate limit outlasts the client's patience.
    sandbox.set_faults(bulk_cap=2)
    connect = rate_limited_after_the_second(sandbox, "DELETE", "/v2/contacts")

    printed: list[str] = []
    console = Console(out=printed.append, err=printed.append, ask=input, stdin_is_tty=False)
    with pytest.raises(ReconcilerError):
        run_apply(
            ApplyRequest(prune=True, auto_approve=True, max_deletes=3),
            Environment(environ=os.environ, cwd=project, console=console, connect_client=connect),
        )
    gone = {"15105550801", "15105550802", "15105550803"} - live_phones(sandbox)
    assert gone, "the scenario needs a delete that went through before the failure"
    journal = [
        json.loads(line)
        for line in (project / ".reconciler" / "journal.jsonl").read_text().splitlines()
    ]
    applied = {line["phone"] for line in journal if line["result"] == "applied"}
    assert applied == gone


@pytest.mark.parametrize("name", ["Shared.YAML", "shared.Yml"])
def test_a_contacts_file_with_an_upper_case_suffix_is_an_error_not_skipped(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    owned(sandbox, "15105550700", "15105550701")
    declare(project / "contacts", "15105550700")
    declare(project / "contacts", "15105550701", name=name)
    assert main(["apply", "--auto-approve", "--prune"]) == 1
    assert f"contacts/{name}" in capsys.readouterr().err
    assert live_phones(sandbox) == {"15105550700", "15105550701"}


def test_an_opted_out_contact_is_never_pruned_so_its_opt_out_is_not_lost(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox.seed(
        [
            {"phone": "15105550800", "custom": {"Managed by": OWNER}},
            {"phone": "15105550801", "custom": {"Managed by": OWNER}, "is_opted_out": True},
            {"phone": "15105550802", "custom": {"Managed by": OWNER}},
        ]
    )
    declare(project / "contacts", "15105550802")

    assert main(["apply", "--auto-approve", "--prune"]) == 0
    err = capsys.readouterr().err

    # Deleted and declared again later, it would come back opted in: it stays.
    assert live_phones(sandbox) == {"15105550801", "15105550802"}
    assert "15105550801: is not declared but has opted out: not pruned" in err


def test_creates_done_before_a_batch_fails_midway_are_journaled_and_nothing_more(
    project: Path, sandbox: SandboxHandle
) -> None:
    phones = ["15105550900", "15105550901", "15105550902"]
    declare(project / "contacts", *phones)
    # The server takes two contacts a write, so the client splits the batch of three; the
    # first half is written, then the rate limit outlasts the client's patience.
    sandbox.set_faults(bulk_cap=2)
    connect = rate_limited_after_the_second(sandbox, "POST", "/v2/contacts")

    console = Console(out=print, err=print, ask=input, stdin_is_tty=False)
    with pytest.raises(ReconcilerError):
        run_apply(
            ApplyRequest(auto_approve=True),
            Environment(environ=os.environ, cwd=project, console=console, connect_client=connect),
        )
    created = live_phones(sandbox)
    assert created and created < set(phones), "the scenario needs a part-way failure"
    journal = [
        json.loads(line)
        for line in (project / ".reconciler" / "journal.jsonl").read_text().splitlines()
    ]
    applied = {line["phone"] for line in journal if line["result"] == "applied"}
    assert applied == created
    # A rerun converges.
    assert main(["apply", "--auto-approve"]) == 0
    assert live_phones(sandbox) == set(phones)


def test_a_forged_snapshot_claiming_a_contact_is_ours_never_gets_it_deleted(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    """The snapshot may come from a cache someone else wrote. One that passes every proof
    but marks someone else's contact as this repository's makes the plan show a delete;
    prune reads the contact again, live, and deletes nothing."""
    sandbox.seed(
        [
            # Someone else's, older than the snapshot's newest second (which is re-read).
            {"phone": "15105551000", "updated": "2024-01-01T00:00:00Z"},
            {
                "phone": "15105551001",
                "custom": {"Managed by": OWNER},
                "updated": "2024-06-01T00:00:00Z",
            },
        ]
    )
    declare(project / "contacts", "15105551001")
    assert main(["plan"]) == 0

    def claim_the_other(columns: dict[str, list[Any]]) -> None:
        ours = columns["custom"][columns["phone"].index("15105551001")]
        columns["custom"][columns["phone"].index("15105551000")] = dict(ours)

    forge_snapshot(snapshot_path(project / ".reconciler" / "cache", sandbox.url), claim_the_other)
    capsys.readouterr()
    assert main(["plan", "--prune"]) == 0
    assert "delete 15105551000" in capsys.readouterr().out, "the forgery must pass the proofs"

    # Re-read live, the contact is not ours: a failed delete, reported, and nothing deleted.
    assert main(["apply", "--auto-approve", "--prune"]) == 1
    assert live_phones(sandbox) == {"15105551000", "15105551001"}
    assert sandbox.stats()["by_route"].get("DELETE /v2/contacts", 0) == 0
    assert "delete 15105551000" in capsys.readouterr().err
