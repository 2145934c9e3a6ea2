"""`reconciler export`: an existing account becomes a desired state that plans to no change
except the adoptions, in fmt's canonical form, whatever the names hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.cli import main
from reconciler.commands.export import ExportSettings, SplitBy, build_export
from reconciler.core.model import LiveContact
from reconciler.desired.canonical import format_text
from reconciler.desired.loader import load_desired_state
from tests.sandbox_handle import SandboxHandle

OWNER = "team-a"
MARKER = "Managed by"

# Text a careless writer would corrupt: YAML indicators, words YAML reads as other types,
# numbers that lose their leading zeros, quotes, unicode and emoji.
TRICKY_TEXT = [
    "Smith: Jr.",
    "#hashtag",
    "O'Brien",
    'Say "hi"',
    "yes",
    "no",
    "null",
    "~",
    "true",
    "007",
    "0123",
    "1e3",
    "Zoë",
    "Élodie",
    "李",
    "🎉 Party",
    "- dash",
    "[list]",
    "{map}",
    "a #not comment",
    "@handle",
    "%percent",
    "* star",
    "ends with colon:",
    "& amp",
    "!bang",
    "|pipe",
    ">fold",
    "`tick`",
    "Ana",
]
CUSTOM_TITLES = ["Account tier", "Region", "Zip", "Notes: misc", "yes"]


def phone(number: int) -> str:
    return f"1510{number:07d}"


def account(count: int, field_ids: dict[str, str]) -> list[dict[str, Any]]:
    """``count`` API-shaped contacts: every tricky text in every standard field and custom
    field, a tenth opted out, a third already owned by this repository, mixed-case emails,
    and some fields empty."""
    contacts: list[dict[str, Any]] = []
    for number in range(count):
        text = TRICKY_TEXT[number % len(TRICKY_TEXT)]
        other = TRICKY_TEXT[(number * 7 + 3) % len(TRICKY_TEXT)]
        custom: dict[str, Any] = {
            field_ids["Account tier"]: ["gold", "silver", "007"][number % 3],
            field_ids["Region"]: other,
            field_ids["Zip"]: f"{number % 100:05d}",
        }
        if number % 4 == 0:
            custom[field_ids["Notes: misc"]] = text
        if number % 9 == 0:
            custom[field_ids["yes"]] = "no"
        if number % 3 == 0:
            custom[field_ids[MARKER]] = OWNER
        contact: dict[str, Any] = {
            "phone": phone(number),
            "first": text,
            "last": other if number % 5 else None,
            "display_name": f"{text} {other}",
            "email": f"Person.{number}@Example.COM" if number % 2 else None,
            "is_opted_out": number % 10 == 0,
            "custom": custom,
        }
        if number % 6 == 0:
            contact["first"] = ""  # the API's other way of saying "no value"
        contacts.append(contact)
    return contacts


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: SandboxHandle) -> Path:
    """An empty contacts repository whose commands talk to the sandbox."""
    directory = tmp_path / "repo"
    directory.mkdir()
    (directory / "reconciler.yaml").write_text(
        f"contacts: contacts/\nownership:\n  owner: {OWNER}\n", encoding="utf-8"
    )
    monkeypatch.chdir(directory)
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    return directory


def fields(sandbox: SandboxHandle) -> dict[str, str]:
    return sandbox.create_fields([*CUSTOM_TITLES, MARKER])


def plan_json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    exit_code = main(["plan", "--format", "json"])
    out = capsys.readouterr().out
    assert exit_code == 0, out
    plan: dict[str, Any] = json.loads(out)
    return plan


def yaml_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def test_export_of_1000_contacts_plans_only_adoptions_and_converges_after_apply(
    repo: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded = sandbox.seed(account(1000, fields(sandbox)))
    unmarked = {record["phone"] for record in seeded if _unmarked(record)}

    assert main(["export"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"Exported 1000 contacts into 1 file; the next plan adopts the {len(unmarked)} "
        "without an ownership marker."
    )
    assert yaml_files(repo / "contacts") == ["contacts.yaml"]
    assert main(["validate"]) == 0
    assert main(["fmt", "--check"]) == 0

    plan = plan_json(capsys)
    assert plan["summary"] == {
        "create": 0,
        "update": len(unmarked),
        "delete": 0,
        "unchanged": 1000 - len(unmarked),
    }
    assert {change["phone"] for change in plan["changes"]} == unmarked
    for change in plan["changes"]:
        assert change["adopt"] is True
        assert change["fields"] == {}
        assert change["custom"] == {MARKER: {"before": None, "after": OWNER}}
    assert plan["warnings"] == []

    assert main(["apply", "--auto-approve"]) == 0
    after = plan_json(capsys)
    assert after["changes"] == []
    assert after["summary"]["unchanged"] == 1000


def _unmarked(record: dict[str, Any]) -> bool:
    return not any(value == OWNER for value in (record.get("custom") or {}).values())


def test_exported_values_read_back_exactly_as_the_account_holds_them(
    repo: Path, sandbox: SandboxHandle
) -> None:
    field_ids = fields(sandbox)
    sandbox.seed(account(len(TRICKY_TEXT) * 2, field_ids))

    assert main(["export"]) == 0

    text = (repo / "contacts" / "contacts.yaml").read_text(encoding="utf-8")
    assert format_text(text) == text
    declared = {c.phone: c for c in load_desired_state(repo / "contacts").contacts}
    for record in sandbox.contacts():
        contact = declared[record["phone"]]
        for name in ("first", "last", "display_name", "email"):
            assert contact.fields.get(name) == (record[name] or None), (record["phone"], name)
        assert contact.fields.get("is_opted_out") == (True if record["is_opted_out"] else None)
        titles = {field_id: title for title, field_id in field_ids.items()}
        expected_custom = {
            titles[field_id]: value
            for field_id, value in record["custom"].items()
            if value and titles[field_id] != MARKER
        }
        assert dict(contact.custom) == expected_custom
    # Phones quoted, opted-out contacts keep the opt-out, the marker is apply's to write.
    assert '  - phone: "15100000000"\n' in text
    assert "    is_opted_out: true\n" in text
    assert "is_opted_out: false" not in text
    assert MARKER not in text


def test_refuses_a_non_empty_directory_without_force_and_replaces_its_files_with_it(
    repo: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox.seed([{"phone": phone(1), "first": "Ann", "last": "Zed"}])
    contacts = repo / "contacts"
    contacts.mkdir()
    old = contacts / "old.yaml"
    old.write_text('contacts:\n  - phone: "15100000001"\n    first: Old\n', encoding="utf-8")
    (contacts / "README.md").write_text("notes\n", encoding="utf-8")

    assert main(["export"]) == 1
    error = capsys.readouterr().err
    assert 'directory "contacts" is not empty' in error
    assert "--force" in error
    assert yaml_files(contacts) == ["README.md", "old.yaml"]
    assert sandbox.stats()["requests"] == 0

    assert main(["export", "--force", "--split-by", "initial"]) == 0
    assert yaml_files(contacts) == ["README.md", "z.yaml"]
    assert "Removed contacts/old.yaml" in capsys.readouterr().out
    assert main(["validate"]) == 0


def test_out_writes_elsewhere_and_an_empty_account_still_validates(
    repo: Path, sandbox: SandboxHandle
) -> None:
    assert main(["export", "--out", "adopted"]) == 0

    assert (repo / "adopted" / "contacts.yaml").read_text(encoding="utf-8") == "contacts: []\n"
    assert not (repo / "contacts").exists()
    assert main(["validate", "--contacts", "adopted"]) == 0


def test_owned_only_exports_the_contacts_carrying_this_repositorys_marker(
    repo: Path, sandbox: SandboxHandle
) -> None:
    marker = sandbox.create_fields([MARKER])[MARKER]
    sandbox.seed(
        [
            {"phone": phone(1), "first": "Ours", "custom": {marker: OWNER}},
            {"phone": phone(2), "first": "Theirs", "custom": {marker: "team-b"}},
            {"phone": phone(3), "first": "Nobody's"},
        ]
    )

    assert main(["export", "--owned-only"]) == 0

    declared = load_desired_state(repo / "contacts").contacts
    assert [(c.phone, c.fields["first"]) for c in declared] == [(phone(1), "Ours")]


def test_split_by_initial_uses_last_then_display_name(repo: Path, sandbox: SandboxHandle) -> None:
    sandbox.seed(
        [
            {"phone": phone(1), "first": "Ann", "last": "adams"},
            {"phone": phone(2), "first": "Bo", "last": "Élodie"},
            {"phone": phone(3), "display_name": "Eve Online"},
            {"phone": phone(4), "last": "李"},
            {"phone": phone(5), "email": "no-name@example.com"},
            {"phone": phone(6), "last": "Avery"},
        ]
    )

    assert main(["export", "--split-by", "initial"]) == 0

    contacts = repo / "contacts"
    assert yaml_files(contacts) == ["a.yaml", "e.yaml", "other.yaml"]
    by_file = _phones_by_file(contacts)
    assert by_file == {
        "a.yaml": [phone(1), phone(6)],
        "e.yaml": [phone(2), phone(3)],
        "other.yaml": [phone(4), phone(5)],
    }
    assert main(["fmt", "--check"]) == 0


def test_split_by_tag_uses_the_first_tag_as_a_safe_file_name(
    repo: Path, sandbox: SandboxHandle
) -> None:
    sandbox.seed(
        [
            {"phone": phone(1), "first": "A", "tags": ["VIP", "west"]},
            {"phone": phone(2), "first": "B", "tags": ["west"]},
            {"phone": phone(3), "first": "C"},
            {"phone": phone(4), "first": "D", "tags": ["../Sales Team!"]},
            {"phone": phone(5), "first": "E", "tags": ["vip"]},
        ]
    )

    assert main(["export", "--split-by", "tag"]) == 0

    contacts = repo / "contacts"
    assert _phones_by_file(contacts) == {
        "sales-team.yaml": [phone(4)],
        "untagged.yaml": [phone(3)],
        "vip.yaml": [phone(1), phone(5)],
        "west.yaml": [phone(2)],
    }
    assert main(["validate"]) == 0


def test_a_phone_live_twice_is_exported_once_with_a_warning() -> None:
    # The sandbox refuses duplicate phones, so the live state is built here; the real API
    # can hold them (a contact created twice in the app).
    def live(contact_id: int, first: str) -> LiveContact:
        return LiveContact(
            id=contact_id,
            uuid=f"uuid-{contact_id}",
            phone=phone(1),
            first=first,
            last=None,
            display_name=None,
            email=None,
            is_opted_out=False,
            custom={},
            rev=1,
            updated="2026-01-01T00:00:00Z",
        )

    export = build_export(
        [live(9, "Newer"), live(4, "Older")],
        [],
        ExportSettings(SplitBy.NONE, owned_only=False, marker_field=MARKER, owner=OWNER),
    )

    (file,) = export.files
    assert file.text == f'contacts:\n  - phone: "{phone(1)}"\n    first: Older\n'
    assert export.warnings == (
        f"{phone(1)}: exists 2 times in the account; exported contact id 4, not 9. Merge or "
        "delete the duplicates in Heymarket: plan and apply leave this phone untouched until "
        "then.",
    )


def test_a_live_value_no_file_may_hold_is_left_out_with_a_warning(
    repo: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox.seed([{"phone": phone(1), "first": "Ann", "email": "not-an-address"}])

    assert main(["export"]) == 0

    (contact,) = load_desired_state(repo / "contacts").contacts
    assert dict(contact.fields) == {"first": "Ann", "display_name": "Ann"}
    assert f"Warning: {phone(1)}: the live email does not pass" in capsys.readouterr().err


def _phones_by_file(directory: Path) -> dict[str, list[str]]:
    by_file: dict[str, list[str]] = {}
    for contact in load_desired_state(directory).contacts:
        by_file.setdefault(Path(contact.source.path).name, []).append(contact.phone)
    return by_file


def test_init_then_export_force_adopts_an_existing_account(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sandbox: SandboxHandle,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox.seed([{"phone": phone(1), "first": "Ann", "last": "Zed"}])
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    assert main(["init", str(tmp_path / "contacts-repo")]) == 0
    monkeypatch.chdir(tmp_path / "contacts-repo")

    assert main(["export", "--force"]) == 0

    assert yaml_files(tmp_path / "contacts-repo" / "contacts") == ["contacts.yaml"]
    assert main(["validate"]) == 0
    plan = plan_json(capsys)
    assert [(c["phone"], c["adopt"]) for c in plan["changes"]] == [(phone(1), True)]
