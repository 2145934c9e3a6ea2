"""The plan value: its JSON form, the prune guard, and the v2 bodies apply sends."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core.diff import DiffSettings, diff
from reconciler.core.errors import EXIT_REFUSED, PruneCapExceededError
from reconciler.core.model import LiveContact
from reconciler.core.plan import Create, Update, check_prune_caps
from reconciler.heymarket.encode import to_upsert_item
from tests.builders import FIELDS, MARKER, MARKER_ID, OWNER, SETTINGS, TIER_ID, declared, live

P1, P2, P3 = "15105550001", "15105550002", "15105550003"
FIELD_IDS = {MARKER: MARKER_ID, "Account tier": TIER_ID}


def plan_with_deletes(count: int) -> Any:
    contacts = [live(f"1510555{n:04d}", n) for n in range(count)]
    return diff([], contacts, FIELDS, SETTINGS, prune=True)


# --- the prune guard ---------------------------------------------------------------------


def test_guard_refuses_over_max_deletes_stating_numbers_and_way_out() -> None:
    plan = plan_with_deletes(30)

    with pytest.raises(PruneCapExceededError) as refused:
        check_prune_caps(plan, 1000, max_deletes=25, max_delete_percent=5)

    assert str(refused.value) == (
        "Refusing to prune 30 contacts: over prune.max_deletes (25). "
        "Raise it in reconciler.yaml or pass --max-deletes 30 for this run."
    )
    assert refused.value.exit_code == EXIT_REFUSED


def test_guard_refuses_over_max_delete_percent() -> None:
    plan = plan_with_deletes(30)

    with pytest.raises(PruneCapExceededError) as refused:
        check_prune_caps(plan, 250, max_deletes=50, max_delete_percent=5)

    assert str(refused.value) == (
        "Refusing to prune 30 contacts: 30 is 12.0% of 250 owned contacts, over "
        "prune.max_delete_percent (5%). "
        "Raise it in reconciler.yaml or pass --max-deletes 30 for this run."
    )


def test_guard_allows_deletes_within_both_caps() -> None:
    plan = plan_with_deletes(5)

    check_prune_caps(plan, 100, max_deletes=5, max_delete_percent=5)


def test_guard_allows_a_plan_without_deletes_whatever_the_caps() -> None:
    plan = diff([declared(P1)], [], FIELDS, SETTINGS, prune=True)

    check_prune_caps(plan, 0, max_deletes=0, max_delete_percent=0)


def test_max_deletes_flag_replaces_both_caps_for_the_run() -> None:
    plan = plan_with_deletes(30)

    check_prune_caps(plan, 30, max_deletes=25, max_delete_percent=5, run_max_deletes=30)
    with pytest.raises(PruneCapExceededError, match=r"over --max-deletes \(29\)\. Pass "):
        check_prune_caps(plan, 30, max_deletes=25, max_delete_percent=5, run_max_deletes=29)


# --- the JSON plan -----------------------------------------------------------------------


def test_json_plan_has_designs_shape_and_stable_order() -> None:
    plan = diff(
        [declared(P2, 4, last="Jones-Smith"), declared(P1, 3, first="Alice")],
        [live(P2, 2, last="Jones"), live(P3, 3)],
        FIELDS,
        DiffSettings(MARKER, OWNER, max_delete_percent=100),
        prune=True,
    )

    document = plan.to_json_dict()

    assert list(document) == [
        "format_version",
        "summary",
        "changes",
        "warnings",
        "errors",
        "fields_to_create",
    ]
    assert document["format_version"] == 1
    assert document["summary"] == {"create": 1, "update": 1, "delete": 1, "unchanged": 0}
    create, update, delete = document["changes"]
    assert create == {
        "action": "create",
        "phone": P1,
        "source": "contacts/team.yaml:3",
        "fields": {"first": {"before": None, "after": "Alice"}},
        "custom": {MARKER: {"before": None, "after": OWNER}},
    }
    assert update["action"] == "update"
    assert update["contact_id"] == "00000000-0000-4000-8000-000000000002"
    assert update["fields"] == {"last": {"before": "Jones", "after": "Jones-Smith"}}
    assert (delete["action"], delete["phone"]) == ("delete", P3)
    assert "live" not in delete


def test_summary_line_reads_like_terraform() -> None:
    plan = diff([declared(P1), declared(P2)], [live(P3)], FIELDS, SETTINGS, prune=False)

    assert str(plan.summary) == "Plan: 2 to create, 0 to update, 0 to delete."


# --- the bodies apply sends --------------------------------------------------------------


def test_create_item_carries_phone_fields_custom_ids_and_marker() -> None:
    plan = diff(
        [declared(P1, first="Alice", custom={"Account tier": "gold"})],
        [],
        FIELDS,
        SETTINGS,
        prune=False,
    )
    (create,) = plan.changes
    assert isinstance(create, Create)

    item = to_upsert_item(create, FIELD_IDS, plan.marker)

    assert item == {
        "contact_channels": [{"channel_type": "phone", "channel_id": P1}],
        "first": "Alice",
        "custom": {TIER_ID: "gold", MARKER_ID: OWNER},
    }


def test_update_item_is_partial_clears_with_null_and_always_writes_the_marker() -> None:
    plan = diff(
        [declared(P1, first="Alice", last=None)],
        [live(P1, first="Alice", last="Smith")],
        FIELDS,
        SETTINGS,
        prune=False,
    )
    (update,) = plan.changes
    assert isinstance(update, Update)

    item = to_upsert_item(update, FIELD_IDS, plan.marker)

    assert item == {
        "contact_id": "00000000-0000-4000-8000-000000000001",
        "contact_channels": [{"channel_type": "phone", "channel_id": P1}],
        "last": None,
        "custom": {MARKER_ID: OWNER},
    }


def test_item_for_a_field_not_created_yet_is_refused() -> None:
    plan = diff([declared(P1, custom={"Region": "west"})], [], FIELDS, SETTINGS, prune=False)
    (create,) = plan.changes
    assert isinstance(create, Create)

    with pytest.raises(ValueError, match="'Region' has no id"):
        to_upsert_item(create, FIELD_IDS, plan.marker)


def _store_the_way_the_server_does(contact: LiveContact, item: dict[str, Any]) -> LiveContact:
    """The API page's assumed partial update: only the fields sent change, custom merges per key,
    and text is stored trimmed (what the normaliser expects)."""
    values: dict[str, Any] = {}
    for name in ("first", "last", "display_name", "email", "is_opted_out"):
        if name in item:
            value = item[name]
            values[name] = value.strip() if isinstance(value, str) else value
    custom = dict(contact.custom)
    for key, value in item["custom"].items():
        if value is None:
            custom.pop(key, None)
        else:
            custom[key] = str(value)
    return dataclasses.replace(contact, custom=custom, rev=contact.rev + 1, **values)


def test_a_plan_right_after_applying_it_is_empty() -> None:
    contacts = [
        declared(P1, first=" Alice ", email="Alice@Example.com", custom={"Account tier": 3}),
        declared(P2, last=None, is_opted_out=True),
        declared(P3, first="Carl", custom={"Account tier": None}),
    ]
    accounts = [
        live(P2, 2, last="Jones", custom={}),
        live(P3, 3, first="Karl", custom={MARKER_ID: OWNER, TIER_ID: "gold"}),
    ]
    plan = diff(contacts, accounts, FIELDS, SETTINGS, prune=False)
    assert plan.has_changes

    by_phone = {contact.phone: contact for contact in accounts}
    for number, change in enumerate(plan.changes, start=10):
        item = to_upsert_item(change, FIELD_IDS, plan.marker)  # type: ignore[arg-type]
        base = by_phone.get(change.phone) or live(change.phone, number, custom={})
        by_phone[change.phone] = _store_the_way_the_server_does(base, item)

    again = diff(contacts, list(by_phone.values()), FIELDS, SETTINGS, prune=False)
    assert not again.has_changes
    assert again.unchanged == 3


TEXTS = st.sampled_from([None, "", "Ann", " Ann ", "ann", "Bo", "A@X.io", "a@x.io "])
CUSTOM_VALUES = st.sampled_from([None, "", "gold", " gold", 5, "5", True, "true"])
MARKERS = st.sampled_from([{}, {MARKER_ID: OWNER}, {MARKER_ID: "support"}, {MARKER_ID: ""}])
PHONES = ["15105550001", "15105550002", "15105550003", "15105550004"]


@st.composite
def accounts_and_declarations(draw: st.DrawFn) -> tuple[list[Any], list[Any]]:
    declared_phones = draw(st.lists(st.sampled_from(PHONES), unique=True))
    live_phones = draw(st.lists(st.sampled_from(PHONES), unique=True))
    contacts = []
    for line, phone in enumerate(declared_phones, start=1):
        fields: dict[str, Any] = draw(
            st.dictionaries(st.sampled_from(["first", "last", "email"]), TEXTS, max_size=3)
        )
        if draw(st.booleans()):
            fields["is_opted_out"] = draw(st.booleans())
        custom = draw(st.dictionaries(st.just("Account tier"), CUSTOM_VALUES, max_size=1))
        contacts.append(declared(phone, line, custom=custom, **fields))
    accounts = []
    for number, phone in enumerate(live_phones, start=1):
        custom = dict(draw(MARKERS))
        tier = draw(CUSTOM_VALUES)
        if tier is not None:
            custom[TIER_ID] = tier
        accounts.append(
            live(
                phone,
                number,
                custom=custom,
                first=draw(TEXTS),
                last=draw(TEXTS),
                email=draw(TEXTS),
                is_opted_out=draw(st.booleans()),
            )
        )
    return contacts, accounts


@given(accounts_and_declarations())
@settings(max_examples=150, deadline=None)
def test_any_plan_applied_the_way_the_server_stores_it_converges(
    case: tuple[list[Any], list[Any]],
) -> None:
    contacts, accounts = case
    plan = diff(contacts, accounts, FIELDS, SETTINGS, prune=False)

    by_phone = {contact.phone: contact for contact in accounts}
    for number, change in enumerate(plan.changes, start=10):
        assert isinstance(change, Create | Update)
        item = to_upsert_item(change, FIELD_IDS, plan.marker)
        base = by_phone.get(change.phone) or live(change.phone, number, custom={})
        by_phone[change.phone] = _store_the_way_the_server_does(base, item)
        # Opt-out is one way: nothing the tool sends turns an opted-out contact back on.
        assert not (base.is_opted_out and item.get("is_opted_out") is False)

    again = diff(contacts, list(by_phone.values()), FIELDS, SETTINGS, prune=False)
    assert not again.has_changes, again.changes
    assert again.errors == plan.errors
