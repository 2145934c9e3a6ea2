"""Shared fixtures: an isolated home and environment for every test, one sandbox server per
test session (per xdist worker) reset to an empty account for each test that asks, and a
contacts repository pointed at it.

``project`` is the repository. A module whose tests need other files in it overrides
``project_files``; one whose tests talk to another server, or to none, overrides
``project_env``; one that needs more (a seeded account, a backup) overrides ``project`` and
asks for the shared one by the same name."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.account import CONFIG
from tests.sandbox_handle import SandboxHandle, started_sandbox

# Set by a developer's shell or a CI runner, they change what a command prints and where.
HOST_VARIABLES = ("GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS", "NO_COLOR")


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
    with started_sandbox("test") as handle:
        yield handle


@pytest.fixture
def sandbox(sandbox_server: SandboxHandle) -> SandboxHandle:
    """The session's sandbox, reset to an empty account with no faults."""
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def project_files() -> dict[str, str]:
    """The files ``project`` starts with, by their path in the repository."""
    return {"reconciler.yaml": CONFIG}


@pytest.fixture
def project_env(sandbox: SandboxHandle) -> dict[str, str]:
    """The environment ``project`` sets: the sandbox's address and API key."""
    return sandbox.env()


@pytest.fixture
def project(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    project_files: dict[str, str],
    project_env: dict[str, str],
) -> Path:
    """A contacts repository as the working directory, with ``project_files`` in it and
    ``project_env`` in an environment the host's CI variables do not reach."""
    (tmp_path / "contacts").mkdir()
    for name, text in project_files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for name in HOST_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in project_env.items():
        monkeypatch.setenv(name, value)
    return tmp_path
