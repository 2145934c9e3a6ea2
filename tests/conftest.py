"""Shared fixtures: an isolated home and environment for every test, and one sandbox server
per test session (per xdist worker), reset to an empty account for each test that asks."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.sandbox.launch import running_sandbox
from tests.sandbox_handle import SandboxHandle


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
    credentials = {
        "HEYMARKET_API_KEY": api_key,
        "HEYMARKET_SECRET_ID": secret_id,
        "HEYMARKET_SECRET_KEY": secret_key,
    }
    with running_sandbox(credentials) as url:
        handle = SandboxHandle.connect(url, api_key, secret_id, secret_key)
        yield handle
        handle.close()


@pytest.fixture
def sandbox(sandbox_server: SandboxHandle) -> SandboxHandle:
    """The session's sandbox, reset to an empty account with no faults."""
    sandbox_server.reset()
    return sandbox_server
