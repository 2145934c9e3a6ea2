"""``plan --target`` and ``apply --target`` end to end against the sandbox: only the targeted
contacts change; a file never selects a delete, a phone can; the caps, the proof of a saved
plan and the header hold for a targeted plan as for any other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.cli import main
from tests.account import declare, live_phones, owned, write_count
from tests.sandbox_handle import SandboxHandle

NEW_A = "15105550001"
NEW_B = "15105550002"
UNDECLARED = "15105550009"


@pytest.fixture
def pending(project: Path, sandbox: SandboxHandle) -> Path:
    """Two files with a create each, and an owned live contact no file declares."""
    owned(sandbox, UNDECLARED)
    declare(project, {"phone": NEW_A, "first": "Ann"}, name="a.yaml")
    (project / "contacts" / "west").mkdir()
    declare(project, {"phone": NEW_B, "first": "Bo"}, name="west/b.yaml")
    return project


def test_a_file_target_never_deletes_and_leaves_the_rest_pending(
    pending: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", "--prune", "--target", "contacts/a.yaml", "--auto-approve"]) == 0
    out = capsys.readouterr().out
    assert 'Targeted plan: only the changes for "contacts/a.yaml"' in out
    assert "- delete" not in out
    assert live_phones(sandbox) == {NEW_A, UNDECLARED}

    # What the targeted apply left is still pending for a plan of everything.
    assert main(["plan", "--prune", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert "targets" not in document
    assert [(c["action"], c["phone"]) for c in document["changes"]] == [
        ("create", NEW_B),
        ("delete", UNDECLARED),
    ]


def test_a_directory_or_a_glob_selects_the_files_under_it(
    pending: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    for target in ("contacts/west", "west", "contacts/**/b.yaml", "*.yaml"):
        assert main(["plan", "--prune", "--target", target, "--format", "json"]) == 0
        document = json.loads(capsys.readouterr().out)
        assert document["targets"] == [target]
        expected = NEW_A if target == "*.yaml" else NEW_B
        assert [c["phone"] for c in document["changes"]] == [expected], target


def test_a_phone_target_can_delete_that_one_contact(
    pending: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["apply", "--prune", "--max-deletes", "1", "--auto-approve"]
    assert main([*args, "--target", "+1 (510) 555-0009"]) == 0
    assert live_phones(sandbox) == set()
    assert 'Targeted plan: only the changes for "15105550009"' in capsys.readouterr().out
    assert main(["apply", "--target", NEW_B, "--target", "a.yaml", "--auto-approve"]) == 0
    assert live_phones(sandbox) == {NEW_A, NEW_B}


def test_a_phone_target_without_prune_hints_at_the_delete(
    pending: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--target", UNDECLARED]) == 0
    out = capsys.readouterr().out
    assert "No changes. The targeted contacts match the desired state." in out
    assert "1 owned contacts are no longer declared" in out


def test_a_declared_phone_is_never_deleted_by_naming_it(
    pending: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    owned(sandbox, "15105550003")
    declare(pending, {"phone": "15105550003"}, name="kept.yaml")
    assert main(["apply", "--prune", "--target", "15105550003", "--auto-approve"]) == 0
    assert "15105550003" in live_phones(sandbox)
    assert write_count(sandbox) == 0


def test_the_caps_apply_to_a_targeted_plan(
    pending: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["apply", "--prune", "--target", UNDECLARED, "--target", "a.yaml", "--auto-approve"]
    assert main([*args, "--max-deletes", "0"]) == 3
    assert "Refusing to prune 1 contact: over --max-deletes (0)" in capsys.readouterr().err
    assert write_count(sandbox) == 0
    # 1 delete of 1 owned contact is over prune.max_delete_percent: said for the plan that
    # deletes, not for a targeted plan without the delete.
    for target, refused in ((UNDECLARED, True), ("a.yaml", False)):
        assert main(["plan", "--prune", "--target", target, "--format", "json"]) == 0
        document = json.loads(capsys.readouterr().out)
        warned = any("will refuse" in w["message"] for w in document["warnings"])
        assert warned is refused, target


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("contacts/nothing-*.yaml", "matches no contacts file"),
        ("reconciler.yaml", "is not under the contacts directory"),
        ("15105550777", "--target 15105550777 is neither declared nor in the account"),
        ("510-555", "--target: phone"),
        (" ", "--target is empty"),
    ],
)
def test_a_target_that_selects_nothing_is_an_error(
    pending: Path,
    sandbox: SandboxHandle,
    capsys: pytest.CaptureFixture[str],
    target: str,
    message: str,
) -> None:
    assert main(["apply", "--prune", "--target", target, "--auto-approve"]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert write_count(sandbox) == 0


def test_a_saved_targeted_plan_is_proven_and_applied_with_its_targets(
    pending: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--prune", "--target", "west", "--out", "plan.json"]) == 0
    saved = json.loads((pending / "plan.json").read_text())
    assert saved["targets"] == ["west"] and saved["saved_plan_format"] == 3
    assert [c["phone"] for c in saved["changes"]] == [NEW_B]

    # Edited to target the whole directory, it is not the plan that was reviewed.
    edited = {**saved, "targets": ["contacts"]}
    (pending / "edited.json").write_text(json.dumps(edited))
    assert main(["apply", "--prune", "edited.json"]) == 3
    assert "in today's plan only" in capsys.readouterr().err
    assert write_count(sandbox) == 0

    assert main(["apply", "--prune", "plan.json", "--target", "a.yaml"]) == 1
    assert "drop --target" in capsys.readouterr().err

    assert main(["apply", "--prune", "plan.json"]) == 0
    assert live_phones(sandbox) == {NEW_B, UNDECLARED}

    # A target that no longer selects anything makes the saved plan stale.
    (pending / "contacts" / "west" / "b.yaml").unlink()
    assert main(["apply", "--prune", "plan.json"]) == 3
    assert "targets that no longer hold" in capsys.readouterr().err


def test_masking_hides_phone_targets_in_every_format(
    pending: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    masked = {"text": "1510*****09", "json": "1510*****09", "markdown": "1510\\*\\*\\*\\*\\*09"}
    for output_format, shown in masked.items():
        args = ["plan", "--mask-pii", "--target", UNDECLARED, "--target", "a.yaml"]
        assert main([*args, "--format", output_format]) == 0
        out = capsys.readouterr().out
        assert UNDECLARED not in out
        assert shown in out and "a.yaml" in out, output_format
        if output_format == "json":
            assert json.loads(out)["targets"] == ["1510*****09", "a.yaml"]
        else:
            assert "Targeted plan: only the changes for" in out
