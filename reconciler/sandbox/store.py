"""The sandbox account in SQLite: contacts and custom-field definitions.

One connection guarded by one lock: the HTTP server is threaded, and SQLite serialises
writers anyway. Listing is an indexed range scan on (updated, id), so a page costs the same
at contact 100 as at contact 100,000.

The store runs the SQL; what a write makes of a contact is ``contact_changes``, and how a
contact is laid out in a row is ``contact_rows``."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler.sandbox.contact_changes import changed_contact, custom_values_set, new_contact
from reconciler.sandbox.contact_rows import (
    COLUMNS,
    INSERT_CONTACT,
    SCHEMA,
    UPDATE_CONTACT,
    DamagedStoreError,
    FieldDefinition,
    chunks,
    record_from_row,
    row_from_record,
    update_parameters,
)
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

# A read of a damaged --db file raises DamagedStoreError: it is part of the store's surface.
__all__ = ["ContactStore", "DamagedStoreError", "FieldDefinition"]


def now_seconds() -> int:
    """The server clock: ``updated`` has one-second resolution."""
    return int(time.time())


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
        return [record_from_row(row) for row in rows]

    def all_contacts(self) -> list[ContactRecord]:
        with self._lock:
            rows = self._connection.execute(f"SELECT {COLUMNS} FROM contacts ORDER BY id")
            return [record_from_row(row) for row in rows.fetchall()]

    def find_by(self, column: str, values: Sequence[str]) -> list[ContactRecord]:
        """Contacts whose ``phone`` or ``uuid`` is one of ``values``, in id order."""
        if column not in ("phone", "uuid"):
            raise ValueError(column)
        found: list[ContactRecord] = []
        with self._lock:
            for chunk in chunks(list(dict.fromkeys(values))):
                marks = ", ".join("?" * len(chunk))
                rows = self._connection.execute(
                    f"SELECT {COLUMNS} FROM contacts WHERE {column} IN ({marks})", list(chunk)
                )
                found += [record_from_row(row) for row in rows.fetchall()]
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
            for chunk in chunks(list(uuids)):
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
                updated = now if contact.updated is None else contact.updated
                records.append(
                    new_contact(
                        write,
                        phone=write.phone,
                        custom={
                            field_id_of[key]: value
                            for key, value in write.custom.items()
                            if value is not None
                        },
                        contact_id=last_id + offset,
                        created=updated if contact.created is None else contact.created,
                        updated=updated,
                        rev=contact.rev,
                    )
                )
            taken = self._phones_taken(connection, sorted(seen_phones))
            if taken:
                raise BadRequest(f"seed phone {taken[0]} already exists in the account")
            connection.executemany(INSERT_CONTACT, [row_from_record(record) for record in records])
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
        return None if row is None else record_from_row(row)

    @staticmethod
    def _phones_taken(connection: sqlite3.Connection, phones: Sequence[str]) -> list[str]:
        taken: list[str] = []
        for chunk in chunks(phones):
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
        record = new_contact(
            write,
            phone=write.phone,
            custom=custom_values_set(write),
            contact_id=0,
            created=now,
            updated=now,
            rev=1,
        )
        # id None: SQLite assigns the next one
        cursor = connection.execute(INSERT_CONTACT, (None, *row_from_record(record)[1:]))
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
        updated = changed_contact(existing, write, phone=phone, now=now)
        connection.execute(UPDATE_CONTACT, update_parameters(updated))
        return updated
