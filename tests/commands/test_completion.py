"""Shell completion as the README documents it: `_RECONCILER_COMPLETE=<shell>_source
reconciler` prints the script to source, and the completions it asks for are real."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def _reconciler(environ: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "reconciler"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **environ},
        check=True,
        timeout=60,
    )
    assert result.stderr == ""
    return result.stdout


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "complete -o nosort -F _reconciler_completion"), ("zsh", "compdef"), ("fish", "")],
)
def test_the_completion_script_is_printed_for_each_shell(shell: str, marker: str) -> None:
    script = _reconciler({"_RECONCILER_COMPLETE": f"{shell}_source"})
    assert "_RECONCILER_COMPLETE" in script
    assert marker in script
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"_RECONCILER_COMPLETE={shell}_source reconciler" in readme


def test_completion_offers_the_commands_and_their_flags() -> None:
    def complete(line: str) -> list[str]:
        words = line.split(" ")
        answer = _reconciler(
            {
                "_RECONCILER_COMPLETE": "bash_complete",
                "COMP_WORDS": line,
                "COMP_CWORD": str(len(words) - 1),
            }
        )
        return [entry.split(",", 1)[1] for entry in answer.splitlines()]

    assert complete("reconciler pl") == ["plan"]
    assert complete("reconciler apply --pru") == ["--prune"]
