"""Shared fixtures: an isolated home and environment for every test, and one sandbox server
per test session (per xdist worker), reset to an empty account for each test that asks."""

from __future__ import annotations

import os
import secrets
import select
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.sandbox_handle import SandboxHandle

STARTUP_TIMEOUT_SECONDS = 30.0


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real home directory or uses real credentials."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in list(os.environ):
        if name.startswith("HEYMARKET_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxHandle]:
    """One ``reconciler sandbox --port 0`` subprocess for the whole session."""
    api_key = "test-key-" + secrets.token_hex(8)
    secret_id = "test-id-" + secrets.token_hex(4)
    secret_key = secrets.token_hex(16)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HEYMARKET_")}
    environment.update(
        HEYMARKET_API_KEY=api_key,
        HEYMARKET_SECRET_ID=secret_id,
        HEYMARKET_SECRET_KEY=secret_key,
        PYTHONUNBUFFERED="1",
    )
    with tempfile.TemporaryFile() as stderr_log:
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "sandbox", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=stderr_log,
            stdin=subprocess.DEVNULL,
            env=environment,
            text=True,
        )
        try:
            url = _read_url(process, stderr_log)
            handle = SandboxHandle.connect(url, api_key, secret_id, secret_key)
            yield handle
            handle.close()
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            assert process.stdout is not None
            process.stdout.close()


def _read_url(process: subprocess.Popen[str], stderr_log: IO[bytes]) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT_SECONDS)
    line = process.stdout.readline() if ready else ""
    prefix = "Sandbox listening on "
    if not line.startswith(prefix):
        process.kill()
        process.wait()
        stderr_log.seek(0)
        errors = stderr_log.read().decode(errors="replace")
        raise RuntimeError(f"sandbox did not start (first line {line!r}): {errors}")
    return line.removeprefix(prefix).strip()


@pytest.fixture
def sandbox(sandbox_server: SandboxHandle) -> SandboxHandle:
    """The session's sandbox, reset to an empty account with no faults."""
    sandbox_server.reset()
    return sandbox_server
