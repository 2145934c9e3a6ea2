"""API answers to model values: tolerant where the API is loose, precise about what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.core.errors import BadResponseError
from reconciler.heymarket.parse import (
    StoredContact,
    parse_bulk_write,
    parse_contact_list,
    parse_count,
    parse_custom_fields,
    parse_delete_answer,
    parse_live_contact,
    parse_upsert_answer,
)
from tests.builders import record


def test_a_full_record_becomes_a_live_contact_keeping_the_raw_record() -> None:
    contact = parse_live_contact(record())
    assert (contact.id, contact.uuid, contact.phone, contact.rev) == (
        42,
        "5b1c-uuid",
        "15105551234",
        3,
    )
    assert (contact.first, contact.email, contact.is_opted_out) == (
        "Alice",
        "alice@example.com",
        False,
    )
    assert contact.custom == {"7": "gold"}
    assert contact.raw["display_name"] == "Alice Smith"


def test_missing_optional_fields_and_null_custom_are_tolerated() -> None:
    contact = parse_live_contact(
        record(first=..., last=..., display_name=..., email=..., is_opted_out=..., custom=None)
    )
    assert (contact.first, contact.last, contact.display_name, contact.email) == (None,) * 4
    assert contact.is_opted_out is False
    assert contact.custom == {}


def test_ids_and_revs_as_strings_and_numeric_custom_keys_are_read() -> None:
    contact = parse_live_contact(record(id="42", rev="3", custom={7: "gold", "8": 5}))
    assert (contact.id, contact.rev) == (42, 3)
    assert contact.custom == {"7": "gold", "8": 5}


@pytest.mark.parametrize(
    "updated",
    ["2025-03-01T12:00:00Z", "2025-03-01T14:00:00+02:00", "2025-03-01T12:00:00.000Z"],
)
def test_updated_with_z_or_an_offset_reads_as_the_same_instant(updated: str) -> None:
    assert parse_live_contact(record(updated=updated)).updated == "2025-03-01T12:00:00Z"


def test_the_phone_comes_from_the_phone_channel_when_phone_is_absent() -> None:
    contact = parse_live_contact(
        record(phone=..., contact_channels=[{"channel_type": "phone", "channel_id": "14155550000"}])
    )
    assert contact.phone == "14155550000"


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"id": ...}, "without `id`"),
        ({"uuid": ...}, "without `uuid`"),
        ({"updated": ...}, "without `updated`"),
        ({"updated": "yesterday"}, "timestamp in `updated`"),
        ({"id": "forty-two"}, "integer in `id`"),
        ({"custom": ["gold"]}, "object or null in `custom`"),
        ({"custom": {"7": {"nested": 1}}}, "scalar value for custom field 7"),
        ({"first": ["Alice"]}, "text or null in `first`"),
        ({"is_opted_out": "maybe"}, "boolean in `is_opted_out`"),
        ({"phone": ...}, "without a phone number"),
    ],
)
def test_a_wrong_shape_says_what_was_wrong(changes: dict[str, Any], complaint: str) -> None:
    with pytest.raises(BadResponseError, match=complaint):
        parse_live_contact(record(**changes))


def test_a_list_answer_may_be_a_bare_array_or_wrapped() -> None:
    assert len(parse_contact_list([record()])) == 1
    assert len(parse_contact_list({"contacts": [record()]})) == 1
    with pytest.raises(BadResponseError, match="array of contacts"):
        parse_contact_list({"data": "nope"})


def test_count_custom_fields_and_delete_answers() -> None:
    assert parse_count({"count": 12}) == 12
    assert parse_count(12) == 12
    with pytest.raises(BadResponseError, match="contact count"):
        parse_count({"total": "many"})
    fields = parse_custom_fields([{"id": 7, "title": "Account tier", "duplicate": False}])
    assert [(field.id, field.title) for field in fields] == [("7", "Account tier")]
    parse_delete_answer("ok")
    with pytest.raises(BadResponseError, match='expected "ok"'):
        parse_delete_answer({"deleted": 0})


def test_a_bulk_answer_splits_into_succeeded_and_failed_with_reasons() -> None:
    sent = {"contact_channels": [{"channel_type": "phone", "channel_id": "1"}]}
    succeeded, failed = parse_bulk_write(
        {
            "contacts": [record()],
            "failed_contacts": [
                {"contact": sent, "error": "invalid_phone", "message": "phone '1' is too short"}
            ],
        }
    )
    assert [item["id"] for item in succeeded] == [42]
    assert len(failed) == 1
    assert (failed[0].item, failed[0].code, failed[0].message) == (
        sent,
        "invalid_phone",
        "phone '1' is too short",
    )
    with pytest.raises(BadResponseError):
        parse_bulk_write(["not", "an", "object"])


def test_a_refusal_reason_is_one_short_line_whatever_the_server_wrote() -> None:
    body = {
        "contacts": [],
        "failed_contacts": [
            {"contact": {"phone": "15105551234"}, "error": "bad\ncode", "message": "a\nb" * 400}
        ],
    }
    (_, [refusal]) = parse_upsert_answer(body)
    assert "\n" not in refusal.message and "\n" not in refusal.code
    assert len(refusal.message) < 400


def test_a_bulk_answer_carries_the_values_as_stored_and_skips_what_it_cannot_read() -> None:
    stored = StoredContact.of(
        {
            "phone": "15105550001",
            "uuid": "u1",
            "first": "Ana Maria",
            "last": 7,
            "email": {"not": "text"},
            "is_opted_out": "true",
            "custom": {"901": "gold"},
            "tags": "VIP",
        }
    )
    assert (stored.phone, stored.uuid) == ("15105550001", "u1")
    assert stored.fields == {"first": "Ana Maria", "last": "7", "is_opted_out": True}
    assert stored.custom == {"901": "gold"}
    assert stored.tags is None
    assert StoredContact.of({"uuid": "u2"}) == StoredContact(None, "u2")
