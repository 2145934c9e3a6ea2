"""Saved plans: what ``plan --out`` writes, and how ``apply PLAN_FILE`` proves it against the
plan it derives again (the file is compared, never executed)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler import __version__
from reconciler.core.diff import DiffSettings, diff
from reconciler.core.errors import SavedPlanError
from reconciler.core.plan import Plan
from reconciler.core.proof import (
    Provenance,
    desired_state_digest,
    plan_differences,
    provenance_differences,
)
from reconciler.files.saved_plans import (
    current_git_commit,
    current_provenance,
    read_saved_plan,
    write_saved_plan,
)
from tests.builders import FIELDS, MARKER, MARKER_ID, OWNER, TIER_ID, declared, live

P1, P2, P3, P4 = "15105550001", "15105550002", "15105550003", "15105550004"
SETTINGS = DiffSettings(MARKER, OWNER, max_delete_percent=100)
DESIRED = [
    declared(P1, 3, first="Alice", custom={"Region": "west"}),
    declared(P2, 8, last="Jones-Smith", custom={"Account tier": 2}),
    declared(P4, 12, is_opted_out=False),
]
LIVE = [
    live(P2, 2, last="Jones", custom={}),
    live(P3, 3, first="Bob", custom={MARKER_ID: OWNER, TIER_ID: "gold"}),
    live(P4, 4, is_opted_out=True),
]
NOW = datetime(2024, 6, 1, 12, 30, tzinfo=UTC)
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def sample_plan() -> Plan:
    return diff(DESIRED, LIVE, FIELDS, SETTINGS, prune=True)


PROVENANCE = Provenance(
    desired_digest=desired_state_digest(DESIRED),
    git_commit=None,
    api_url="https://api.heymarket.com",
    marker_field=MARKER,
    owner=OWNER,
)


def test_round_trip_keeps_the_changes_and_what_the_plan_was_made_from(tmp_path: Path) -> None:
    plan = sample_plan()
    assert plan.creates and plan.updates and plan.deletes and plan.warnings
    path = tmp_path / "plan.json"

    written = write_saved_plan(path, plan, PROVENANCE, now=NOW)
    saved = read_saved_plan(path)

    assert saved == written
    assert saved.prune is True
    assert saved.provenance == PROVENANCE
    assert saved.provenance.tool_version == __version__
    assert saved.created_at == "2024-06-01T12:30:00Z"
    assert plan_differences(saved, plan) == []


def test_file_holds_the_json_plan_and_its_provenance_and_no_live_records(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_saved_plan(path, sample_plan(), PROVENANCE, now=NOW)

    document = json.loads(path.read_text())

    plan_json = sample_plan().to_json_dict()
    assert {key: document[key] for key in plan_json} == plan_json
    assert {key: document[key] for key in PROVENANCE.to_json_dict()} == PROVENANCE.to_json_dict()
    # Nothing a reader could be tempted to trust instead of the account: deletes are backed up
    # from a fresh read, caps use a fresh count.
    assert "deleted_records" not in document and "context" not in document


def test_file_is_private_and_holds_no_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {
        "HEYMARKET_API_KEY": "key-7f3a9c1e",
        "HEYMARKET_SECRET_ID": "sid-51b2",
        "HEYMARKET_SECRET_KEY": "skey-e8d4",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "plan.json"

    write_saved_plan(path, sample_plan(), PROVENANCE)

    text = path.read_text()
    assert not [value for value in secrets.values() if value in text]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".plan.json*"))  # no temporary file left behind


@needs_git
def test_records_the_git_commit_inside_a_repository(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    git("init", "-q")
    git("commit", "-q", "--allow-empty", "-m", "contacts")
    head = git("rev-parse", "HEAD")

    provenance = current_provenance(
        DESIRED, "https://api.heymarket.com/", SETTINGS.marker, tmp_path
    )
    saved = write_saved_plan(tmp_path / "plan.json", sample_plan(), provenance)

    assert saved.provenance.git_commit == head
    assert saved.provenance.api_url == "https://api.heymarket.com"
    assert read_saved_plan(tmp_path / "plan.json").provenance.git_commit == head


def test_outside_a_repository_the_commit_is_null(tmp_path: Path) -> None:
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    (outside / ".git").write_text("gitdir: /nonexistent\n")  # stops git's upward search

    assert current_git_commit(outside) is None
    provenance = current_provenance(DESIRED, "https://x", SETTINGS.marker, outside)
    assert provenance.git_commit is None


def _rewrite(path: Path, change: Any) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d.update(saved_plan_format=4), "saved by a newer reconciler"),
        (lambda d: d.update(saved_plan_format=1), "saved by an older reconciler"),
        (lambda d: d.update(kind="terraform plan"), "is not a reconciler saved plan"),
        (lambda d: d.update(changes={}), "damaged ('changes' is missing or has the wrong"),
        (lambda d: d["changes"].append("delete"), "holds something other than objects"),
        (lambda d: d.update(prune="yes"), "damaged ('prune' is missing or has the wrong type"),
        (lambda d: d.pop("api_url"), "damaged ('api_url' is missing"),
        (lambda d: d.update(format_version=9), "unknown plan format 9"),
        (lambda d: d.update(targets=["a.yaml"]), "'targets' in a plan that is not targeted"),
        (lambda d: d.update(saved_plan_format=3), "damaged ('targets' is missing"),
        (lambda d: d.update(saved_plan_format=3, targets=[""]), "is not a list of targets"),
    ],
    ids=[
        "newer",
        "older",
        "foreign",
        "changes",
        "change",
        "prune",
        "no-url",
        "plan-fmt",
        "untargeted-with-targets",
        "targeted-without",
        "empty-target",
    ],
)
def test_a_damaged_foreign_or_newer_file_is_a_clear_error(
    tmp_path: Path, damage: Any, message: str
) -> None:
    path = tmp_path / "plan.json"
    write_saved_plan(path, sample_plan(), PROVENANCE)
    _rewrite(path, damage)

    with pytest.raises(SavedPlanError) as refused:
        read_saved_plan(path)

    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", r"is not valid JSON \(line 1\)"), ("[]", "is not a reconciler saved plan")],
)
def test_a_file_that_is_not_a_plan_at_all(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "plan.json"
    path.write_text(content)

    with pytest.raises(SavedPlanError, match=message):
        read_saved_plan(path)


def test_a_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(SavedPlanError, match=r"no saved plan at .*reconciler plan --out"):
        read_saved_plan(tmp_path / "nope.json")


# --- proving: the saved changes against the derived plan ---------------------------------


def saved_sample(tmp_path: Path, edit: Any = None) -> Any:
    path = tmp_path / "plan.json"
    write_saved_plan(path, sample_plan(), PROVENANCE)
    if edit is not None:
        _rewrite(path, edit)
    return read_saved_plan(path)


def test_the_same_plan_derived_again_has_no_differences(tmp_path: Path) -> None:
    assert plan_differences(saved_sample(tmp_path), sample_plan()) == []


def test_moving_a_contact_to_another_line_or_file_is_no_difference(tmp_path: Path) -> None:
    def moved(document: dict[str, Any]) -> None:
        for change in document["changes"]:
            if "source" in change:
                change["source"] = "contacts/elsewhere.yaml:99"

    assert plan_differences(saved_sample(tmp_path, moved), sample_plan()) == []


@pytest.mark.parametrize(
    "account",
    [
        [dataclasses.replace(LIVE[0], rev=4), *LIVE[1:]],
        [dataclasses.replace(LIVE[0], updated="2024-05-02T00:00:00Z"), *LIVE[1:]],
        [dataclasses.replace(LIVE[0], last="Jones-Brown"), *LIVE[1:]],
        [*LIVE, live(P1, 9)],  # a contact appeared where the plan creates one
        LIVE[1:],  # a contact the plan updates is gone
        [LIVE[0], dataclasses.replace(LIVE[1], custom={MARKER_ID: "other-team"}), LIVE[2]],
    ],
    ids=["rev", "updated", "value", "created-meanwhile", "deleted-meanwhile", "owner"],
)
def test_an_account_that_changed_gives_differences(tmp_path: Path, account: Any) -> None:
    derived = diff(DESIRED, account, FIELDS, SETTINGS, prune=True)
    assert plan_differences(saved_sample(tmp_path), derived)


def _add_delete(document: dict[str, Any]) -> None:
    document["changes"].append(
        {"action": "delete", "phone": P2, "contact_id": "x", "fields": {}, "custom": {}}
    )


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_add_delete, f"delete {P2}: in the saved plan only"),
        (lambda d: d["changes"].pop(0), f"create {P1}: in today's plan only"),
        (
            lambda d: d["changes"][1]["fields"]["last"].update(after="Smith"),
            f"update {P2}: fields differ",
        ),
        (lambda d: d["changes"][1].update(rev=99), f"update {P2}: rev differ"),
        (lambda d: d["changes"][2].update(phone=P4), f"delete {P4}: in the saved plan only"),
    ],
    ids=["added-delete", "removed-create", "field", "rev", "delete-retargeted"],
)
def test_a_hand_edited_saved_plan_is_a_difference_named_by_contact(
    tmp_path: Path, edit: Any, expected: str
) -> None:
    differences = plan_differences(saved_sample(tmp_path, edit), sample_plan())
    assert expected in differences


def test_differences_mask_phones_when_asked(tmp_path: Path) -> None:
    (difference,) = plan_differences(saved_sample(tmp_path, _add_delete), sample_plan(), mask=True)
    assert P2 not in difference and "1510*****02" in difference


def test_provenance_differences_say_what_changed() -> None:
    later = dataclasses.replace(
        PROVENANCE, desired_digest="sha256:other", git_commit="abc123", tool_version="9.9"
    )
    assert provenance_differences(PROVENANCE, later) == [
        "the desired state",
        "the git commit (none then, abc123 now)",
        f"the reconciler version ({__version__} then, 9.9 now)",
    ]
    assert provenance_differences(PROVENANCE, PROVENANCE) == []


def test_digest_ignores_order_and_lines_but_not_values() -> None:
    moved = [dataclasses.replace(c, source=dataclasses.replace(c.source, line=99)) for c in DESIRED]

    assert desired_state_digest(DESIRED) == desired_state_digest(list(reversed(moved)))
    assert desired_state_digest(DESIRED) != desired_state_digest(
        [declared(P1, 3, first="Alicia", custom={"Region": "west"}), *DESIRED[1:]]
    )
    assert desired_state_digest(DESIRED) != desired_state_digest(
        [declared(P1, 3, first="Alice", custom={"Region": "west"}, last=None), *DESIRED[1:]]
    )
