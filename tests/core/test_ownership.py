"""The one ownership test and custom-field index the diff, prune, backup and export share."""

from __future__ import annotations

import pytest

from reconciler.core.model import CustomField, LiveContact
from reconciler.core.normalize import CustomValue
from reconciler.core.ownership import FieldIndex, Marker, Ownership

MARKER = Marker("Managed by", "team-a")


def live(custom: dict[str, CustomValue]) -> LiveContact:
    return LiveContact(
        id=1,
        uuid="u1",
        phone="14155550101",
        first=None,
        last=None,
        display_name=None,
        email=None,
        is_opted_out=False,
        custom=custom,
        rev=1,
        updated="2026-01-01T00:00:00Z",
    )


def test_the_first_definition_wins_both_ways() -> None:
    index = FieldIndex.of(
        [
            CustomField("1", "Managed by"),
            CustomField("2", "Managed by"),
            CustomField("1", "Renamed"),
            CustomField("3", "Tier"),
        ]
    )
    assert index.ids == {"Managed by": "1", "Renamed": "1", "Tier": "3"}
    assert index.titles == {"1": "Managed by", "2": "Managed by", "3": "Tier"}


@pytest.mark.parametrize(
    ("value", "marker", "owned"),
    [
        ("team-a", "team-a", True),
        ("  team-a ", "team-a", True),
        ("team-b", "team-b", False),
        ("", None, False),
        (None, None, False),
        (7, "7", False),
    ],
)
def test_a_contact_is_owned_when_its_marker_names_the_owner(
    value: CustomValue, marker: str | None, owned: bool
) -> None:
    ownership = Ownership.of(FieldIndex.of([CustomField("1", "Managed by")]), MARKER)
    contact = live({"1": value, "2": "team-a"})
    assert ownership.marker_of(contact) == marker
    assert ownership.owns(contact) is owned


def test_without_the_marker_field_in_the_account_nothing_is_owned() -> None:
    ownership = Ownership.of(FieldIndex.of([CustomField("2", "Tier")]), MARKER)
    contact = live({"2": "team-a"})
    assert ownership.marker_of(contact) is None
    assert not ownership.owns(contact)
