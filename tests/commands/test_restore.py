"""`reconciler restore`: a pruned contact comes back with its fields, custom fields, opt-out
state and ownership marker; phones that exist again are skipped; a damaged file writes
nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.cli import main
from tests.account import OWNER, by_phone, declare, journal_lines, writes
from tests.sandbox_handle import SandboxHandle


def prune_two(project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]) -> Path:
    """Prune two contacts with everything restore must bring back; returns the backup."""
    fields = sandbox.create_fields(["Managed by", "Tier"])
    sandbox.seed(
        [
            {
                "phone": "15105556000",
                "first": "Ada",
                "last": "Lovelace",
                "display_name": "Countess",
                "email": "ada@example.com",
                "custom": {fields["Managed by"]: OWNER, fields["Tier"]: "gold"},
            },
            {"phone": "15105556001", "first": "Bo", "custom": {fields["Managed by"]: OWNER}},
            {"phone": "15105556002", "first": "Kept", "custom": {fields["Managed by"]: OWNER}},
        ]
    )
    declare(project, {"phone": "15105556002"})
    assert main(["apply", "--auto-approve", "--prune", "--max-deletes", "2"]) == 0
    capsys.readouterr()
    assert set(by_phone(sandbox)) == {"15105556002"}
    (backup,) = (project / ".reconciler" / "backups").glob("prune-*.jsonl")
    # Prune keeps opted-out contacts, but a backup written before it did may hold one, and
    # restore must bring the opt-out back with it.
    lines = [json.loads(line) for line in backup.read_text(encoding="utf-8").splitlines()]
    for line in lines:
        if line["record"]["phone"] == "15105556000":
            line["record"]["is_opted_out"] = True
    backup.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return backup


def test_restore_brings_pruned_contacts_back_into_an_empty_account(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    backup = prune_two(project, sandbox, capsys)
    sandbox.reset()  # an account without the contacts and without the custom fields
    assert main(["restore", str(backup), "--auto-approve"]) == 0
    out = capsys.readouterr().out
    assert "Conversation history cannot be restored" in out
    assert "Restore complete: 2 restored, 0 skipped (exist again), 0 failed." in out
    assert writes(sandbox) == {"POST /v1/contacts/fields": 1, "POST /v2/contacts": 1}

    live = by_phone(sandbox)
    ada = live["15105556000"]
    assert (ada["first"], ada["last"], ada["display_name"], ada["email"]) == (
        "Ada",
        "Lovelace",
        "Countess",
        "ada@example.com",
    )
    assert ada["is_opted_out"] is True
    assert sorted(ada["custom"].values()) == sorted([OWNER, "gold"])
    assert live["15105556001"]["first"] == "Bo"
    # Restored contacts are owned again: a plan of the same repository sees no change for them.
    declare(project, {"phone": "15105556000"}, {"phone": "15105556001"})
    assert main(["plan", "--detailed-exitcode"]) == 0
    assert [line["command"] for line in journal_lines(project)][-2:] == ["restore", "restore"]


def test_phones_that_exist_again_are_skipped(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    backup = prune_two(project, sandbox, capsys)
    sandbox.seed([{"phone": "15105556001", "first": "Texted in again"}])
    assert main(["restore", str(backup), "--auto-approve"]) == 0
    captured = capsys.readouterr()
    assert "Skipped 15105556001: a contact with this phone exists again." in captured.err
    assert "1 restored, 1 skipped (exist again), 0 failed." in captured.out
    assert by_phone(sandbox)["15105556001"]["first"] == "Texted in again"
    assert by_phone(sandbox)["15105556000"]["first"] == "Ada"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("{not json\n", ":2: not valid JSON"),
        ('{"kind": "something else"}\n', ":2: not a line of a reconciler prune backup"),
    ],
)
def test_a_damaged_line_is_named_and_nothing_is_written(
    project: Path,
    sandbox: SandboxHandle,
    capsys: pytest.CaptureFixture[str],
    damage: str,
    message: str,
) -> None:
    backup = prune_two(project, sandbox, capsys)
    first, second = backup.read_text().splitlines()
    backup.write_text(f"{first}\n{damage}{second}\n")
    before = writes(sandbox)
    assert main(["restore", str(backup), "--auto-approve"]) == 1
    err = capsys.readouterr().err
    assert f"{backup}{message}" in err
    assert "nothing was restored" in err
    assert writes(sandbox) == before
    assert set(by_phone(sandbox)) == {"15105556002"}


def test_restore_asks_first(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    backup = prune_two(project, sandbox, capsys)
    before = writes(sandbox)
    assert main(["restore", str(backup)]) == 3
    assert "--auto-approve" in capsys.readouterr().err
    assert writes(sandbox) == before
