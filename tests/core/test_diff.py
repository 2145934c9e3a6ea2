"""The diff rules of the contract (ARCHITECTURE.md), one table row each."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from reconciler.core.diff import DiffSettings, diff
from reconciler.core.model import CustomField, DesiredContact, LiveContact
from reconciler.core.plan import Delete, FieldValue, Plan, Update
from tests.builders import FIELDS, MARKER, MARKER_ID, OWNED, OWNER, SETTINGS, TIER_ID
from tests.builders import declared as desired
from tests.builders import live as live_contact

Shown = tuple[str, str, dict[str, tuple[FieldValue, FieldValue]]]


def shown(plan: Plan) -> list[Shown]:
    """The plan as a reviewer reads it: action (adopt spelled out), phone, field changes."""
    rows: list[Shown] = []
    for change in plan.changes:
        action = "adopt" if isinstance(change, Update) and change.adopt else change.action
        changes = {name: (c.before, c.after) for name, c in change.fields.items()}
        changes.update(
            {f"custom:{title}": (c.before, c.after) for title, c in change.custom.items()}
        )
        rows.append((action, change.phone, changes))
    return rows


@dataclass(frozen=True)
class Case:
    name: str
    desired: list[DesiredContact]
    live: list[LiveContact]
    expected: list[Shown]
    prune: bool = False
    fields: tuple[CustomField, ...] = FIELDS
    settings: DiffSettings = SETTINGS
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    fields_to_create: tuple[str, ...] = ()


P1, P2, P3 = "15105550001", "15105550002", "15105550003"
MARK: dict[str, tuple[FieldValue, FieldValue]] = {f"custom:{MARKER}": (None, OWNER)}

CASES = [
    Case(
        "create writes the declared fields and the marker, skips cleared ones",
        [desired(P1, first="Alice", last=None, is_opted_out=False, custom={"Account tier": 5})],
        [],
        [
            (
                "create",
                P1,
                {
                    "first": (None, "Alice"),
                    "is_opted_out": (None, False),
                    "custom:Account tier": (None, "5"),
                    **MARK,
                },
            )
        ],
    ),
    Case(
        "create trims text and drops blank values",
        [desired(P1, first="  Alice ", email="  ")],
        [],
        [("create", P1, {"first": (None, "Alice"), **MARK})],
    ),
    Case(
        "a missing marker field is created first",
        [desired(P1, first="Alice")],
        [],
        [("create", P1, {"first": (None, "Alice"), **MARK})],
        fields=(CustomField(TIER_ID, "Account tier"),),
        fields_to_create=(MARKER,),
    ),
    Case(
        "a custom title the account lacks is created first and shown with before null",
        [desired(P1, custom={"Region": "west"})],
        [live_contact(P1)],
        [("update", P1, {"custom:Region": (None, "west")})],
        fields_to_create=("Region",),
    ),
    Case(
        "clearing a custom title the account lacks is no change and creates nothing",
        [desired(P1, custom={"Region": None})],
        [live_contact(P1)],
        [],
        unchanged=1,
    ),
    Case(
        "a field left out is not managed",
        [desired(P1, first="Alice")],
        [live_contact(P1, first="Alice", last="Smith", email="a@example.com")],
        [],
        unchanged=1,
    ),
    Case(
        "a field set to null is cleared",
        [desired(P1, last=None, email=None)],
        [live_contact(P1, last="Smith")],
        [("update", P1, {"last": ("Smith", None)})],
    ),
    Case(
        "an empty string clears like null",
        [desired(P1, last="")],
        [live_contact(P1, last="Smith")],
        [("update", P1, {"last": ("Smith", None)})],
    ),
    Case(
        "values compare after the server's normalisation",
        [desired(P1, first="Alice", email="Alice@Example.COM", display_name="")],
        [live_contact(P1, first=" Alice", email="alice@example.com ", display_name="")],
        [],
        unchanged=1,
    ),
    Case(
        "custom values compare as the text the server stores",
        [desired(P1, custom={"Account tier": 5})],
        [live_contact(P1, custom={**OWNED, TIER_ID: "5"})],
        [],
        unchanged=1,
    ),
    Case(
        "custom booleans compare as true/false text",
        [desired(P1, custom={"Account tier": True})],
        [live_contact(P1, custom={**OWNED, TIER_ID: "true"})],
        [],
        unchanged=1,
    ),
    Case(
        "only the differing fields are in an update",
        [desired(P1, first="Alice", last="Jones-Smith", custom={"Account tier": "gold"})],
        [live_contact(P1, first="Alice", last="Jones", custom={**OWNED, TIER_ID: "silver"})],
        [
            (
                "update",
                P1,
                {"last": ("Jones", "Jones-Smith"), "custom:Account tier": ("silver", "gold")},
            )
        ],
    ),
    Case(
        "an unmarked declared contact is adopted",
        [desired(P1, first="Alice")],
        [live_contact(P1, first="Alice", custom={})],
        [("adopt", P1, MARK)],
    ),
    Case(
        "adoption carries the other changes too",
        [desired(P1, first="Alicia")],
        [live_contact(P1, first="Alice", custom={MARKER_ID: ""})],
        [("adopt", P1, {"first": ("Alice", "Alicia"), **MARK})],
    ),
    Case(
        "with no marker field in the account every declared live contact is adopted",
        [desired(P1, first="Alice")],
        [live_contact(P1, first="Alice", custom={})],
        [("adopt", P1, MARK)],
        fields=(),
        fields_to_create=(MARKER,),
    ),
    Case(
        "a contact owned by another team is a conflict naming both owners",
        [desired(P1, first="Alicia")],
        [live_contact(P1, first="Alice", custom={MARKER_ID: "support"})],
        [],
        errors=[f"{P1} (contacts/team.yaml:1): is owned by 'support'", f"not by '{OWNER}'"],
    ),
    Case(
        "opt-out is one way: declared false for an opted-out contact warns, changes nothing",
        [desired(P1, is_opted_out=False, first="Alice")],
        [live_contact(P1, first="Alice", is_opted_out=True)],
        [],
        unchanged=1,
        warnings=[f"{P1} (contacts/team.yaml:1): declares is_opted_out: false", "START"],
    ),
    Case(
        "opt-out is one way: declared false does not block the other fields",
        [desired(P1, is_opted_out=False, first="Alicia")],
        [live_contact(P1, first="Alice", is_opted_out=True)],
        [("update", P1, {"first": ("Alice", "Alicia")})],
        warnings=["declares is_opted_out: false"],
    ),
    Case(
        "declaring an opt-out is an update",
        [desired(P1, is_opted_out=True)],
        [live_contact(P1)],
        [("update", P1, {"is_opted_out": (False, True)})],
    ),
    Case(
        "a declared phone that is live twice is left alone, with an error saying why",
        [desired(P1, first="Alice")],
        [live_contact(P1, 1), live_contact(P1, 2)],
        [],
        errors=[f"{P1} (contacts/team.yaml:1): exists 2 times in the account (contact ids 1, 2)"],
    ),
    Case(
        "a phone declared twice is left alone, naming both places",
        [desired(P1, 3, first="Alice"), desired(P1, 9, first="Alicia")],
        [],
        [],
        errors=[f"{P1} (contacts/team.yaml:9): is declared twice (also at contacts/team.yaml:3)"],
    ),
    Case(
        "the ownership marker cannot be declared by hand",
        [desired(P1, custom={MARKER: "someone-else"})],
        [live_contact(P1)],
        [],
        unchanged=1,
        warnings=["declares the ownership marker field 'Managed by'; it is ignored"],
    ),
    Case(
        "prune deletes owned, undeclared contacts, showing what goes away",
        [desired(P1)],
        [live_contact(P1, 1), live_contact(P2, 2, first="Bob", custom={**OWNED, TIER_ID: "gold"})],
        [
            (
                "delete",
                P2,
                {
                    "first": ("Bob", None),
                    "custom:Account tier": ("gold", None),
                    f"custom:{MARKER}": (OWNER, None),
                },
            )
        ],
        prune=True,
        unchanged=1,
        # 1 of 2 owned contacts is over the default 5% cap; the plan says apply will refuse.
        warnings=["apply --prune will refuse this plan. Refusing to prune 1 contact: 1 is 50.0%"],
    ),
    Case(
        "without prune nothing is deleted",
        [],
        [live_contact(P2)],
        [],
    ),
    Case(
        "prune never deletes contacts without the marker or owned by others",
        [],
        [live_contact(P1, 1, custom={}), live_contact(P2, 2, custom={MARKER_ID: "support"})],
        [],
        prune=True,
    ),
    Case(
        "prune never deletes protected phones",
        [],
        [live_contact(P1, 1), live_contact(P2, 2)],
        [("delete", P2, {f"custom:{MARKER}": (OWNER, None)})],
        prune=True,
        settings=DiffSettings(MARKER, OWNER, protect=("*0001",), max_delete_percent=100),
    ),
    Case(
        "prune leaves an undeclared phone that is live twice, with a warning",
        [],
        [live_contact(P1, 1), live_contact(P1, 2)],
        [],
        prune=True,
        warnings=[f"{P1}: is not declared but exists more than once in the account: not pruned"],
    ),
    Case(
        "the marker compares trimmed",
        [desired(P1, first="Alice")],
        [live_contact(P1, first="Alice", custom={MARKER_ID: f" {OWNER} "})],
        [],
        unchanged=1,
    ),
    Case(
        "changes sort by action, then phone",
        [desired(P3, first="C"), desired(P1, first="A"), desired(P2, first="B")],
        [live_contact(P2, 2, first="Bee"), live_contact("15105550000", 9)],
        [
            ("create", P1, {"first": (None, "A"), **MARK}),
            ("create", P3, {"first": (None, "C"), **MARK}),
            ("update", P2, {"first": ("Bee", "B")}),
            ("delete", "15105550000", {f"custom:{MARKER}": (OWNER, None)}),
        ],
        prune=True,
        settings=DiffSettings(MARKER, OWNER, max_delete_percent=100),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_diff_rule(case: Case) -> None:
    plan = diff(case.desired, case.live, case.fields, case.settings, prune=case.prune)

    assert shown(plan) == case.expected
    assert plan.unchanged == case.unchanged
    assert plan.fields_to_create == case.fields_to_create
    warnings = "\n".join(str(notice) for notice in plan.warnings)
    errors = "\n".join(str(notice) for notice in plan.errors)
    for expected in case.warnings:
        assert expected in warnings
    for expected in case.errors:
        assert expected in errors
    assert bool(plan.warnings) == bool(case.warnings), warnings
    assert bool(plan.errors) == bool(case.errors), errors
    assert plan.has_changes == bool(case.expected)


def test_update_and_delete_carry_what_apply_and_the_freshness_check_need() -> None:
    live = [live_contact(P1, 1, first="Alice"), live_contact(P2, 2, first="Bob")]
    plan = diff([desired(P1, 7, first="Alicia")], live, FIELDS, SETTINGS, prune=True)

    update, delete = plan.changes
    assert isinstance(update, Update)
    assert (update.contact_id, update.rev, update.updated) == (
        live[0].uuid,
        3,
        "2024-05-01T10:00:00Z",
    )
    assert str(update.source) == "contacts/team.yaml:7"
    assert isinstance(delete, Delete)
    assert delete.contact_id == live[1].uuid
    # The full live record travels with the delete, for the backup written before it.
    assert delete.live is live[1]
    assert delete.live.raw["first"] == "Bob"


def test_counts_owned_contacts_for_the_percentage_cap() -> None:
    live = [
        live_contact(P1, 1),
        live_contact(P2, 2, custom={}),
        live_contact(P3, 3, custom={MARKER_ID: "support"}),
    ]
    plan = diff([], live, FIELDS, SETTINGS, prune=True)

    assert plan.owned_live_count == 1


def test_plan_without_prune_counts_the_deletes_prune_would_show() -> None:
    live = [live_contact(P1, 1), live_contact(P2, 2), live_contact(P3, 3, custom={})]

    without = diff([desired(P1)], live, FIELDS, SETTINGS, prune=False)
    with_prune = diff([desired(P1)], live, FIELDS, SETTINGS, prune=True)

    assert without.prune_candidates == 1
    assert not without.deletes
    assert [delete.phone for delete in with_prune.deletes] == [P2]
    assert with_prune.prune_candidates == 0


def test_prune_within_the_caps_has_no_warning() -> None:
    live = [live_contact(f"1510555{n:04d}", n) for n in range(40)]
    declared = [desired(contact.phone) for contact in live[1:]]

    plan = diff(declared, live, FIELDS, SETTINGS, prune=True)

    assert len(plan.deletes) == 1
    assert plan.owned_live_count == 40
    assert plan.warnings == ()


def test_diff_settings_come_from_the_config() -> None:
    from reconciler.desired.config import Config, OwnershipSettings, PruneSettings

    config = Config(
        ownership=OwnershipSettings(marker_field="Owner", owner="ops"),
        prune=PruneSettings(max_deletes=3, max_delete_percent=10, protect=("1415*",)),
    )

    assert config.diff_settings() == DiffSettings("Owner", "ops", ("1415*",), 3, 10)
