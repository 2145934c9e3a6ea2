"""Which stored values count as rewritten (only those the next diff would still find
different), and how a plan is marked from what the journal saw."""

from __future__ import annotations

from reconciler.core.model import SourceLocation
from reconciler.core.plan import Create, FieldChange, Plan, TagsChange
from reconciler.core.rewrites import (
    SentValue,
    custom_label,
    mark_seen_rewrites,
    unpredicted_rewrites,
)
from tests.builders import SETTINGS

PHONE = "15105550001"


def create(**after: str) -> Create:
    return Create(
        PHONE,
        SourceLocation("contacts/a.yaml", 2),
        {name: FieldChange(None, value) for name, value in after.items()},
        {"Tier": FieldChange(None, "7")},
        TagsChange((), ("VIP",)),
    )


def test_only_what_normalize_does_not_predict_is_a_rewrite() -> None:
    change = create(first="Ana  Maria", email="Ana@Example.com")
    stored: dict[str, SentValue] = {
        "first": "Ana Maria",
        "email": "ana@example.com",  # lower-cased: predicted
        custom_label("Tier"): "7",
        "tags": ("VIP",),
    }
    (rewrite,) = unpredicted_rewrites(change, stored)
    assert (rewrite.label, rewrite.sent, rewrite.stored) == ("first", "Ana  Maria", "Ana Maria")
    assert 'Declare "Ana Maria" instead' in rewrite.message()
    # A value the answer does not carry is not compared.
    assert unpredicted_rewrites(change, {}) == []


def test_a_change_is_marked_only_when_it_sends_the_value_rewritten_before() -> None:
    plan = Plan(
        changes=(create(first="Ana  Maria"),),
        unchanged=0,
        marker=SETTINGS.marker,
        fields_to_create=(),
        warnings=(),
        errors=(),
        prune=False,
        owned_live_count=0,
        prune_candidates=0,
    )
    seen = {(PHONE, "first"): "Ana  Maria", (PHONE, "tags"): ["VIP"], (PHONE, "last"): "X"}
    (marked,) = mark_seen_rewrites(plan, seen).changes
    assert isinstance(marked, Create) and marked.rewritten == ("first", "tags")
    assert marked.to_json_dict()["rewritten_by_account"] == ["first", "tags"]
    (unmarked,) = mark_seen_rewrites(plan, {(PHONE, "first"): "Ana"}).changes
    assert "rewritten_by_account" not in unmarked.to_json_dict()
