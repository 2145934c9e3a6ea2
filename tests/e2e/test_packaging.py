"""The package as a user gets it: the sdist and the wheel built from it (as a release builds
them), checked by twine, installed into a fresh virtual environment with the tested
dependency versions (constraints.txt, from the package index), then `reconciler --version`,
`init`, `validate` and `plan` (against the sandbox) run from a directory outside this
repository, and the installed files checked. Nothing of this checkout is importable there.

It needs the package index (pip downloads the build backend and the dependencies); pip's
cache is under the test's temporary directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from reconciler import DISTRIBUTION
from tests.sandbox_handle import SandboxHandle
from tests.workflow_lint import ROOT

SCAFFOLD = {
    "reconciler.yaml",
    "contacts/example.yaml",
    ".gitignore",
    "Makefile",
    "README.md",
}


def run(
    command: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{command}: exit {result.returncode}\n{result.stderr}"
    return result


def clean_environment(tmp_path: Path) -> dict[str, str]:
    """This process's environment without what would make this checkout importable or
    reach a real account, and with pip's cache in the test's directory."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
        and not name.startswith("HEYMARKET_")
    }
    env["PIP_CACHE_DIR"] = str(tmp_path / "pip-cache")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(the wheel, the fresh virtual environment, its environment variables)."""
    tmp_path = tmp_path_factory.mktemp("packaging")
    env = clean_environment(tmp_path)
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], cwd=tmp_path, env=env)
    run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())],
        cwd=tmp_path,
        env=env,
    )
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=env)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    run([*pip, "--constraint", str(ROOT / "constraints.txt"), str(wheel)], cwd=tmp_path, env=env)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return wheel, venv, env


def test_the_distribution_is_named_for_the_tool_and_versioned_from_git(
    installed: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    wheel, venv, env = installed
    name, version = wheel.name.split("-")[:2]
    assert name == DISTRIBUTION.replace("-", "_")
    shown = run(["reconciler", "--version"], cwd=tmp_path, env=env).stdout
    assert shown == f"reconciler, version {version}\n"
    where = run(
        [str(venv / "bin" / "python"), "-c", "import reconciler; print(reconciler.__file__)"],
        cwd=tmp_path,
        env=env,
    ).stdout
    assert Path(where.strip()).is_relative_to(venv)


def test_the_wheel_holds_the_schemas_templates_license_and_type_marker(
    installed: tuple[Path, Path, dict[str, str]],
) -> None:
    wheel, _venv, _env = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    dist_info = next(name.split("/")[0] for name in names if ".dist-info/" in name)
    expected = {
        "reconciler/py.typed",
        "reconciler/schemas/contacts.schema.json",
        "reconciler/schemas/config.schema.json",
        "reconciler/templates/reconciler.yaml",
        "reconciler/templates/Makefile",
        "reconciler/templates/README.md",
        "reconciler/templates/gitignore",
        "reconciler/templates/contacts/example.yaml",
        f"{dist_info}/licenses/LICENSE",
        f"{dist_info}/entry_points.txt",
    }
    assert expected <= names
    assert {name for name in names if name.startswith("reconciler/templates/workflows/")}
    assert not {name for name in names if name.startswith(("tests/", "bench/", "demo/"))}
    license_text = zipfile.ZipFile(wheel).read(f"{dist_info}/licenses/LICENSE").decode()
    assert "MIT License" in license_text
    assert "The reconciler authors" in license_text


def test_init_validate_and_plan_work_from_an_unrelated_directory(
    installed: tuple[Path, Path, dict[str, str]], tmp_path: Path, sandbox: SandboxHandle
) -> None:
    _wheel, _venv, env = installed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run(["reconciler", "init", "acme"], cwd=elsewhere, env=env)
    repository = elsewhere / "acme"
    written = {
        path.relative_to(repository).as_posix() for path in repository.rglob("*") if path.is_file()
    }
    assert written >= SCAFFOLD
    assert any(name.startswith(".github/workflows/") for name in written)
    validated = run(["reconciler", "validate"], cwd=repository, env=env)
    assert "valid" in validated.stdout
    planned = run(
        ["reconciler", "plan", "--format", "json"],
        cwd=repository,
        env={**env, **sandbox.env()},
    )
    # The sandbox's account is empty: the example's three contacts are to be created.
    assert json.loads(planned.stdout)["summary"]["create"] == 3
