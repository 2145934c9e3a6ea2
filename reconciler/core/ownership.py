"""Ownership: which live contacts this repository owns, and the custom-field index it is read
through.

A contact is owned when its marker custom field (``ownership.marker_field``) holds the
configured owner. Custom fields are declared by title but stored by id, so the marker and
every custom value pass through one ``FieldIndex``. The diff, the executor's prune guard, the
prune backup and ``export`` all read ownership here, so they can never disagree on it.
Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from reconciler.core.model import CustomField, LiveContact
from reconciler.core.normalize import custom_value_text, normalize_text


class Marker(NamedTuple):
    """The ownership marker: the custom field (by title) and the value this repo writes."""

    field_title: str
    owner: str


@dataclass(frozen=True, slots=True)
class FieldIndex:
    """The account's custom-field definitions, both ways: title -> id and id -> title."""

    ids: Mapping[str, str]
    titles: Mapping[str, str]

    @classmethod
    def of(cls, fields: Iterable[CustomField]) -> FieldIndex:
        ids: dict[str, str] = {}
        titles: dict[str, str] = {}
        for custom_field in fields:
            # The first definition wins; the API does not let two fields share a title.
            ids.setdefault(custom_field.title, custom_field.id)
            titles.setdefault(custom_field.id, custom_field.title)
        return cls(ids, titles)


@dataclass(frozen=True, slots=True)
class Ownership:
    """The ownership test for one marker in one account."""

    marker_id: str | None
    owner_text: str | None

    @classmethod
    def of(cls, index: FieldIndex, marker: Marker) -> Ownership:
        return cls(index.ids.get(marker.field_title), normalize_text(marker.owner))

    def marker_of(self, live: LiveContact) -> str | None:
        """The owner a live contact's marker names (as text), or ``None`` when unmarked."""
        if self.marker_id is None:
            return None
        value = live.custom.get(self.marker_id)
        # Most owned contacts carry the owner exactly as written: no normalising needed.
        if value is not None and value == self.owner_text:
            return self.owner_text
        return custom_value_text(value)

    def owns(self, live: LiveContact) -> bool:
        marker = self.marker_of(live)
        return marker is not None and marker == self.owner_text
