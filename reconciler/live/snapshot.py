"""Incremental refresh of the live account: keep what the last listing saw, and on the next
run read only what changed since, instead of every page of a 100k-contact account.

The snapshot is trusted only when the run can prove it current:

- it is readable, of this format, for this API URL, with the same custom-field definitions;
- the listing from its newest ``updated`` (inclusive) brings back every contact the snapshot
  holds at that second, under the same uuid (else they were deleted or the account is not
  the one the snapshot was taken of);
- a contact id the snapshot knows comes back under the same uuid;
- snapshot merged with the changes counts exactly as many contacts as the server does
  (a deletion anywhere else leaves one too many). The count is taken after the listing, so a
  contact created or deleted meanwhile also breaks the equality.

Otherwise, or with ``refresh="full"``, the whole account is listed. Either way the result
becomes the next snapshot. It holds phone numbers and emails: it lives under
``.reconciler/cache/`` (ignored by git), readable by its owner only, and its name is a hash
of the API URL, so neither holds a credential."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, NamedTuple

from reconciler.core.errors import BadResponseError
from reconciler.core.model import CustomField, LiveContact
from reconciler.core.timestamps import utc_text
from reconciler.files.atomic import atomic_writer, private_directory
from reconciler.files.collector import collector_paused
from reconciler.files.untrusted_json import decode_json
from reconciler.heymarket import HeymarketClient
from reconciler.heymarket.parse import parse_live_contact, parse_timestamp

SNAPSHOT_FORMAT = 2
Refresh = Literal["auto", "full"]
_LINES_PER_DECODE = 1000


class LiveListing(NamedTuple):
    contacts: list[LiveContact]
    fields: list[CustomField]
    # "full" or "incremental": how the contacts were read.
    how: str


class _Snapshot(NamedTuple):
    contacts: list[LiveContact]
    fields: list[CustomField]


def snapshot_path(cache_dir: Path, api_url: str) -> Path:
    name = hashlib.sha256(api_url.rstrip("/").encode()).hexdigest()[:32]
    return cache_dir / "live" / f"{name}.json"


def read_live_state(
    client: HeymarketClient, cache_dir: Path | None, refresh: Refresh = "auto"
) -> LiveListing:
    """The account's custom fields and contacts, read incrementally from the snapshot in
    ``cache_dir`` when it can be proven current, in full otherwise; saves the new snapshot."""
    fields = client.list_custom_fields()
    path = snapshot_path(cache_dir, client.base_url) if cache_dir is not None else None
    snapshot = _read(path, client.base_url) if path is not None and refresh == "auto" else None
    contacts: list[LiveContact] | None = None
    if snapshot is not None and snapshot.fields == fields and snapshot.contacts:
        contacts = _incremental(client, snapshot.contacts)
    how = "incremental" if contacts is not None else "full"
    if contacts is None:
        contacts = client.list_contacts()
    if path is not None:
        _write(path, client.base_url, fields, contacts)
    return LiveListing(contacts, fields, how)


def _incremental(client: HeymarketClient, known: Sequence[LiveContact]) -> list[LiveContact] | None:
    """The snapshot brought up to date, or ``None`` when it cannot be proven current."""
    # `updated` is canonical (parse.canonical_timestamp): equal text, equal moment.
    newest = utc_text(max(parse_timestamp(contact.updated) for contact in known))
    changed = client.list_contacts_since(newest)
    merged = {contact.id: contact for contact in known}
    changed_ids: set[int] = set()
    for contact in changed:
        before = merged.get(contact.id)
        if before is not None and before.uuid != contact.uuid:
            return None
        merged[contact.id] = contact
        changed_ids.add(contact.id)
    at_newest = (contact for contact in known if contact.id not in changed_ids)
    if any(contact.updated == newest for contact in at_newest):
        return None
    if len(merged) != client.count():
        return None
    return sorted(merged.values(), key=lambda contact: (contact.updated, contact.id))


def _read(path: Path, api_url: str) -> _Snapshot | None:
    """A header line, then one API record a line: read as a stream, so the file's text and
    its records are never all in memory beside the contacts made from them."""
    try:
        with path.open(encoding="utf-8") as stream, collector_paused():
            header = decode_json(stream.readline())
            if not isinstance(header, dict) or header.get("format") != SNAPSHOT_FORMAT:
                return None
            if header.get("api") != _url_digest(api_url):
                return None
            fields = [CustomField(str(pair[0]), str(pair[1])) for pair in header["fields"]]
            contacts: list[LiveContact] = []
            while lines := list(itertools.islice(stream, _LINES_PER_DECODE)):
                # One decode per chunk shares each key's string across its records
                # (the decoder memoises keys per call): ~100 MB less at 100k contacts.
                records = decode_json("[" + ",".join(lines) + "]")
                contacts.extend(parse_live_contact(record, keep_raw=False) for record in records)
            if len(contacts) != header.get("contacts"):
                return None  # truncated
    # UnreadableJson is a ValueError: a damaged snapshot is a miss like any other.
    except (OSError, ValueError, BadResponseError, TypeError, IndexError, KeyError):
        return None
    return _Snapshot(contacts, fields)


def _write(
    path: Path, api_url: str, fields: Iterable[CustomField], contacts: Sequence[LiveContact]
) -> None:
    header = {
        "format": SNAPSHOT_FORMAT,
        "api": _url_digest(api_url),
        "fields": [[field.id, field.title] for field in fields],
        "contacts": len(contacts),
    }
    try:
        private_directory(path.parent)
        with atomic_writer(path, private=True) as stream:
            stream.write(json.dumps(header) + "\n")
            for contact in contacts:
                stream.write(json.dumps(contact.record(), separators=(",", ":")) + "\n")
    except OSError:
        return  # only a slower next run


def _url_digest(api_url: str) -> str:
    return hashlib.sha256(api_url.rstrip("/").encode()).hexdigest()
