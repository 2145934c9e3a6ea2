"""Run from a subdirectory, the commands use the repository's reconciler.yaml and keep its
state beside it; with none found, plan says the owner is only a directory name."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.cli import main
from tests.account import OWNER, by_phone, declare, journal_lines
from tests.sandbox_handle import SandboxHandle


def test_a_subdirectory_uses_the_repository_config_and_state(
    project: Path,
    sandbox: SandboxHandle,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    declare(project, {"phone": "15105550001", "first": "Ann"})
    below = project / "docs" / "notes"
    below.mkdir(parents=True)
    monkeypatch.chdir(below)

    assert main(["plan"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines()[0] == "Using config: ../../reconciler.yaml"
    assert "(../../contacts/team.yaml:3)" in captured.out
    assert "Warning" not in captured.err

    assert main(["apply", "--auto-approve"]) == 0
    capsys.readouterr()
    # The owner of the repository's config, not the subdirectory's name.
    assert set(by_phone(sandbox)["15105550001"]["custom"].values()) == {OWNER}
    # One state per repository: the journal and the lock beside reconciler.yaml.
    assert [line["phone"] for line in journal_lines(project)] == ["15105550001"]
    assert (project / ".reconciler" / "lock").is_file()
    assert not (below / ".reconciler").exists()

    # Where the config is, nothing more is said (the plan outputs stay as they were).
    monkeypatch.chdir(project)
    assert main(["plan"]) == 0
    assert "Using config" not in capsys.readouterr().err


def test_without_a_config_plan_warns_that_the_owner_is_a_directory_name(
    tmp_path: Path,
    sandbox: SandboxHandle,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repository = tmp_path / "sales-contacts"
    (repository / ".git").mkdir(parents=True)
    (repository / "contacts").mkdir()
    declare(repository, {"phone": "15105550001"})
    monkeypatch.chdir(repository)
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    assert main(["plan"]) == 0
    warning = capsys.readouterr().err.splitlines()[0]
    assert warning.startswith("Warning: no reconciler.yaml here or in a parent directory")
    assert "owner is this directory's name, 'sales-contacts'" in warning
    assert "--config FILE" in warning
