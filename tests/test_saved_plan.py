"""Saved plans: what ``plan --out`` writes and ``apply PLAN_FILE`` reads and checks."""

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
from reconciler.diff import DiffSettings, diff
from reconciler.errors import EXIT_REFUSED, SavedPlanError, StalePlanError
from reconciler.plan import Plan
from reconciler.saved_plan import (
    check_fresh,
    current_git_commit,
    desired_state_digest,
    read_saved_plan,
    write_saved_plan,
)
from tests.test_diff import FIELDS, MARKER, MARKER_ID, OWNER, TIER_ID
from tests.test_diff import desired as declared
from tests.test_diff import live_contact as live

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


def test_round_trip_gives_back_the_same_plan(tmp_path: Path) -> None:
    plan = sample_plan()
    assert plan.creates and plan.updates and plan.deletes and plan.warnings
    path = tmp_path / "plan.json"

    written = write_saved_plan(path, plan, desired_digest="sha256:abc", now=NOW)
    saved = read_saved_plan(path)

    assert saved == written
    assert saved.plan == plan
    assert saved.plan.marker == plan.marker
    assert saved.created_at == "2024-06-01T12:30:00Z"
    assert saved.tool_version == __version__
    # The delete keeps the full live record, so apply can back it up before deleting.
    (delete,) = saved.plan.deletes
    assert delete.live == LIVE[1]
    assert delete.live.raw == LIVE[1].raw


def test_file_holds_the_json_plan_and_freshness_of_every_touched_contact(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_saved_plan(path, sample_plan(), desired_digest="sha256:abc", now=NOW)

    document = json.loads(path.read_text())

    plan_json = sample_plan().to_json_dict()
    assert {key: document[key] for key in plan_json} == plan_json
    assert document["desired_digest"] == "sha256:abc"
    assert document["freshness"] == [
        {"phone": P1, "contact_id": None, "rev": None, "updated": None},
        {
            "phone": P2,
            "contact_id": "00000000-0000-4000-8000-000000000002",
            "rev": 3,
            "updated": "2024-05-01T10:00:00Z",
        },
        {
            "phone": P3,
            "contact_id": "00000000-0000-4000-8000-000000000003",
            "rev": 3,
            "updated": "2024-05-01T10:00:00Z",
        },
    ]


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

    write_saved_plan(path, sample_plan(), desired_digest="sha256:abc")

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

    saved = write_saved_plan(
        tmp_path / "plan.json", sample_plan(), desired_digest="d", repository=tmp_path
    )

    assert saved.git_commit == head
    assert read_saved_plan(tmp_path / "plan.json").git_commit == head


def test_outside_a_repository_the_commit_is_null(tmp_path: Path) -> None:
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    (outside / ".git").write_text("gitdir: /nonexistent\n")  # stops git's upward search

    assert current_git_commit(outside) is None
    saved = write_saved_plan(
        outside / "plan.json", sample_plan(), desired_digest="d", repository=outside
    )
    assert saved.git_commit is None


def _rewrite(path: Path, change: Any) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d.update(saved_plan_format=2), "saved by a newer reconciler"),
        (lambda d: d.update(kind="terraform plan"), "is not a reconciler saved plan"),
        (lambda d: d["changes"][1].pop("contact_id"), "damaged (missing 'contact_id')"),
        (lambda d: d["changes"][0].update(action="merge"), "unknown action 'merge'"),
        (lambda d: d["context"].update(owned_live_count="3"), "'owned_live_count' has the"),
        (lambda d: d.update(deleted_records=[]), "no live record for the delete"),
        (lambda d: d.update(format_version=9), "unknown plan format 9"),
    ],
    ids=["newer", "foreign", "missing-key", "bad-action", "bad-type", "no-backup", "plan-fmt"],
)
def test_a_damaged_foreign_or_newer_file_is_a_clear_error(
    tmp_path: Path, damage: Any, message: str
) -> None:
    path = tmp_path / "plan.json"
    write_saved_plan(path, sample_plan(), desired_digest="d")
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


# --- freshness ---------------------------------------------------------------------------


def saved_sample(tmp_path: Path) -> Any:
    path = tmp_path / "plan.json"
    write_saved_plan(path, sample_plan(), desired_digest=desired_state_digest(DESIRED))
    return read_saved_plan(path)


def test_unchanged_account_and_desired_state_are_fresh(tmp_path: Path) -> None:
    check_fresh(saved_sample(tmp_path), LIVE, desired_state_digest(DESIRED))


def test_changed_desired_state_is_stale(tmp_path: Path) -> None:
    edited = [*DESIRED[:2], declared(P4, 12, is_opted_out=True)]

    with pytest.raises(StalePlanError, match="desired state changed") as refused:
        check_fresh(saved_sample(tmp_path), LIVE, desired_state_digest(edited))
    assert refused.value.exit_code == EXIT_REFUSED


@pytest.mark.parametrize(
    "account",
    [
        [dataclasses.replace(LIVE[0], rev=4), *LIVE[1:]],
        [dataclasses.replace(LIVE[0], updated="2024-05-02T00:00:00Z"), *LIVE[1:]],
        [*LIVE, live(P1, 9)],  # a contact appeared where the plan creates one
        LIVE[1:],  # a contact the plan updates is gone
    ],
    ids=["rev", "updated", "created-meanwhile", "deleted-meanwhile"],
)
def test_a_touched_contact_that_changed_is_stale(tmp_path: Path, account: Any) -> None:
    with pytest.raises(StalePlanError, match=r"^1 contacts changed in the account"):
        check_fresh(saved_sample(tmp_path), account, desired_state_digest(DESIRED))


def test_digest_ignores_order_and_lines_but_not_values() -> None:
    moved = [dataclasses.replace(c, source=dataclasses.replace(c.source, line=99)) for c in DESIRED]

    assert desired_state_digest(DESIRED) == desired_state_digest(list(reversed(moved)))
    assert desired_state_digest(DESIRED) != desired_state_digest(
        [declared(P1, 3, first="Alicia", custom={"Region": "west"}), *DESIRED[1:]]
    )
    assert desired_state_digest(DESIRED) != desired_state_digest(
        [declared(P1, 3, first="Alice", custom={"Region": "west"}, last=None), *DESIRED[1:]]
    )
