"""The audit journal: ``.reconciler/journal.jsonl``, one JSON line per change applied or
failed, appended and never rewritten, so "who deleted this contact, and when" has an answer.

A line is written only after the server answered (or a re-read settled the outcome), and is
flushed to disk with its batch. A write whose outcome is unknown is journaled as
``ambiguous``; a later line for the same phone and run says how it was resolved, so the
newest line per (run, phone, action) is the truth.

Results: ``applied``, ``failed`` (the server refused it, or a delete left it in place),
``ambiguous`` (outcome unknown, being resolved), ``unresolved`` (still unknown at the end of
the run)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

from reconciler.core.errors import ReconcilerError

JOURNAL_FILE = Path(".reconciler") / "journal.jsonl"

Result = Literal["applied", "failed", "ambiguous", "unresolved"]


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

    def to_json_line(self) -> str:
        return json.dumps(
            {
                "time": self.time,
                "run": self.run,
                "command": self.command,
                "action": self.action,
                "phone": self.phone,
                "contact_id": self.contact_id,
                "result": self.result,
                "reason": self.reason,
                "git_commit": self.git_commit,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )


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
