"""What a create or a partial update makes of a stored contact, without a database."""

from __future__ import annotations

from typing import Any

from reconciler.sandbox.contact_changes import changed_contact, custom_values_set, new_contact
from reconciler.sandbox.wire import ContactRecord, ContactWrite, parse_write


def write(**item: Any) -> ContactWrite:
    return parse_write({"phone": "15105550001", **item})


def created(sent: ContactWrite) -> ContactRecord:
    return new_contact(
        sent,
        phone="15105550001",
        custom=custom_values_set(sent),
        contact_id=7,
        created=100,
        updated=100,
        rev=1,
    )


def test_a_create_stores_what_it_carries_and_defaults_the_rest() -> None:
    record = created(write(first=" Ana ", last="Lopez", custom={"3": 5, "4": ""}, tags=["vip"]))
    assert (record.first, record.last, record.display_name) == ("Ana", "Lopez", "Ana Lopez")
    assert (record.email, record.is_opted_out) == (None, False)
    assert record.custom == {"3": "5"}
    assert record.tags == ("vip",)
    assert (record.id, record.created, record.updated, record.rev) == (7, 100, 100, 1)


def test_an_update_changes_only_what_it_carries() -> None:
    existing = created(write(first="Ana", email="ana@x.com", custom={"3": "a", "4": "b"}))
    record = changed_contact(
        existing,
        write(first=None, custom={"3": None, "5": True}, is_opted_out=True),
        phone=existing.phone,
        now=200,
    )
    assert record.first is None
    assert record.email == "ana@x.com"
    assert record.display_name == existing.display_name  # not re-derived on update
    assert record.custom == {"4": "b", "5": "true"}
    assert record.is_opted_out is True
    assert record.tags == existing.tags
    assert (record.uuid, record.created) == (existing.uuid, existing.created)
    assert (record.updated, record.rev) == (200, existing.rev + 1)


def test_an_update_carrying_tags_replaces_the_whole_set() -> None:
    existing = created(write(tags=["vip", "west"]))
    now = existing.updated + 1
    assert changed_contact(existing, write(tags=["east"]), phone="1", now=now).tags == ("east",)
    assert changed_contact(existing, write(tags=None), phone="1", now=now).tags == ()
