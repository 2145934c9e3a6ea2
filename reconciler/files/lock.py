"""One apply or restore at a time per working directory: an exclusive ``flock`` on
``.reconciler/lock`` held for the whole run.

The kernel releases a ``flock`` when its holder dies, however it dies, so a crashed run never
leaves a stale lock behind; the file itself stays and only records who held it last."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from reconciler.core.errors import LockHeldError

LOCK_FILE = Path(".reconciler") / "lock"
DEFAULT_WAIT_SECONDS = 10.0
_POLL_SECONDS = 0.1


def _holder(descriptor: int) -> str:
    """What the current holder wrote into the file (``pid 1234 (apply)``), for the message."""
    with contextlib.suppress(OSError):
        text = os.pread(descriptor, 200, 0).decode("utf-8", "replace").strip()
        if text:
            return text
    return "unknown process"


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
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise LockHeldError(
            f"cannot open the lock file {path}: {error.strerror or error}. "
            "Check that the directory is writable."
        ) from None
    try:
        deadline = clock() + wait_seconds
        told = False
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(descriptor)
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
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"pid {os.getpid()} ({command})\n".encode(), 0)
        try:
            yield path
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
