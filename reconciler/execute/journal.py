"""The audit journal: ``.reconciler/journal.jsonl``, one JSON line per change applied or
failed, appended and never rewritten, so "who deleted this contact, and when" has an answer.

A line is written only after the server answered (or a re-read settled the outcome), and is
flushed to disk with its batch. A write whose outcome is unknown is journaled as
``ambiguous``; a later line for the same phone and run says how it was resolved, so the
newest line per (run, phone, action) is the truth.

Results: ``applied``, ``failed`` (the server refused it, or a delete left it in place),
``ambiguous`` (outcome unknown, being resolved), ``unresolved`` (still unknown at the end of
the run), ``inconsistent`` (written, but the account stored a value otherwise than it was
sent and than predicted: one line per such value, which adds ``field``, ``sent`` and
``stored``; ``plan`` reads these back to mark a change that would send it again)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

from reconciler.core.errors import ReconcilerError
from reconciler.core.rewrites import Rewrite, SeenRewrites, journaled_value
from reconciler.files.untrusted_json import UnreadableJson, decode_json

JOURNAL_FILE = Path(".reconciler") / "journal.jsonl"

Result = Literal["applied", "failed", "ambiguous", "unresolved", "inconsistent"]


class JournalError(ReconcilerError):
    """The journal cannot be opened or written."""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    time: str
    run: str
    command: str
    action: str
    phone: str
    contact_id: str | None
    result: Result
    reason: str | None
    git_commit: str | None
    # Only on an ``inconsistent`` line: the value sent and the value stored instead.
    rewrite: Rewrite | None = None
    # With several accounts configured: the account the change was made in.
    account: str | None = None

    def to_json_line(self) -> str:
        line: dict[str, object] = {
            "time": self.time,
            "run": self.run,
            "command": self.command,
            "action": self.action,
            "phone": self.phone,
            "contact_id": self.contact_id,
            "result": self.result,
            "reason": self.reason,
            "git_commit": self.git_commit,
        }
        if self.rewrite is not None:
            # Added keys only, so every other line reads as it always did.
            line["field"] = self.rewrite.label
            line["sent"] = journaled_value(self.rewrite.sent)
            line["stored"] = journaled_value(self.rewrite.stored)
        if self.account is not None:
            # Added only with several accounts, so a single account's lines stay as they were.
            line["account"] = self.account
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


class Journal:
    """An open journal; ``append`` writes a batch of lines and puts them on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as error:
            raise JournalError(
                f"cannot open the journal {path}: {error.strerror or error}. "
                "Check that the directory is writable."
            ) from None
        self._stream: IO[str] = os.fdopen(descriptor, "a", encoding="utf-8")

    def append(self, entries: Sequence[JournalEntry]) -> None:
        if not entries:
            return
        text = "".join(entry.to_json_line() + "\n" for entry in entries)
        try:
            self._stream.write(text)
            self._stream.flush()
            os.fsync(self._stream.fileno())
        except OSError as error:
            raise JournalError(
                f"cannot write the journal {self.path}: {error.strerror or error}"
            ) from None

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _lines(path: Path) -> Iterator[str]:
    try:
        with path.open(encoding="utf-8", errors="replace") as stream:
            yield from stream
    except FileNotFoundError:
        return
    except OSError as error:
        raise JournalError(f"cannot read the journal {path}: {error.strerror or error}") from None


def seen_rewrites(path: Path, account: str | None = None) -> SeenRewrites:
    """What the journal at ``path`` says the account rewrote, the newest line winning: (phone,
    field) to the value that was sent. No journal yet means nothing seen; a line that is not
    one of ours (a torn last line after a crash) is skipped. With several accounts, only the
    lines of ``account`` count (one phone may live in two accounts)."""
    seen: dict[tuple[str, str], object] = {}
    for text in _lines(path):
        if '"inconsistent"' not in text:  # most lines: skipped without decoding them
            continue
        try:
            line = decode_json(text)
        except UnreadableJson:
            continue
        if not isinstance(line, dict) or line.get("result") != "inconsistent":
            continue
        if line.get("account") != account:
            continue
        phone, label = line.get("phone"), line.get("field")
        if isinstance(phone, str) and isinstance(label, str) and "sent" in line:
            seen[(phone, label)] = line["sent"]
    return seen
