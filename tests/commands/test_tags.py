"""Tags: declared in YAML, a contact's tags go through the diff, the plan, the bulk item,
the renderers and the saved plan, and ``restore`` brings a pruned contact back with its
tags. ``None`` (not managed) keeps every plan as it was."""

from __future__ import annotations

import json
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler.cli import main
from reconciler.commands.restore import _declared
from reconciler.core.diff import DiffSettings, diff
from reconciler.core.masking import mask_plan
from reconciler.core.model import CustomField, DesiredContact, LiveContact, SourceLocation
from reconciler.core.ownership import Marker
from reconciler.core.plan import Create, Plan, TagsChange, Update
from reconciler.core.proof import (
    Provenance,
    desired_state_digest,
    parse_saved_plan,
    plan_differences,
    saved_plan_document,
)
from reconciler.execute.backup import backup_line, read_backup
from reconciler.heymarket.encode import to_upsert_item
from reconciler.heymarket.parse import parse_live_contact
from reconciler.render import RenderOptions, render_plan
from tests.account import OWNER, by_phone, declare, write_count
from tests.builders import record
from tests.sandbox_handle import SandboxHandle

SETTINGS = DiffSettings(marker_field="Managed by", owner=OWNER)
FIELDS = [CustomField("1", "Managed by"), CustomField("7", "Tier")]
FIELD_IDS = {"Managed by": "1", "Tier": "7"}
SOURCE = SourceLocation("contacts/team.yaml", 3)
PHONE = "15105551234"
TAGS = st.lists(st.text(st.characters(codec="utf-8"), min_size=1, max_size=6), max_size=5).map(
    lambda tags: tuple(dict.fromkeys(tags))
)


def declared(tags: tuple[str, ...] | None, **fields: str) -> DesiredContact:
    return DesiredContact(PHONE, fields, {}, SOURCE, tags)


def live(tags: tuple[str, ...]) -> LiveContact:
    return parse_live_contact(record(phone=PHONE, custom={"1": OWNER}, tags=list(tags)))


def plan_of(desired: DesiredContact, *existing: LiveContact) -> Plan:
    return diff([desired], list(existing), FIELDS, SETTINGS, prune=False)


# --- end to end --------------------------------------------------------------------------


def test_restore_brings_a_pruned_contact_back_with_its_tags(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    fields = sandbox.create_fields(["Managed by"])
    sandbox.seed(
        [
            {
                "phone": "15105556000",
                "first": "Ada",
                "tags": ["VIP", "Wholesale"],
                "custom": {fields["Managed by"]: OWNER},
            },
            {"phone": "15105556002", "first": "Kept", "custom": {fields["Managed by"]: OWNER}},
        ]
    )
    declare(project, {"phone": "15105556002"})
    assert main(["apply", "--auto-approve", "--prune", "--max-deletes", "1"]) == 0
    assert "15105556000" not in by_phone(sandbox)
    (backup,) = (project / ".reconciler" / "backups").glob("prune-*.jsonl")

    assert main(["restore", str(backup), "--auto-approve"]) == 0
    out = capsys.readouterr().out
    assert 'tags: ["VIP", "Wholesale"]' in out
    restored = by_phone(sandbox)["15105556000"]
    assert sorted(restored["tags"]) == ["VIP", "Wholesale"]
    assert restored["first"] == "Ada"


def test_declared_tags_round_trip_through_apply_prune_backup_and_restore(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox.seed([{"phone": "15105556001", "first": "Old", "tags": ["Retail", "West"]}])
    declare(
        project,
        {"phone": "15105556000", "first": "Ada", "tags": [" VIP", "Wholesale "]},
        {"phone": "15105556001", "tags": ["West", "VIP"]},
        {"phone": "15105556002", "first": "Untagged"},
    )
    assert main(["plan"]) == 0
    out = capsys.readouterr().out
    assert '      + tags: ["VIP", "Wholesale"]\n' in out
    assert '      ~ tags: ["Retail", "West"] -> ["West", "VIP"]\n' in out
    assert main(["apply", "--auto-approve"]) == 0
    live = by_phone(sandbox)
    assert sorted(live["15105556000"]["tags"]) == ["VIP", "Wholesale"]
    assert sorted(live["15105556001"]["tags"]) == ["VIP", "West"]
    assert live["15105556002"]["tags"] == []
    capsys.readouterr()
    assert main(["plan", "--detailed-exitcode"]) == 0  # in another order, still no change

    # Cleared by [], then the tagged contact pruned, backed up and restored with its tags.
    declare(project, {"phone": "15105556001", "tags": []}, {"phone": "15105556002"})
    assert main(["apply", "--auto-approve", "--prune", "--max-deletes", "1"]) == 0
    out = capsys.readouterr().out
    assert '      - tags: ["West", "VIP"] -> null\n' in out
    assert '      - tags: ["VIP", "Wholesale"] -> null\n' in out  # deleted with the contact
    live = by_phone(sandbox)
    assert live["15105556001"]["tags"] == [] and "15105556000" not in live
    (backup,) = (project / ".reconciler" / "backups").glob("prune-*.jsonl")
    assert sorted(json.loads(backup.read_text().splitlines()[0])["record"]["tags"]) == [
        "VIP",
        "Wholesale",
    ]
    assert main(["restore", str(backup), "--auto-approve"]) == 0
    assert sorted(by_phone(sandbox)["15105556000"]["tags"]) == ["VIP", "Wholesale"]
    declare(
        project,
        {"phone": "15105556000", "first": "Ada", "tags": ["Wholesale", "VIP"]},
        {"phone": "15105556001", "tags": None},
        {"phone": "15105556002"},
    )
    assert main(["plan", "--detailed-exitcode"]) == 0


def test_a_contact_with_six_tags_is_a_validate_error_and_never_sent(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    declare(
        project,
        {"phone": "15105556000", "tags": ["a", "b", "c", "d", "e", "f"]},
        {"phone": "15105556001", "first": "Fine"},
    )
    assert main(["validate"]) == 1
    assert '"tags" lists 6 tags; a contact has at most 5' in capsys.readouterr().out
    assert main(["apply", "--auto-approve"]) == 1
    assert "at most 5" in capsys.readouterr().err
    assert write_count(sandbox) == 0 and by_phone(sandbox) == {}


def test_masking_hides_a_phone_or_name_written_in_a_tag_but_not_a_label() -> None:
    plan = plan_of(declared(("VIP", "ref 15105559876", "Ada Lovelace"), first="Ada Lovelace"))
    text = render_plan(plan, "text", RenderOptions(mask_pii=True)).stdout
    assert '+ tags: ["VIP", "ref 1510*****76", "A***"]' in text
    assert "Lovelace" not in text and "9876" not in text


# --- the diff, the item, the plan --------------------------------------------------------


def test_a_create_carries_its_tags_into_the_bulk_item() -> None:
    (change,) = plan_of(declared(("VIP", "Wholesale"))).changes
    assert isinstance(change, Create)
    assert change.tags == TagsChange((), ("VIP", "Wholesale"))
    item = to_upsert_item(change, FIELD_IDS, SETTINGS.marker)
    assert item["tags"] == ["VIP", "Wholesale"]


def test_tags_compare_as_a_set() -> None:
    assert plan_of(declared(("B", "A")), live(("A", "B"))).changes == ()
    (change,) = plan_of(declared(("A", "C")), live(("A", "B"))).changes
    assert isinstance(change, Update) and change.tags == TagsChange(("A", "B"), ("A", "C"))
    (cleared,) = plan_of(declared(()), live(("A",))).changes
    assert isinstance(cleared, Update) and cleared.tags == TagsChange(("A",), ())
    assert to_upsert_item(cleared, FIELD_IDS, SETTINGS.marker)["tags"] == []


def test_unmanaged_tags_leave_plans_items_and_renderings_as_they_were() -> None:
    plan = plan_of(declared(None, first="Bo"), live(("A",)))
    (change,) = plan.changes
    assert change.tags is None  # type: ignore[union-attr]
    assert "tags" not in to_upsert_item(change, FIELD_IDS, SETTINGS.marker)  # type: ignore[arg-type]
    for output_format in ("text", "markdown", "json"):
        assert "tags" not in render_plan(plan, output_format, RenderOptions()).stdout
    assert desired_state_digest([declared(None)]) != desired_state_digest([declared(())])


def test_every_format_shows_tags_and_masking_keeps_them() -> None:
    plan = plan_of(declared(("A", "C"), first="Bo"), live(("A", "B")))
    text = render_plan(plan, "text", RenderOptions(mask_pii=True)).stdout
    assert '      ~ tags: ["A", "B"] -> ["A", "C"]\n' in text
    markdown = render_plan(plan, "markdown", RenderOptions()).stdout
    assert 'tags: \\["A", "B"\\] → \\["A", "C"\\]' in markdown
    document = json.loads(render_plan(plan, "json", RenderOptions()).stdout)
    assert document["changes"][0]["tags"] == {"before": ["A", "B"], "after": ["A", "C"]}
    assert mask_plan(plan).changes[0].tags == plan.changes[0].tags  # type: ignore[union-attr]


# --- properties --------------------------------------------------------------------------

PROPERTY = settings(max_examples=100, deadline=None, database=None)


@PROPERTY
@given(st.none() | TAGS, TAGS)
def test_a_plan_makes_the_live_tags_the_declared_set(
    wanted: tuple[str, ...] | None, current: tuple[str, ...]
) -> None:
    """Whatever is declared and live: the item sets exactly the declared tags, a plan of
    the result is empty, and a saved plan keeps the change as it was."""
    plan = plan_of(declared(wanted), live(current))
    after = current
    for change in plan.changes:
        assert isinstance(change, Update)
        item = to_upsert_item(change, FIELD_IDS, SETTINGS.marker)
        after = tuple(item.get("tags", current))
    if wanted is not None:
        assert set(after) == set(wanted)
    else:
        assert after == current
    assert plan_of(declared(wanted), live(after)).changes == ()
    provenance = Provenance(
        "sha256:0", None, "https://api.heymarket.com", SETTINGS.marker_field, SETTINGS.owner
    )
    document = saved_plan_document(plan, provenance, created_at="2025-03-01T12:00:00Z")
    saved = parse_saved_plan(json.loads(json.dumps(document)), origin="plan.json")
    assert plan_differences(saved, plan) == []


@PROPERTY
@given(
    TAGS,
    st.none() | st.text(min_size=1, max_size=8).map(str.strip).filter(bool),
    st.booleans(),
    st.none() | st.sampled_from(["gold", "silver"]),
)
@example(("a\u2028b", "\x85"), "Line\u2029break", False, None)
def test_restore_sends_everything_a_backup_line_holds(
    tags: tuple[str, ...], first: str | None, opted_out: bool, tier: str | None
) -> None:
    """A backup line read back and planned as restore plans it: the create item carries the
    tags, the standard fields, the custom fields and the marker of the line."""
    custom = {"1": OWNER, **({"7": tier} if tier else {})}
    contact = parse_live_contact(
        record(first=first, tags=list(tags), is_opted_out=opted_out, custom=custom)
    )
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "prune.jsonl"
        marker = Marker("Managed by", OWNER)
        path.write_text(backup_line(contact, {"1": "Managed by", "7": "Tier"}, marker) + "\n")
        (line,) = read_backup(path)
    (create,) = diff([_declared(line, "prune.jsonl")], [], FIELDS, SETTINGS, prune=False).changes
    assert isinstance(create, Create)
    item = to_upsert_item(create, FIELD_IDS, marker)
    assert set(item.get("tags", [])) == set(tags)
    # Text is sent in Unicode NFC, the form every value is compared in.
    assert item.get("first") == (
        None if contact.first is None else unicodedata.normalize("NFC", contact.first)
    )
    assert item.get("is_opted_out", False) is opted_out
    assert item["custom"] == custom
