"""The values the pipeline passes around: declared contacts, live contacts, custom fields.

Raw dicts stop at the edges (YAML loading, API responses); everything past them is one of
these frozen values."""

from __future__ import annotations

import collections
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from reconciler.core.normalize import CustomValue
from reconciler.core.phones import is_canonical_phone

# The standard contact fields a desired-state file may manage, in canonical order
# (``phone`` first, then ``tags``, ``custom`` last, as ``fmt`` writes them).
STANDARD_FIELDS: tuple[str, ...] = ("first", "last", "display_name", "email", "is_opted_out")
CANONICAL_KEY_ORDER: tuple[str, ...] = ("phone", *STANDARD_FIELDS, "tags", "custom")

StandardValue = str | bool | None
# The ``raw`` of a contact that kept none: one shared, read-only empty mapping.
_NO_RAW: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where a declared contact was written: file path (as given, relative when possible)
    and 1-based line."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class DesiredContact:
    """A contact as declared in YAML.

    Only the keys present in the file are managed: ``fields`` holds the standard fields that
    were written (a ``None`` value means "managed and cleared"), ``custom`` the custom fields
    by title. A key that is absent is not managed and its live value is left alone.
    ``tags`` likewise: ``None`` is not managed, ``()`` is managed and cleared; a set, so their
    order never makes a change."""

    phone: str
    fields: Mapping[str, StandardValue]
    custom: Mapping[str, CustomValue]
    source: SourceLocation
    tags: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        # The identity that prune compares: a declared contact with any other spelling of
        # its phone would look undeclared, and its live contact would be deleted.
        if not is_canonical_phone(self.phone):
            raise ValueError(f"declared phone {self.phone!r} is not canonical ({self.source})")


@dataclass(frozen=True, slots=True)
class LiveContact:
    """A contact as the Heymarket API returns it.

    ``custom`` is keyed by the numeric custom-field id as a string, as the API does.
    ``raw`` is the full record as the API answered it, where it was kept (search answers, which
    prune backups are made from); a whole-account listing keeps only the typed fields."""

    id: int
    uuid: str
    phone: str
    first: str | None
    last: str | None
    display_name: str | None
    email: str | None
    is_opted_out: bool
    custom: Mapping[str, CustomValue]
    rev: int
    updated: str
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # At most 5 labels (API); export can group files by the first.
    tags: tuple[str, ...] = ()

    @classmethod
    def from_columns(cls, columns: Mapping[str, Sequence[Any]], count: int) -> list[LiveContact]:
        """``count`` contacts from one column of values per field (``raw`` left empty), each
        value already of its field's type: the caller has checked them, nothing is checked
        here. The generated ``__init__`` of a frozen dataclass sets each field through
        ``object.__setattr__`` (about 1.5 µs a contact, 150 ms for 100k); filling the slots a
        column at a time takes half of that. The contacts are as frozen as any other."""
        contacts = list(map(object.__new__, itertools.repeat(cls, count)))
        for name in (item.name for item in fields(cls)):
            column = itertools.repeat(_NO_RAW, count) if name == "raw" else columns[name]
            collections.deque(map(getattr(cls, name).__set__, contacts, column), maxlen=0)
        return contacts

    def record(self) -> dict[str, Any]:
        """The API record: the full one where it was kept, else one rebuilt from the fields."""
        if self.raw:
            return dict(self.raw)
        return {
            "id": self.id,
            "uuid": self.uuid,
            "phone": self.phone,
            "first": self.first,
            "last": self.last,
            "display_name": self.display_name,
            "email": self.email,
            "is_opted_out": self.is_opted_out,
            "custom": dict(self.custom),
            "rev": self.rev,
            "updated": self.updated,
            "tags": list(self.tags),
        }

    def standard_value(self, name: str) -> StandardValue:
        """The live value of one of ``STANDARD_FIELDS``."""
        value: StandardValue = getattr(self, name)
        return value


@dataclass(frozen=True, slots=True)
class CustomField:
    """A custom-field definition of the account."""

    id: str
    title: str
