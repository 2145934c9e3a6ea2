"""One apply or restore at a time per working directory: an exclusive lock on
``.reconciler/lock`` held for the whole run.

The lock is ``filelock``'s native one (``flock`` on Unix, ``msvcrt.locking`` on Windows):
the operating system releases it when its holder dies, however it dies, so a crashed run
never leaves a stale lock behind; the file itself stays and only records who held it last."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, SoftFileLock, Timeout

from reconciler.core.errors import LockHeldError

LOCK_FILE = Path(".reconciler") / "lock"
DEFAULT_WAIT_SECONDS = 10.0
_POLL_SECONDS = 0.1


def _holder(path: Path) -> str:
    """What the current holder wrote into the file (``pid 1234 (apply)``), for the message.
    Where the platform keeps a locked file unreadable (Windows), it is not known."""
    with contextlib.suppress(OSError):
        with path.open("rb") as file:
            lines = file.read(200).decode("utf-8", "replace").strip().splitlines()
        # A soft lock's marker holds the bare pid on its first line.
        if lines and lines[0].strip():
            first = lines[0].strip()
            return f"pid {first}" if first.isdigit() else first
    return "unknown process"


def _record_holder(command: str) -> Callable[[int], None]:
    def record(descriptor: int) -> None:
        # Best effort: the note only improves the message another run prints.
        with contextlib.suppress(OSError):
            os.ftruncate(descriptor, 0)
            os.lseek(descriptor, 0, os.SEEK_SET)
            os.write(descriptor, f"pid {os.getpid()} ({command})\n".encode())

    return record


@contextlib.contextmanager
def exclusive_lock(
    directory: Path,
    *,
    command: str,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    on_wait: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Path]:
    """Hold ``directory/.reconciler/lock`` for the duration of the ``with`` block.

    Waits up to ``wait_seconds`` for another holder to finish (``on_wait`` is told once, with
    the holder), then raises ``LockHeldError``."""
    path = directory / LOCK_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _unopenable(path, error) from None
    # One instance per run, its own descriptor: two runs in one process exclude each other
    # like two processes do. The file is kept on release, so it can name its last holder.
    lock = FileLock(path, mode=0o600, thread_local=False, is_singleton=False, **_native(command))
    deadline = clock() + wait_seconds
    told = False
    while True:
        try:
            lock.acquire(timeout=0, blocking=False)
            break
        except Timeout:
            holder = _holder(path)
            if clock() >= deadline:
                raise LockHeldError(
                    f"another reconciler run ({holder}) holds {LOCK_FILE} in this directory; "
                    f"waited {wait_seconds:g} s. Let it finish, then run {command} again "
                    "(or pass a longer --lock-timeout)."
                ) from None
            if on_wait is not None and not told:
                on_wait(f"Waiting for another reconciler run ({holder}) to release {LOCK_FILE}")
                told = True
            sleep(_POLL_SECONDS)
        except OSError as error:
            raise _unopenable(path, error) from None
    try:
        yield path
    finally:
        lock.release()


def _native(command: str) -> dict[str, Any]:
    """What only a native lock offers: the file kept on release, naming its last holder.
    (Without one, ``FileLock`` is an existence lock, whose file is the lock.)"""
    if issubclass(FileLock, SoftFileLock):
        return {}
    return {"preserve_lock_file": True, "on_acquired": _record_holder(command)}


def _unopenable(path: Path, error: OSError) -> LockHeldError:
    return LockHeldError(
        f"cannot open the lock file {path}: {error.strerror or error}. "
        "Check that the directory is writable."
    )
