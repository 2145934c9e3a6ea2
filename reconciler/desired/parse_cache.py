"""A content-addressed cache of parsed and validated contacts files, so a plan on unchanged
files skips YAML and schema work entirely.

An entry is keyed by the sha256 of the file's bytes, the contacts schema's digest, the
tool's version, ``phones.default_region`` and the phone numbering metadata's version (the
canonical phones and their warnings depend on both): a change to any of them is a
different key, never a stale hit. Only files
that were valid are cached (an invalid file is parsed again to word its problems).

Entries are JSON, never pickle, so a planted or foreign cache file cannot run code. An
entry is a header line (format, key, sha256 of the body) and a body line; one that is
unreadable, truncated, corrupt, foreign or of another shape is a miss, never an error.
(Checking the body's hash instead of every value keeps a warm run fast; an entry forged
with a matching hash needs write access to the project, like the YAML files themselves.)
Writes go to a temporary file renamed into place, so a reader sees a whole entry or none."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import phonenumbers

from reconciler import __version__
from reconciler.desired.fast_parse import ContactRow, schema_digest
from reconciler.files.atomic import private_directory, write_atomically
from reconciler.files.untrusted_json import decode_json

# 2: rows carry the canonical phone and its warning. 4: rows carry the tags.
ENTRY_FORMAT = 4


class ParseCache:
    """Parsed files under ``directory`` (usually ``.reconciler/cache/desired``)."""

    def __init__(self, directory: Path, default_region: str | None = None) -> None:
        self.directory = directory
        self._salt = (
            f"{ENTRY_FORMAT}:{schema_digest()}:{__version__}:{default_region or ''}:"
            f"{phonenumbers.__version__}"
        ).encode()

    def key(self, data: bytes) -> str:
        return hashlib.sha256(self._salt + b"\0" + data).hexdigest()

    def get(self, key: str) -> list[ContactRow] | None:
        """The rows stored under ``key``, or ``None`` for a miss (absent or unusable)."""
        try:
            header_line, _, body = (self.directory / f"{key}.json").read_bytes().partition(b"\n")
            header = decode_json(header_line)
            if not isinstance(header, dict) or header.get("format") != ENTRY_FORMAT:
                return None
            if header.get("key") != key or header.get("sha256") != hashlib.sha256(body).hexdigest():
                return None
            return [ContactRow(*row) for row in decode_json(body)]
        except (OSError, ValueError, TypeError):  # UnreadableJson is a ValueError
            return None

    def put(self, key: str, rows: Sequence[ContactRow]) -> None:
        """Store ``rows``; a cache that cannot be written is only a slower next run."""
        body = json.dumps([list(row) for row in rows], ensure_ascii=False, separators=(",", ":"))
        checksum = hashlib.sha256(body.encode()).hexdigest()
        header = json.dumps({"format": ENTRY_FORMAT, "key": key, "sha256": checksum})
        with contextlib.suppress(OSError):
            write_atomically(
                private_directory(self.directory) / f"{key}.json",
                f"{header}\n{body}",
                private=True,
            )
