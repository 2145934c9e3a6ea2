"""An account that stores a value otherwise than it was sent, end to end against the
sandbox with its rewrite faults on: apply reports an "inconsistent result after apply"
(exit 1, the field named), does not send it again, journals it, and the next plan marks
the change instead of proposing it silently forever."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.cli import main
from tests.account import by_phone, declare, journal_lines, owned, writes
from tests.sandbox_handle import SandboxHandle

PHONE = "15105550001"


def test_a_value_the_account_rewrites_is_reported_once_and_marked_in_the_next_plan(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    owned(sandbox, PHONE)
    sandbox.set_faults(rewrite_spaces=True)
    declare(project, {"phone": PHONE, "first": "Ana  Maria", "last": "Lopez"})

    assert main(["apply", "--auto-approve"]) == 1
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    assert "inconsistent result after apply" in shown
    assert 'first was sent as "Ana  Maria" but the account stored "Ana Maria"' in shown
    assert f"{PHONE} (contacts/team.yaml:3)" in shown
    assert 'Declare "Ana Maria" instead' in shown
    # Written once, never chased: one bulk write, the account holds what it stored.
    assert writes(sandbox) == {"POST /v2/contacts": 1}
    assert by_phone(sandbox)[PHONE]["first"] == "Ana Maria"

    (line,) = [line for line in journal_lines(project) if line["result"] == "inconsistent"]
    assert (line["action"], line["phone"], line["field"]) == ("update", PHONE, "first")
    assert (line["sent"], line["stored"]) == ("Ana  Maria", "Ana Maria")
    assert line["contact_id"] == by_phone(sandbox)[PHONE]["uuid"]

    assert main(["plan"]) == 0
    text = capsys.readouterr().out
    assert '~ first: "Ana Maria" -> "Ana  Maria"  # the account rewrote this value' in text
    assert "last:" not in text

    assert main(["plan", "--format", "json"]) == 0
    (change,) = json.loads(capsys.readouterr().out)["changes"]
    assert change["rewritten_by_account"] == ["first"]

    assert main(["plan", "--format", "markdown"]) == 0
    assert "the account rewrote this value last time" in capsys.readouterr().out


def test_declaring_the_stored_value_ends_the_loop(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    owned(sandbox, PHONE)
    # Six characters: the ownership marker ("team-a") survives, the tier does not.
    sandbox.set_faults(rewrite_truncate=6)
    declare(project, {"phone": PHONE, "custom": {"Tier": "premium gold"}})
    assert main(["apply", "--auto-approve"]) == 1
    assert 'custom["Tier"] was sent as "premium gold"' in capsys.readouterr().err

    declare(project, {"phone": PHONE, "custom": {"Tier": "premiu"}})
    assert main(["plan", "--detailed-exitcode"]) == 0
    assert "No changes." in capsys.readouterr().out


def test_a_created_contact_rewritten_is_counted_and_reported(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox.set_faults(rewrite_case="lower")
    declare(project, {"phone": PHONE, "first": "Ana", "email": "Ana@Example.com"})
    assert main(["apply", "--auto-approve", "--mask-pii"]) == 1
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    # The email's lower case is predicted; the name's is not. Masked all the same.
    assert "first was sent as" in shown and "email" not in shown.split("Apply")[-1]
    assert "Ana" not in shown and PHONE not in shown
    assert "1 created" in shown and "1 failed" in shown


def test_a_rewrite_found_by_the_re_read_of_a_lost_answer_is_not_chased(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    owned(sandbox, PHONE)
    # The write is committed, then answered 500: only a re-read can tell.
    sandbox.set_faults(rewrite_spaces=True, commit_then_fail=1)
    declare(project, {"phone": PHONE, "first": "Ana  Maria"})
    assert main(["apply", "--auto-approve"]) == 1
    assert 'first was sent as "Ana  Maria"' in capsys.readouterr().err
    assert writes(sandbox)["POST /v2/contacts"] == 1
    results = [line["result"] for line in journal_lines(project)]
    assert results == ["ambiguous", "inconsistent"]
