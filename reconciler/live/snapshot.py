"""Incremental refresh of the live account: keep what the last listing saw, and on the next
run read only what changed since, instead of every page of a 100k-contact account.

The snapshot is trusted only when the run can prove it current:

- it is readable, of this format, for this API URL, with the same custom-field definitions,
  whole (its columns' sha256 and length are those it states) and of the shape
  the tool writes (every column of the type a parsed contact holds);
- the listing from its newest ``updated`` (inclusive) brings back every contact the snapshot
  holds at that second, under the same uuid (else they were deleted or the account is not
  the one the snapshot was taken of);
- a contact id the snapshot knows comes back under the same uuid;
- snapshot merged with the changes counts exactly as many contacts as the server does
  (a deletion anywhere else leaves one too many). The count is taken after the listing, so a
  contact created or deleted meanwhile also breaks the equality.

Otherwise, or with ``refresh="full"``, the whole account is listed. Either way the result
becomes the next snapshot, written only when it differs from the one read. It holds phone
numbers and emails: it lives under ``.reconciler/cache/`` (ignored by git), readable by its
owner only, and its name is a hash of the API URL, so neither holds a credential.

The file is a header line, then one JSON array a line per column of ``LiveContact`` (the
typed values a listing was parsed into, not API records), then a trailer line with the
sha256 of the column lines: reading it is a dozen decodes and
type checks done a column at a time, not a parse of every record. A snapshot can come from
a cache someone else wrote (CI restores one): it only ever saves requests. It never decides
a delete: prune reads every contact it would delete again, live, before deleting it."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Literal, NamedTuple

from reconciler.core.errors import BadResponseError
from reconciler.core.model import CustomField, LiveContact
from reconciler.core.timestamps import utc_text
from reconciler.files.atomic import atomic_writer, private_directory
from reconciler.files.collector import collector_paused
from reconciler.files.untrusted_json import decode_json
from reconciler.heymarket import HeymarketClient
from reconciler.heymarket.parse import parse_timestamp

# 3: typed columns (2 was one API record a line).
SNAPSHOT_FORMAT = 3
Refresh = Literal["auto", "full"]
# The columns, in the order of ``LiveContact``'s fields (``raw`` is never kept).
COLUMNS = (
    "id",
    "uuid",
    "phone",
    "first",
    "last",
    "display_name",
    "email",
    "is_opted_out",
    "custom",
    "rev",
    "updated",
    "tags",
)
_TEXT = frozenset({str})
_OPTIONAL_TEXT = frozenset({str, type(None)})
_CUSTOM_VALUE = frozenset({str, int, float, bool, type(None)})
# ``updated`` as ``parse.canonical_timestamp`` writes it (``utc_text``).
_CANONICAL_UPDATED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6})?Z")


class LiveListing(NamedTuple):
    contacts: list[LiveContact]
    fields: list[CustomField]
    # "full" or "incremental": how the contacts were read.
    how: str
    # API requests the read used (the custom fields included).
    requests: int = 0


class _Snapshot(NamedTuple):
    contacts: list[LiveContact]
    fields: list[CustomField]


class _Refreshed(NamedTuple):
    contacts: list[LiveContact]
    changed: bool


def snapshot_path(cache_dir: Path, api_url: str) -> Path:
    name = hashlib.sha256(api_url.rstrip("/").encode()).hexdigest()[:32]
    return cache_dir / "live" / f"{name}.json"


def read_live_state(
    client: HeymarketClient, cache_dir: Path | None, refresh: Refresh = "auto"
) -> LiveListing:
    """The account's custom fields and contacts, read incrementally from the snapshot in
    ``cache_dir`` when it can be proven current, in full otherwise; saves the new snapshot
    when it differs from the one read."""
    requests_before = client.request_count
    fields = client.list_custom_fields()
    path = snapshot_path(cache_dir, client.base_url) if cache_dir is not None else None
    snapshot = _read(path, client.base_url) if path is not None and refresh == "auto" else None
    refreshed: _Refreshed | None = None
    if snapshot is not None and snapshot.fields == fields and snapshot.contacts:
        refreshed = _incremental(client, snapshot.contacts)
    if refreshed is None:
        how, contacts, changed = "full", client.list_contacts(), True
    else:
        how, (contacts, changed) = "incremental", refreshed
    if path is not None and changed:
        _write(path, client.base_url, fields, contacts)
    return LiveListing(contacts, fields, how, client.request_count - requests_before)


def _moment(updated: str) -> str:
    """A canonical ``updated`` that sorts as its moment does (a whole second sorts after
    its fractions as text: "…00Z" > "…00.250000Z")."""
    return updated[:-1] if len(updated) > 20 else updated[:-1] + ".000000"


def _incremental(client: HeymarketClient, known: Sequence[LiveContact]) -> _Refreshed | None:
    """The snapshot brought up to date, or ``None`` when it cannot be proven current."""
    # `updated` is canonical (checked on reading): equal text, equal moment.
    try:
        newest = utc_text(parse_timestamp(max((contact.updated for contact in known), key=_moment)))
    except BadResponseError:
        return None  # shaped like a timestamp, but no moment ("2024-13-45T…")
    changed = client.list_contacts_since(newest)
    merged = {contact.id: contact for contact in known}
    changed_ids: set[int] = set()
    differs = False
    for contact in changed:
        before = merged.get(contact.id)
        if before is not None and before.uuid != contact.uuid:
            return None
        differs = differs or before != contact
        merged[contact.id] = contact
        changed_ids.add(contact.id)
    at_newest = (contact for contact in known if contact.id not in changed_ids)
    if any(contact.updated == newest for contact in at_newest):
        return None
    if len(merged) != client.count():
        return None
    if not differs and len(merged) == len(known):
        return _Refreshed(list(known), changed=False)
    contacts = sorted(merged.values(), key=lambda contact: (_moment(contact.updated), contact.id))
    return _Refreshed(contacts, changed=True)


def _read(path: Path, api_url: str) -> _Snapshot | None:
    """The header, then a column at a time: only one column's text is in memory beside the
    values already read. Anything unexpected is a miss, never an error."""
    try:
        with path.open("rb") as stream, collector_paused():
            header = decode_json(stream.readline())
            if not isinstance(header, dict) or header.get("format") != SNAPSHOT_FORMAT:
                return None
            if header.get("api") != _url_digest(api_url):
                return None
            fields = [CustomField(str(pair[0]), str(pair[1])) for pair in header["fields"]]
            columns = _read_columns(stream)
            contacts = _contacts(columns, header.get("contacts")) if columns else None
    # UnreadableJson is a ValueError: a damaged snapshot is a miss like any other.
    except (OSError, ValueError, TypeError, IndexError, KeyError):
        return None
    return None if contacts is None else _Snapshot(contacts, fields)


def _read_columns(stream: BinaryIO) -> list[list[Any]] | None:
    """The columns, when the body is whole: one line a column, then the trailer stating the
    sha256 of those lines, then nothing."""
    digest = hashlib.sha256()
    columns: list[list[Any]] = []
    for line in itertools.islice(stream, len(COLUMNS)):
        digest.update(line)
        column = decode_json(line)
        if not isinstance(column, list):
            return None
        columns.append(column)
    trailer = decode_json(stream.readline() or b"null")
    if len(columns) != len(COLUMNS) or stream.read(1):
        return None
    if not isinstance(trailer, dict) or trailer.get("sha256") != digest.hexdigest():
        return None
    return columns


def _types(values: Iterable[object]) -> set[type]:
    return set(map(type, values))


def _contacts(columns: list[list[Any]], count: object) -> list[LiveContact] | None:
    """The contacts the columns hold, when each holds ``count`` values of the types a parsed
    listing gives ``LiveContact`` (checked a column at a time, not a record at a time)."""
    ids, uuids, phones, first, last, display, email, opted, shared, rev, updated, tags = columns
    custom = _custom_column(shared)
    if custom is None or type(count) is not int:
        return None
    columns = [*columns[:8], custom, *columns[9:]]
    if any(len(column) != count for column in columns):
        return None
    if not (
        _types(ids) <= {int}
        and len(set(ids)) == count
        and _types(rev) <= {int}
        and _types(opted) <= {bool}
        and _types(uuids) <= _TEXT
        and all(map(str.strip, uuids))
        and _types(phones) <= _TEXT
        and all(map(str.strip, phones))
        and all(_types(column) <= _OPTIONAL_TEXT for column in (first, last, display, email))
        and _types(updated) <= _TEXT
        and all(map(_CANONICAL_UPDATED.fullmatch, updated))
        and _types(tags) <= {list}
        and _types(itertools.chain.from_iterable(tags)) <= _TEXT
    ):
        return None
    by_field = dict(zip(COLUMNS, columns, strict=True))
    by_field["tags"] = list(map(tuple, tags))
    return LiveContact.from_columns(by_field, count)


def _custom_column(shared: list[Any]) -> list[dict[str, Any]] | None:
    """The custom values of each contact: the column holds each distinct set of values once,
    then each contact's index into them (an account has few distinct sets: contacts share
    one dict each, as they are never changed)."""
    if len(shared) != 2 or type(shared[0]) is not list or type(shared[1]) is not list:
        return None
    values, rows = shared
    if not (
        _types(values) <= {dict}
        and _types(itertools.chain.from_iterable(map(dict.values, values))) <= _CUSTOM_VALUE
        and _types(rows) <= {int}
        and (not rows or (min(rows) >= 0 and max(rows) < len(values)))
    ):
        return None
    return list(map(values.__getitem__, rows))


def _custom_line(contacts: Sequence[LiveContact]) -> list[Any]:
    index: dict[str, int] = {}
    values: list[dict[str, Any]] = []
    rows: list[int] = []
    for contact in contacts:
        # By repr, not by value: 1, 1.0 and True are equal, but not the same custom value.
        key = repr(tuple(contact.custom.items()))
        row = index.get(key)
        if row is None:
            row = index[key] = len(values)
            values.append(dict(contact.custom))
        rows.append(row)
    return [values, rows]


def _column_lines(contacts: Sequence[LiveContact]) -> Iterator[str]:
    """One line a column; made one at a time, so at most one column's text is in memory."""
    for name in COLUMNS:
        if name == "custom":
            values: list[Any] = _custom_line(contacts)
        elif name == "tags":
            values = [list(contact.tags) for contact in contacts]
        else:
            values = [getattr(contact, name) for contact in contacts]
        # ASCII (non-ASCII characters escaped): the text is its own UTF-8 encoding.
        yield json.dumps(values, separators=(",", ":")) + "\n"


def _write(
    path: Path, api_url: str, fields: Iterable[CustomField], contacts: Sequence[LiveContact]
) -> None:
    header = {
        "format": SNAPSHOT_FORMAT,
        "api": _url_digest(api_url),
        "fields": [[field.id, field.title] for field in fields],
        "contacts": len(contacts),
    }
    digest = hashlib.sha256()
    try:
        private_directory(path.parent)
        with atomic_writer(path, private=True) as stream:
            stream.write(json.dumps(header) + "\n")
            for line in _column_lines(contacts):
                digest.update(line.encode())
                stream.write(line)
            stream.write(json.dumps({"sha256": digest.hexdigest()}) + "\n")
    except OSError:
        return  # only a slower next run


def _url_digest(api_url: str) -> str:
    return hashlib.sha256(api_url.rstrip("/").encode()).hexdigest()
