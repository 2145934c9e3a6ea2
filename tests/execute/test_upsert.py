"""How a bulk answer is matched to the changes sent: only an answer that accounts for a
change beyond doubt counts; anything else is re-read (the unit view of the rule that
test_phone_identity checks end to end)."""

from __future__ import annotations

from reconciler.core.model import SourceLocation
from reconciler.core.plan import Create, Update
from reconciler.execute.upsert import match_answer
from reconciler.heymarket import Refusal, StoredContact, UnknownOutcome, UpsertResult

SOURCE = SourceLocation("contacts/a.yaml", 2)


def create(phone: str) -> Create:
    return Create(phone, SOURCE, {}, {})


def update(phone: str, contact_id: str) -> Update:
    return Update(phone, contact_id, 1, "2026-01-01T00:00:00Z", SOURCE, {}, {})


def test_each_change_named_once_gets_its_outcome() -> None:
    batch: list[Create | Update] = [
        create("14155550101"),
        update("14155550102", "u2"),
        create("14155550103"),
    ]
    refusal = Refusal("14155550103", None, "invalid_field", "no such field")
    created, updated = StoredContact("14155550101", "u1"), StoredContact(None, "u2")
    result = UpsertResult(succeeded=[created, updated], failed=[refusal])
    assert match_answer(batch, result) == {
        "14155550101": created,
        "14155550102": updated,
        "14155550103": refusal,
    }


def test_a_change_named_twice_or_not_at_all_is_left_to_a_re_read() -> None:
    batch = [create("14155550101"), create("14155550102"), create("14155550103")]
    result = UpsertResult(
        succeeded=[
            StoredContact("14155550101", "u1"),
            StoredContact("14155550101", "u9"),
            StoredContact("19995550000", "u3"),
        ],
        ambiguous=[UnknownOutcome({}, "14155550102", None)],
    )
    assert match_answer(batch, result) == {}


def test_an_update_answered_under_another_contact_id_is_left_to_a_re_read() -> None:
    batch = [update("14155550102", "u2")]
    result = UpsertResult(succeeded=[StoredContact("14155550102", "u7")])
    assert match_answer(batch, result) == {}
