"""`reconciler export`: an existing account becomes a desired state that plans to no change
except the adoptions, in fmt's canonical form, whatever the names hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.cli import main
from reconciler.commands.export import ExportSettings, SplitBy, build_export
from reconciler.core.diff import DiffSettings, diff
from reconciler.core.model import CustomField, LiveContact
from reconciler.core.normalize import normalize_text
from reconciler.desired.canonical import format_text
from reconciler.desired.loader import load_desired_state, parse_file
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
    # Numbers in service in the numbering plan: an unassigned one would be a plan warning.
    return f"1510{2000000 + number:07d}"


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
        if number % 2 == 0:
            contact["tags"] = list(dict.fromkeys([text, other, "VIP"]))
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
        assert contact.tags == (tuple(record["tags"]) or None), record["phone"]
    # Phones quoted, opted-out contacts keep the opt-out, the marker is apply's to write.
    assert '  - phone: "15102000000"\n' in text
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
    old.write_text('contacts:\n  - phone: "15102000001"\n    first: Old\n', encoding="utf-8")
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
    # The tags are declared as the account holds them: a plan changes none of them.
    tags = {c.phone: c.tags for c in load_desired_state(contacts).contacts}
    assert tags[phone(1)] == ("VIP", "west") and tags[phone(3)] is None
    assert "    tags: [VIP, west]\n" in (contacts / "vip.yaml").read_text()
    assert main(["fmt", "--check"]) == 0
    assert main(["plan", "--format", "json", "--out", "plan.json"]) == 0
    saved = json.loads((repo / "plan.json").read_text())
    assert all("tags" not in change for change in saved["changes"])


def test_live_tags_no_file_may_declare_are_left_out_with_a_warning() -> None:
    def live(contact_id: int, tags: tuple[str, ...]) -> LiveContact:
        return LiveContact(
            id=contact_id,
            uuid=f"uuid-{contact_id}",
            phone=phone(contact_id),
            first="A",
            last=None,
            display_name=None,
            email=None,
            is_opted_out=False,
            custom={},
            rev=1,
            updated="2026-01-01T00:00:00Z",
            tags=tags,
        )

    export = build_export(
        [live(1, ("a", "a ")), live(2, tuple("abcdef")), live(3, (" b ",))],
        [],
        ExportSettings(SplitBy.NONE, owned_only=False, marker_field=MARKER, owner=OWNER),
    )

    (file,) = export.files
    declared = {c.phone: c.tags for c in parse_file(file.text.encode(), "c.yaml").contacts}
    assert declared == {phone(1): None, phone(2): None, phone(3): ("b",)}
    assert len(export.warnings) == 2
    assert all("the live tags cannot be declared" in warning for warning in export.warnings)


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


def test_a_value_holding_nel_exports_and_plans_nothing_but_the_adoption(
    repo: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    # YAML reads NEL (U+0085) as a line break: written raw, "x\x85y" comes back "x y".
    notes = sandbox.create_fields(["Notes", MARKER])["Notes"]
    sandbox.seed(
        [
            {
                "phone": phone(1),
                "first": "x\x85y",
                "last": "Lind\u2028qvist",
                "display_name": "x\x85y Lind\u2029qvist",
                "custom": {notes: "call\x85after 5"},
            }
        ]
    )

    assert main(["export"]) == 0
    assert main(["validate"]) == 0
    assert main(["fmt", "--check"]) == 0

    (contact,) = load_desired_state(repo / "contacts").contacts
    assert dict(contact.fields) == {
        "first": "x\x85y",
        "last": "Lind\u2028qvist",
        "display_name": "x\x85y Lind\u2029qvist",
    }
    assert dict(contact.custom) == {"Notes": "call\x85after 5"}
    plan = plan_json(capsys)
    (change,) = plan["changes"]
    assert change["adopt"] is True
    assert change["fields"] == {}
    assert change["custom"] == {MARKER: {"before": None, "after": OWNER}}


def live_contact(**values: Any) -> LiveContact:
    record: dict[str, Any] = {
        "id": 1,
        "uuid": "uuid-1",
        "phone": phone(1),
        "first": None,
        "last": None,
        "display_name": None,
        "email": None,
        "is_opted_out": False,
        "custom": {},
        "rev": 1,
        "updated": "2026-01-01T00:00:00Z",
    }
    return LiveContact(**(record | values))


def test_a_live_value_no_utf8_file_can_hold_is_left_out_with_a_warning() -> None:
    # A JSON answer may carry a lone surrogate ("\ud800"), which has no UTF-8 form.
    live = live_contact(first="Ann", last="Zed\ud800", custom={"7": "\udfffx", "8": "ok"})
    fields = [CustomField("7", "Notes"), CustomField("8", "Region")]

    export = build_export(
        [live], fields, ExportSettings(SplitBy.NONE, False, marker_field=MARKER, owner=OWNER)
    )

    (file,) = export.files
    assert file.text == (
        f'contacts:\n  - phone: "{phone(1)}"\n    first: Ann\n    custom:\n      Region: ok\n'
    )
    assert export.warnings == (
        f"{phone(1)}: the live last holds a character no file can hold (a lone surrogate): "
        "left out, so it is not managed.",
        f"{phone(1)}: custom field 'Notes' has a value a file cannot hold: left out.",
    )


# Arbitrary text with what YAML treats specially mixed in: C0/C1 controls, NEL, LS/PS, a BOM,
# tabs and line ends, quotes, backslashes, indicators, and lone surrogates.
LIVE_AWKWARD = (
    "\t\n\r\x00\x01\x1b\x7f\x85\x9f\xa0\u2028\u2029\ufeff\ufffe\uffff\ud800\udfff\"'\\#:-|>@ "
)
live_text = st.one_of(
    st.none(),
    st.text(alphabet=st.sampled_from(LIVE_AWKWARD + "xyé🙂"), max_size=8),
    st.text(alphabet=st.characters(codec=None), max_size=8),
)
LIVE_TITLES = {"1": "Region", "2": "Notes: misc", "3": "yes", "9": MARKER}


@settings(max_examples=150, deadline=None)
@given(
    first=live_text,
    last=live_text,
    display_name=live_text,
    email=live_text.map(lambda text: None if text is None else f"{text}@{text}"),
    custom=st.dictionaries(st.sampled_from(["1", "2", "3"]), live_text),
)
def test_any_live_record_exports_to_a_file_that_plans_no_change(
    first: str | None,
    last: str | None,
    display_name: str | None,
    email: str | None,
    custom: dict[str, str | None],
) -> None:
    live = live_contact(
        first=first,
        last=last,
        display_name=display_name,
        email=email,
        custom=custom | {"9": OWNER},  # owned already, so not even an adoption is due
    )
    fields = [CustomField(field_id, title) for field_id, title in LIVE_TITLES.items()]
    settings_ = ExportSettings(SplitBy.NONE, owned_only=False, marker_field=MARKER, owner=OWNER)

    export = build_export([live], fields, settings_)

    (file,) = export.files
    assert format_text(file.text) == file.text
    parsed = parse_file(file.text.encode("utf-8"), "contacts.yaml")
    assert parsed.problems == []
    plan = diff(parsed.contacts, [live], fields, DiffSettings(MARKER, OWNER), prune=False)
    assert plan.changes == () and plan.errors == () and plan.warnings == ()
    (contact,) = parsed.contacts
    for name, value in [("first", first), ("last", last), ("display_name", display_name)]:
        # Inner characters survive exactly; only a value no file can hold is left out.
        if name in contact.fields:
            assert contact.fields[name] == normalize_text(value)
        elif normalize_text(value) is not None:
            assert any(f"the live {name} " in warning for warning in export.warnings)
    for field_id, value in custom.items():
        title = LIVE_TITLES[field_id]
        if title in contact.custom:
            assert contact.custom[title] == normalize_text(value)
        elif normalize_text(value) is not None:
            assert f"{phone(1)}: custom field {title!r} has a value" in " ".join(export.warnings)
