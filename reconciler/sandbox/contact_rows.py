"""The sandbox database's tables, and how a stored contact becomes a row and back.

A ``--db`` file outlives the process and can be edited by hand, so a row is read back as
untrusted: a JSON column that does not decode to what the sandbox writes is a
DamagedStoreError, never a crash deep inside a request."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.files.untrusted_json import UnreadableJson, decode_json
from reconciler.sandbox.wire import ContactRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    phone TEXT NOT NULL UNIQUE,
    first TEXT,
    last TEXT,
    display_name TEXT,
    email TEXT,
    is_opted_out INTEGER NOT NULL,
    custom TEXT NOT NULL,
    tags TEXT NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    rev INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS contacts_by_updated ON contacts (updated, id);
CREATE TABLE IF NOT EXISTS fields (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL UNIQUE
);
"""

COLUMNS = (
    "id, uuid, phone, first, last, display_name, email, is_opted_out, custom, tags, "
    "created, updated, rev"
)
INSERT_CONTACT = f"INSERT INTO contacts ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
UPDATE_CONTACT = (
    "UPDATE contacts SET phone = ?, first = ?, last = ?, display_name = ?, email = ?, "
    "is_opted_out = ?, custom = ?, tags = ?, updated = ?, rev = ? WHERE id = ?"
)
# SQLite's default limit on host parameters is 999 in old builds; stay well below it.
PARAMETER_CHUNK = 500


class DamagedStoreError(Exception):
    """A row of a ``--db`` file that the sandbox did not write (edited or damaged)."""


@dataclass(frozen=True, slots=True)
class FieldDefinition:
    id: int
    title: str
    duplicate: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title}


def record_from_row(row: Sequence[Any]) -> ContactRecord:
    return ContactRecord(
        id=row[0],
        uuid=row[1],
        phone=row[2],
        first=row[3],
        last=row[4],
        display_name=row[5],
        email=row[6],
        is_opted_out=bool(row[7]),
        custom=_json_column(row, 8, "custom", dict),
        tags=tuple(_json_column(row, 9, "tags", list)),
        created=row[10],
        updated=row[11],
        rev=row[12],
    )


def row_from_record(record: ContactRecord) -> tuple[Any, ...]:
    """The values of INSERT_CONTACT, in COLUMNS order."""
    return (
        record.id,
        record.uuid,
        record.phone,
        record.first,
        record.last,
        record.display_name,
        record.email,
        int(record.is_opted_out),
        json.dumps(dict(record.custom), separators=(",", ":")),
        json.dumps(list(record.tags)),
        record.created,
        record.updated,
        record.rev,
    )


def update_parameters(record: ContactRecord) -> tuple[Any, ...]:
    """The values of UPDATE_CONTACT: every column but id, uuid and created, then the id."""
    row = row_from_record(record)
    return (*row[2:10], record.updated, record.rev, record.id)


def chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    """``values`` in slices small enough for one ``IN (...)``."""
    for start in range(0, len(values), PARAMETER_CHUNK):
        yield values[start : start + PARAMETER_CHUNK]


def _json_column(row: Sequence[Any], index: int, name: str, kind: type) -> Any:
    value: Any
    try:
        value = decode_json(row[index])
    except (UnreadableJson, TypeError):
        value = None
    if not isinstance(value, kind) or (
        isinstance(value, list) and not all(isinstance(item, str) for item in value)
    ):
        raise DamagedStoreError(
            f"the sandbox database holds a damaged `{name}` for contact {row[0]}; "
            "start the sandbox with a new --db file"
        )
    return value
