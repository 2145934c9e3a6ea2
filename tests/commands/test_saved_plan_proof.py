"""apply PLAN_FILE proves the file against the plan it derives again, end to end: a saved
plan edited by hand (or by anyone with write access to an artifact) can never make apply do
something today's plan would not do."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.cli import main
from tests.account import OWNER
from tests.sandbox_handle import SandboxHandle

CONFIG = (
    f"ownership:\n  owner: {OWNER}\n"
    "prune:\n  max_deletes: 25\n  max_delete_percent: 5\n"
    '  protect: ["15550000006"]\n'
)
DECLARED = [f"155500001{n:02d}" for n in range(40)]
UNDECLARED = ["15550000001", "15550000002"]
OPTED_OUT = "15550000005"
PROTECTED = "15550000006"
OTHER_OWNERS = "15550000007"
DECLARED_OPTED_OUT = DECLARED[0]


@pytest.fixture
def project_files() -> dict[str, str]:
    return {"reconciler.yaml": CONFIG}


@pytest.fixture
def project(project: Path, sandbox: SandboxHandle) -> Path:
    """The shared repository, declaring DECLARED, and an account with one contact of each
    kind a prune must or must not delete."""
    mine = {"Managed by": OWNER}
    sandbox.seed(
        [
            *({"phone": phone, "custom": mine} for phone in DECLARED[1:]),
            {"phone": DECLARED_OPTED_OUT, "custom": mine, "is_opted_out": True},
            *({"phone": phone, "custom": mine} for phone in UNDECLARED),
            {"phone": OPTED_OUT, "custom": mine, "is_opted_out": True},
            {"phone": PROTECTED, "custom": mine},
            {"phone": OTHER_OWNERS, "first": "Theirs", "custom": {"Managed by": "team-b"}},
        ]
    )
    contacts = [{"phone": phone} for phone in DECLARED]
    contacts[1]["first"] = "Renamed"
    (project / "contacts" / "team.yaml").write_text(
        json.dumps({"contacts": contacts}), encoding="utf-8"
    )
    return project


def uuid_of(sandbox: SandboxHandle, phone: str) -> str:
    (record,) = [record for record in sandbox.contacts() if record["phone"] == phone]
    uuid: str = record["uuid"]
    return uuid


def delete_of(sandbox: SandboxHandle, phone: str, shown_phone: str | None = None) -> Any:
    record = next(record for record in sandbox.contacts() if record["phone"] == phone)
    return {
        "action": "delete",
        "phone": shown_phone or phone,
        "contact_id": record["uuid"],
        "rev": record["rev"],
        "updated": record["updated"],
        "fields": {},
        "custom": {"Managed by": {"before": OWNER, "after": None}},
    }


def update_of(sandbox: SandboxHandle, phone: str, fields: dict[str, Any]) -> Any:
    record = next(record for record in sandbox.contacts() if record["phone"] == phone)
    return {
        "action": "update",
        "phone": phone,
        "contact_id": record["uuid"],
        "rev": record["rev"],
        "updated": record["updated"],
        "source": "contacts/team.yaml:3",
        "adopt": False,
        "fields": {
            name: {"before": record.get(name), "after": value} for name, value in fields.items()
        },
        "custom": {},
    }


Tamper = Callable[[SandboxHandle, dict[str, Any]], None]


def _add(*changes: Callable[[SandboxHandle], Any]) -> Tamper:
    def tamper(sandbox: SandboxHandle, document: dict[str, Any]) -> None:
        document["changes"].extend(change(sandbox) for change in changes)

    return tamper


TAMPERINGS: dict[str, Tamper] = {
    "delete-a-declared-contact": _add(lambda s: delete_of(s, DECLARED[5])),
    "delete-an-opted-out-contact": _add(lambda s: delete_of(s, OPTED_OUT)),
    "opt-a-contact-back-in": _add(
        lambda s: update_of(s, DECLARED_OPTED_OUT, {"is_opted_out": False})
    ),
    "overwrite-another-owners-contact": _add(
        lambda s: update_of(s, OTHER_OWNERS, {"first": "Ours now"})
    ),
    "delete-a-protected-contact-spelled-otherwise": _add(
        lambda s: delete_of(s, PROTECTED, PROTECTED + "\n")
    ),
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_a_hand_edited_saved_plan_is_refused_and_nothing_is_written(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str], tamper: Tamper
) -> None:
    assert main(["plan", "--prune", "--out", "plan.json"]) == 0
    document = json.loads((project / "plan.json").read_text())
    deletes = [change["phone"] for change in document["changes"] if change["action"] == "delete"]
    assert deletes == UNDECLARED
    tamper(sandbox, document)
    (project / "plan.json").write_text(json.dumps(document), encoding="utf-8")
    before = sandbox.contacts()
    capsys.readouterr()

    assert main(["apply", "plan.json", "--prune"]) == 3

    err = capsys.readouterr().err
    assert "is not the plan apply derives now" in err and "nothing was written" in err
    assert sandbox.contacts() == before
    assert not (project / ".reconciler" / "backups").exists()


def test_the_untouched_saved_plan_applies(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--prune", "--out", "plan.json"]) == 0
    capsys.readouterr()
    assert main(["apply", "plan.json", "--prune"]) == 0
    out = capsys.readouterr().out
    assert "0 created, 1 updated, 2 deleted, 0 failed." in out
    phones = {record["phone"] for record in sandbox.contacts()}
    assert not phones & set(UNDECLARED)
    assert {*DECLARED, OPTED_OUT, PROTECTED, OTHER_OWNERS} <= phones


def test_a_plan_saved_for_another_account_is_refused(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--out", "plan.json"]) == 0
    document = json.loads((project / "plan.json").read_text())
    document["api_url"] = "https://api.heymarket.com"
    (project / "plan.json").write_text(json.dumps(document), encoding="utf-8")
    before = sandbox.contacts()
    capsys.readouterr()

    assert main(["apply", "plan.json"]) == 3

    err = capsys.readouterr().err
    assert "made for another account or owner" in err and "the API URL" in err
    assert sandbox.contacts() == before


def test_a_raised_count_in_a_saved_plan_does_not_lift_the_cap(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox.seed(
        [
            {"phone": phone, "custom": {"Managed by": OWNER}}
            for phone in ("15550000008", "15550000009")
        ]
    )
    assert main(["plan", "--prune", "--out", "plan.json"]) == 0
    assert "apply --prune will refuse this plan" in capsys.readouterr().err
    document = json.loads((project / "plan.json").read_text())
    document["owned_live_count"] = 100_000
    document["context"] = {"owned_live_count": 100_000, "prune": True}
    (project / "plan.json").write_text(json.dumps(document), encoding="utf-8")
    before = sandbox.contacts()

    assert main(["apply", "plan.json", "--prune"]) == 3

    assert "over prune.max_delete_percent" in capsys.readouterr().err
    assert sandbox.contacts() == before
