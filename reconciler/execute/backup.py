"""Prune backups: before any delete request, the full live record of every contact about to
be deleted goes to ``prune.backup_dir/prune-<UTC time of the apply>.jsonl``, one contact a
line, flushed and fsynced (the file and its directory). ``reconciler restore`` replays it.

Each line carries the record as the API returned it, its custom fields by title (ids differ
between accounts and can be re-created), and the ownership marker the apply used, so a
restore needs nothing but the file."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reconciler.core.errors import BackupError, BadResponseError
from reconciler.core.model import CustomField, LiveContact
from reconciler.core.normalize import custom_value_text
from reconciler.core.ownership import FieldIndex, Marker
from reconciler.core.phones import is_canonical_phone
from reconciler.files.untrusted_json import UnreadableJson, decode_json
from reconciler.heymarket.parse import parse_live_contact

BACKUP_KIND = "reconciler prune backup"
BACKUP_FORMAT = 1


@dataclass(frozen=True, slots=True)
class BackupRecord:
    """One contact of a backup, as restore needs it. ``line`` is 1-based."""

    contact: LiveContact
    custom_by_title: Mapping[str, str]
    marker: Marker
    line: int


def backup_file_name(started_at: datetime) -> str:
    return started_at.astimezone(UTC).strftime("prune-%Y%m%dT%H%M%SZ.jsonl")


def backup_line(contact: LiveContact, titles: Mapping[str, str], marker: Marker) -> str:
    """One line of a backup. ``titles`` maps custom-field ids to titles; a value under an id
    the account has no title for stays in ``record`` only."""
    custom_by_title: dict[str, str] = {}
    for field_id, value in sorted(contact.custom.items()):
        text = custom_value_text(value)
        title = titles.get(field_id)
        if title is not None and text is not None:
            custom_by_title[title] = text
    document = {
        "kind": BACKUP_KIND,
        "backup_format": BACKUP_FORMAT,
        "marker": {"field": marker.field_title, "owner": marker.owner},
        "phone": contact.phone,
        "custom_by_title": custom_by_title,
        "record": contact.record(),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_backup(
    backup_dir: Path,
    contacts: Sequence[LiveContact],
    fields: Sequence[CustomField],
    marker: Marker,
    started_at: datetime,
) -> Path:
    """Write the backup and make it durable; return its path. Never overwrites an earlier
    backup. Raises ``BackupError`` when any step fails: the caller must then delete nothing."""
    titles = FieldIndex.of(fields).titles
    text = "".join(backup_line(contact, titles, marker) + "\n" for contact in contacts)
    name = backup_file_name(started_at)
    path = backup_dir / name
    try:
        backup_dir.mkdir(parents=True, exist_ok=True)
        suffix = 1
        while True:
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                break
            except FileExistsError:
                suffix += 1
                path = backup_dir / name.replace(".jsonl", f"-{suffix}.jsonl")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            _fsync_directory(backup_dir)
        except OSError:
            with contextlib.suppress(OSError):
                path.unlink()
            raise
    except OSError as error:
        raise BackupError(
            f"cannot write the prune backup in {backup_dir}: {error.strerror or error}. "
            "Nothing was deleted; make prune.backup_dir writable and run apply --prune again."
        ) from None
    return path


def _line_error(path: Path, line: int, problem: str) -> BackupError:
    return BackupError(
        f"{path}:{line}: {problem}; nothing was restored. Fix or remove that line and run "
        "restore again."
    )


def _parse_line(path: Path, number: int, text: str) -> BackupRecord:
    try:
        document = decode_json(text)
    except UnreadableJson as error:
        raise _line_error(path, number, f"not valid JSON ({error.reason})") from None
    if not isinstance(document, dict) or document.get("kind") != BACKUP_KIND:
        raise _line_error(path, number, "not a line of a reconciler prune backup")
    if document.get("backup_format") != BACKUP_FORMAT:
        raise _line_error(path, number, f"unknown backup format {document.get('backup_format')!r}")
    marker = document.get("marker")
    custom = document.get("custom_by_title")
    if (
        not isinstance(marker, dict)
        or not isinstance(marker.get("field"), str)
        or not isinstance(marker.get("owner"), str)
    ):
        raise _line_error(path, number, "`marker` is not {field, owner}")
    if not isinstance(custom, dict) or not all(
        isinstance(title, str) and isinstance(value, str) for title, value in custom.items()
    ):
        raise _line_error(path, number, "`custom_by_title` is not a mapping of text")
    try:
        contact = parse_live_contact(document.get("record"))
    except BadResponseError as error:
        raise _line_error(path, number, f"`record` is damaged ({error})") from None
    if not is_canonical_phone(contact.phone):
        # Restored, it would be a contact no declaration can ever match.
        raise _line_error(path, number, f"the phone {contact.phone!a} is not a phone number")
    return BackupRecord(contact, dict(custom), Marker(marker["field"], marker["owner"]), number)


def read_backup(path: Path) -> list[BackupRecord]:
    """Every contact of a backup file; a damaged line raises ``BackupError`` naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BackupError(f"no backup file at {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BackupError(f"cannot read the backup {path}: {error}") from None
    records: list[BackupRecord] = []
    # Only "\n" ends a line: str.splitlines() would also break inside a name holding U+2028
    # or U+0085, which the lines keep as they are (ensure_ascii=False).
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            records.append(_parse_line(path, number, line))
    return records
