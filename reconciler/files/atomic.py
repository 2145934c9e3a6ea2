"""Writing a file so that a reader, or a crash, sees the whole new file or the old one: a
temporary file in the same directory, renamed into place."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

PRIVATE_FILE_MODE = 0o600


def private_directory(path: Path) -> Path:
    """``path`` created if missing, readable by the owner only (it holds contact data)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _shared_mode(path: Path) -> int:
    """The mode a rewritten file keeps: its own, else what the umask gives a new file."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_writer(path: Path, *, private: bool = False, durable: bool = False) -> Iterator[TextIO]:
    """A text stream that becomes ``path`` only once the block completes.

    ``private``: mode 0600 (plans, caches and snapshots hold phones and emails); otherwise the
    file keeps its mode. ``durable``: flushed to disk before the rename."""
    mode = PRIVATE_FILE_MODE if private else _shared_mode(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as stream:
            yield stream
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        Path(temporary).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(temporary).unlink()
        raise


def write_atomically(
    path: Path, text: str, *, private: bool = False, durable: bool = False
) -> None:
    with atomic_writer(path, private=private, durable=durable) as stream:
        stream.write(text)
