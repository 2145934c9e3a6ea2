"""Every command has one shape: a module in reconciler/commands/ with a frozen request and
``run(request, env) -> int`` that prints only through the environment's console."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest

from reconciler.cli import cli, main
from reconciler.commands.environment import Environment
from reconciler.commands.validate import ValidateRequest
from reconciler.commands.validate import run as run_validate
from reconciler.report.console import Console

VALID = 'contacts:\n  - phone: "15105551234"\n    first: Alice\n'


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_each_cli_command_has_a_module_with_a_request_and_run(name: str) -> None:
    module = importlib.import_module(f"reconciler.commands.{name}")
    request_type = getattr(module, f"{name.capitalize()}Request")
    assert request_type.__dataclass_params__.frozen
    assert dataclasses.is_dataclass(request_type)
    signature = inspect.signature(module.run)
    assert list(signature.parameters) == ["request", "env"]
    assert signature.return_annotation == "int"


def test_a_command_prints_through_the_console_of_its_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The contacts directory is relative to the run's own directory, not the process's.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "contacts").mkdir()
    (tmp_path / "contacts" / "team.yaml").write_text(VALID, encoding="utf-8")
    printed: list[str] = []
    console = Console(out=printed.append, err=printed.append, ask=lambda _question: "")
    env = Environment(environ={}, cwd=tmp_path, console=console)
    assert run_validate(ValidateRequest(), env) == 0
    assert printed == ["1 contact in 1 file is valid.\n"]


def test_debug_is_read_from_the_command_line_before_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error is one line, or its traceback with the group's --debug."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECONCILER_DEBUG", raising=False)

    def broken(*_args: object, **_kwargs: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr("reconciler.commands.init.init_repository", broken)
    assert main(["init"]) == 1
    assert capsys.readouterr().err == (
        "Error: unexpected RuntimeError: boom. Run again with --debug for the traceback, "
        "and report it.\n"
    )
    assert main(["--debug", "init"]) == 1
    shown = capsys.readouterr().err
    assert shown.startswith("Traceback (most recent call last):")
    assert shown.rstrip().endswith("RuntimeError: boom")
