"""The sandbox account in SQLite: contacts and custom-field definitions.

One connection guarded by one lock: the HTTP server is threaded, and SQLite serialises
writers anyway. Listing is an indexed range scan on (updated, id), so a page costs the same
at contact 100 as at contact 100,000."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from reconciler.files.untrusted_json import UnreadableJson, decode_json
from reconciler.sandbox.wire import (
    DUPLICATE_PHONE,
    INVALID_FIELD,
    INVALID_PHONE,
    NOT_FOUND,
    BadRequest,
    ContactRecord,
    ContactWrite,
    FailedItem,
    ItemError,
    SeedContact,
)

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


@dataclass(frozen=True, slots=True)
class FieldDefinition:
    id: int
    title: str
    duplicate: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title}


def now_seconds() -> int:
    """The server clock: ``updated`` has one-second resolution."""
    return int(time.time())


class DamagedStoreError(Exception):
    """A row of a ``--db`` file that the sandbox did not write (edited or damaged)."""


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


def _record(row: Sequence[Any]) -> ContactRecord:
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


def _row(record: ContactRecord) -> tuple[Any, ...]:
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


def _default_display_name(first: object, last: object) -> str | None:
    parts = [part for part in (first, last) if isinstance(part, str) and part]
    return " ".join(parts) or None


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), PARAMETER_CHUNK):
        yield values[start : start + PARAMETER_CHUNK]


class ContactStore:
    """A Heymarket account: contacts and custom-field definitions."""

    def __init__(self, path: Path | None = None) -> None:
        self._connection = sqlite3.connect(
            ":memory:" if path is None else str(path), check_same_thread=False
        )
        self._lock = threading.RLock()
        with self._lock, self._connection:
            if path is not None:
                self._connection.execute("PRAGMA journal_mode = WAL")
                self._connection.execute("PRAGMA synchronous = NORMAL")
            self._connection.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._connection:
            yield self._connection

    # -- reads -------------------------------------------------------------------------

    def list_page(
        self, *, limit: int, page: int, date: float | None, ascending: bool
    ) -> list[ContactRecord]:
        """One page of ``limit`` in (updated, id) order, ``date`` an inclusive bound."""
        if ascending:
            where, order = "updated >= ?", "updated ASC, id ASC"
        else:
            where, order = "updated <= ?", "updated DESC, id DESC"
        query = f"SELECT {COLUMNS} FROM contacts"
        parameters: list[Any] = []
        if date is not None:
            query += f" WHERE {where}"
            parameters.append(date)
        query += f" ORDER BY {order} LIMIT ? OFFSET ?"
        parameters += [limit, page * limit]
        with self._lock:
            rows = self._connection.execute(query, parameters).fetchall()
        return [_record(row) for row in rows]

    def all_contacts(self) -> list[ContactRecord]:
        with self._lock:
            rows = self._connection.execute(f"SELECT {COLUMNS} FROM contacts ORDER BY id")
            return [_record(row) for row in rows.fetchall()]

    def find_by(self, column: str, values: Sequence[str]) -> list[ContactRecord]:
        """Contacts whose ``phone`` or ``uuid`` is one of ``values``, in id order."""
        if column not in ("phone", "uuid"):
            raise ValueError(column)
        found: list[ContactRecord] = []
        with self._lock:
            for chunk in _chunks(list(dict.fromkeys(values))):
                marks = ", ".join("?" * len(chunk))
                rows = self._connection.execute(
                    f"SELECT {COLUMNS} FROM contacts WHERE {column} IN ({marks})", list(chunk)
                )
                found += [_record(row) for row in rows.fetchall()]
        return sorted(found, key=lambda record: record.id)

    def count(self) -> int:
        with self._lock:
            (total,) = self._connection.execute("SELECT COUNT(*) FROM contacts").fetchone()
        return int(total)

    def fields(self) -> list[FieldDefinition]:
        with self._lock:
            rows = self._connection.execute("SELECT id, title FROM fields ORDER BY id")
            return [FieldDefinition(id=row[0], title=row[1]) for row in rows.fetchall()]

    # -- writes ------------------------------------------------------------------------

    def reset(self) -> None:
        with self._transaction() as connection:
            connection.execute("DELETE FROM contacts")
            connection.execute("DELETE FROM fields")

    def create_fields(self, titles: Iterable[str]) -> list[FieldDefinition]:
        """Create each title that does not exist yet; an existing one comes back as a
        ``duplicate`` with its id."""
        created: list[FieldDefinition] = []
        with self._transaction() as connection:
            for title in titles:
                row = connection.execute("SELECT id FROM fields WHERE title = ?", (title,))
                existing = row.fetchone()
                if existing is not None:
                    created.append(FieldDefinition(existing[0], title, duplicate=True))
                    continue
                cursor = connection.execute("INSERT INTO fields (title) VALUES (?)", (title,))
                assert cursor.lastrowid is not None
                created.append(FieldDefinition(cursor.lastrowid, title))
        return created

    def bulk_write(
        self, writes: Sequence[ContactWrite]
    ) -> tuple[list[ContactRecord], list[FailedItem]]:
        """Creates (no contact_id) and partial updates, all stamped with the same second."""
        now = now_seconds()
        succeeded: list[ContactRecord] = []
        failed: list[FailedItem] = []
        with self._transaction() as connection:
            field_ids = self._field_ids(connection)
            for write in writes:
                try:
                    if write.contact_id is None:
                        succeeded.append(self._create(connection, write, field_ids, now))
                    else:
                        existing = self._one(connection, "uuid", write.contact_id)
                        if existing is None:
                            raise ItemError(NOT_FOUND, f"no contact {write.contact_id}")
                        succeeded.append(self._update(connection, existing, write, field_ids, now))
                except ItemError as refusal:
                    failed.append(FailedItem(write.sent, refusal.code, refusal.message))
        return succeeded, failed

    def legacy_batch(self, writes: Sequence[ContactWrite], *, overwrite: bool) -> list[FailedItem]:
        """v1 batch: creates by phone; an existing phone is skipped, or updated when
        ``overwrite``."""
        now = now_seconds()
        failed: list[FailedItem] = []
        with self._transaction() as connection:
            field_ids = self._field_ids(connection)
            for write in writes:
                try:
                    if write.phone is None:
                        raise ItemError(INVALID_PHONE, "a contact needs a phone")
                    existing = self._one(connection, "phone", write.phone)
                    if existing is None:
                        self._create(connection, write, field_ids, now)
                    elif overwrite:
                        self._update(connection, existing, write, field_ids, now)
                except ItemError as refusal:
                    failed.append(FailedItem(write.sent, refusal.code, refusal.message))
        return failed

    def delete(self, uuids: Sequence[str]) -> int:
        """Permanently delete; unknown ids are ignored (the API gives no per-item result)."""
        deleted = 0
        with self._transaction() as connection:
            for chunk in _chunks(list(uuids)):
                marks = ", ".join("?" * len(chunk))
                cursor = connection.execute(
                    f"DELETE FROM contacts WHERE uuid IN ({marks})", list(chunk)
                )
                deleted += cursor.rowcount
        return deleted

    def seed(self, contacts: Sequence[SeedContact]) -> list[ContactRecord]:
        """Preload contacts with one executemany. Custom keys that are not field ids are
        taken as field titles, and those fields are created."""
        now = now_seconds()
        known_ids = {str(definition.id) for definition in self.fields()}
        wanted_titles = sorted(
            {key for contact in contacts for key in contact.write.custom} - known_ids
        )
        field_id_of = {key: key for key in known_ids}
        for definition in self.create_fields(wanted_titles):
            field_id_of[definition.title] = str(definition.id)
        with self._transaction() as connection:
            (last_id,) = connection.execute("SELECT COALESCE(MAX(id), 0) FROM contacts").fetchone()
            records: list[ContactRecord] = []
            seen_phones: set[str] = set()
            for offset, contact in enumerate(contacts, start=1):
                write = contact.write
                if write.phone is None:
                    raise BadRequest(f"seed contact {offset} has no phone")
                if write.phone in seen_phones:
                    raise BadRequest(f"seed contact {offset}: phone {write.phone} appears twice")
                seen_phones.add(write.phone)
                first, last = _text(write.fields.get("first")), _text(write.fields.get("last"))
                updated = now if contact.updated is None else contact.updated
                records.append(
                    ContactRecord(
                        id=last_id + offset,
                        uuid=str(uuid.uuid4()),
                        phone=write.phone,
                        first=first,
                        last=last,
                        display_name=_text(write.fields.get("display_name"))
                        or _default_display_name(first, last),
                        email=_text(write.fields.get("email")),
                        is_opted_out=write.fields.get("is_opted_out") is True,
                        custom={
                            field_id_of[key]: value
                            for key, value in write.custom.items()
                            if value is not None
                        },
                        tags=write.tags or (),
                        created=updated if contact.created is None else contact.created,
                        updated=updated,
                        rev=contact.rev,
                    )
                )
            taken = self._phones_taken(connection, sorted(seen_phones))
            if taken:
                raise BadRequest(f"seed phone {taken[0]} already exists in the account")
            connection.executemany(INSERT_CONTACT, [_row(record) for record in records])
        return records

    # -- helpers -----------------------------------------------------------------------

    @staticmethod
    def _field_ids(connection: sqlite3.Connection) -> set[str]:
        return {str(row[0]) for row in connection.execute("SELECT id FROM fields")}

    @staticmethod
    def _one(connection: sqlite3.Connection, column: str, value: str) -> ContactRecord | None:
        row = connection.execute(
            f"SELECT {COLUMNS} FROM contacts WHERE {column} = ?", (value,)
        ).fetchone()
        return None if row is None else _record(row)

    @staticmethod
    def _phones_taken(connection: sqlite3.Connection, phones: Sequence[str]) -> list[str]:
        taken: list[str] = []
        for chunk in _chunks(phones):
            marks = ", ".join("?" * len(chunk))
            rows = connection.execute(
                f"SELECT phone FROM contacts WHERE phone IN ({marks})", list(chunk)
            )
            taken += [row[0] for row in rows.fetchall()]
        return taken

    @staticmethod
    def _check_custom_keys(write: ContactWrite, field_ids: set[str]) -> None:
        unknown = sorted(key for key in write.custom if key not in field_ids)
        if unknown:
            raise ItemError(
                INVALID_FIELD,
                f"unknown custom field id {unknown[0]}; list them with POST /v1/contact-fields",
            )

    def _create(
        self,
        connection: sqlite3.Connection,
        write: ContactWrite,
        field_ids: set[str],
        now: int,
    ) -> ContactRecord:
        if write.phone is None:
            raise ItemError(INVALID_PHONE, "a new contact needs a phone in contact_channels")
        if self._one(connection, "phone", write.phone) is not None:
            raise ItemError(DUPLICATE_PHONE, f"a contact with phone {write.phone} exists")
        self._check_custom_keys(write, field_ids)
        first, last = _text(write.fields.get("first")), _text(write.fields.get("last"))
        display_name = _text(write.fields.get("display_name"))
        record = ContactRecord(
            id=0,
            uuid=str(uuid.uuid4()),
            phone=write.phone,
            first=first,
            last=last,
            display_name=display_name or _default_display_name(first, last),
            email=_text(write.fields.get("email")),
            is_opted_out=write.fields.get("is_opted_out") is True,
            custom={key: value for key, value in write.custom.items() if value is not None},
            tags=write.tags or (),
            created=now,
            updated=now,
            rev=1,
        )
        # id None: SQLite assigns the next one
        cursor = connection.execute(INSERT_CONTACT, (None, *_row(record)[1:]))
        assert cursor.lastrowid is not None
        return replace(record, id=cursor.lastrowid)

    def _update(
        self,
        connection: sqlite3.Connection,
        existing: ContactRecord,
        write: ContactWrite,
        field_ids: set[str],
        now: int,
    ) -> ContactRecord:
        phone = existing.phone
        if write.phone is not None and write.phone != existing.phone:
            if self._one(connection, "phone", write.phone) is not None:
                raise ItemError(DUPLICATE_PHONE, f"a contact with phone {write.phone} exists")
            phone = write.phone
        self._check_custom_keys(write, field_ids)
        custom = dict(existing.custom)
        for key, value in write.custom.items():
            if value is None:
                custom.pop(key, None)
            else:
                custom[key] = value

        def carried(name: str, current: str | None) -> str | None:
            return _text(write.fields[name]) if name in write.fields else current

        opted_out = write.fields.get("is_opted_out", existing.is_opted_out) is True
        updated = ContactRecord(
            id=existing.id,
            uuid=existing.uuid,
            phone=phone,
            first=carried("first", existing.first),
            last=carried("last", existing.last),
            display_name=carried("display_name", existing.display_name),
            email=carried("email", existing.email),
            is_opted_out=opted_out,
            custom=custom,
            tags=existing.tags if write.tags is None else write.tags,
            created=existing.created,
            updated=now,
            rev=existing.rev + 1,
        )
        row = _row(updated)
        connection.execute(UPDATE_CONTACT, (*row[2:10], updated.updated, updated.rev, updated.id))
        return updated


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
