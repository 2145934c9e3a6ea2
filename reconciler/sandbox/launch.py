"""Running ``reconciler sandbox`` as a child process, for the test suite, the benchmarks and
anything else that wants a local account: start it on a free port, read the URL from its
first line, stop it however the caller's block ends."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from typing import IO

from reconciler.core.errors import SandboxError
from reconciler.sandbox.server import BANNER_PREFIX


@contextlib.contextmanager
def running_sandbox(credentials: Mapping[str, str], *, timeout: float = 30.0) -> Iterator[str]:
    """A sandbox accepting ``credentials`` (HEYMARKET_* variables) on a free loopback port;
    yields its URL. No other HEYMARKET_* variable of this process reaches it."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HEYMARKET_")}
    environment.update(credentials, PYTHONUNBUFFERED="1")
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "sandbox", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=errors,
            stdin=subprocess.DEVNULL,
            env=environment,
            text=True,
        )
        try:
            yield _read_url(process, errors, timeout)
        finally:
            _stop(process)


def _read_url(process: subprocess.Popen[str], errors: IO[bytes], timeout: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else ""
    if not line.startswith(BANNER_PREFIX):
        process.kill()
        process.wait()
        errors.seek(0)
        said = errors.read().decode(errors="replace").strip().splitlines()
        last = said[-1] if said else "nothing on stderr"
        raise SandboxError(f"the sandbox did not start (first line {line!r}; {last})")
    return line.removeprefix(BANNER_PREFIX).strip()


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()
