"""The release workflow and the dependabot configuration: valid for GitHub, clean for
zizmor, least privilege per job, every action pinned by commit, and the release's
version/CHANGELOG check (its own `run:` script) refuses a release the tag and the CHANGELOG
do not agree on."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.workflow_lint import ROOT, actionlint, check_jsonschema

RELEASE = ROOT / ".github" / "workflows" / "release.yml"
DEPENDABOT = ROOT / ".github" / "dependabot.yml"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = YAML(typ="safe").load(path)
    return document


def jobs() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = load(RELEASE)["jobs"]
    return found


def step_named(job: str, name: str) -> dict[str, Any]:
    (step,) = [step for step in jobs()[job]["steps"] if step.get("name") == name]
    found: dict[str, Any] = step
    return found


def test_actionlint_and_the_workflow_schema_pass() -> None:
    problems = actionlint([RELEASE])
    assert problems == [], "\n".join(map(str, problems))
    result = check_jsonschema([RELEASE])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", [RELEASE, DEPENDABOT], ids=["release.yml", "dependabot.yml"])
def test_zizmor_finds_nothing_even_pedantic(path: Path) -> None:
    zizmor = Path(sys.executable).parent / "zizmor"
    if not zizmor.exists():
        pytest.fail("zizmor is not installed: pip install -e '.[dev]'")
    result = subprocess.run(
        [str(zizmor), "--offline", "--persona=pedantic", "--no-progress", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_runs_on_a_version_tag_only() -> None:
    assert load(RELEASE)["on"] == {"push": {"tags": ["v*"]}}


def test_each_job_has_a_timeout_and_only_the_permissions_it_needs() -> None:
    assert load(RELEASE)["permissions"] == {}
    assert {name: job["permissions"] for name, job in jobs().items()} == {
        "build": {"contents": "read"},
        "pypi": {"id-token": "write"},
        "github-release": {"contents": "write"},
    }
    for job in jobs().values():
        assert 0 < job["timeout-minutes"] <= 10


def test_pypi_is_published_by_trusted_publishing_from_its_environment() -> None:
    pypi = jobs()["pypi"]
    assert pypi["environment"]["name"] == "pypi"
    assert "secrets." not in RELEASE.read_text(encoding="utf-8")
    (publish,) = [step for step in pypi["steps"] if "pypi-publish" in step.get("uses", "")]
    assert "password" not in publish.get("with", {})
    assert jobs()["github-release"]["needs"] == ["build", "pypi"]


def test_every_action_is_pinned_by_commit_with_its_version_and_keeps_no_credentials() -> None:
    lines = [
        line.split("uses:", 1)[1].strip()
        for line in RELEASE.read_text(encoding="utf-8").splitlines()
        if "uses:" in line
    ]
    assert lines
    for used in lines:
        assert PINNED.match(used), used
    for job in jobs().values():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


def test_the_build_checks_what_it_builds() -> None:
    runs = [step.get("run", "") for step in jobs()["build"]["steps"]]
    assert "python -m build" in runs
    assert "python -m twine check --strict dist/*" in runs
    assert any("--constraint constraints.txt" in run for run in runs)


def test_dependabot_updates_pip_and_the_actions_weekly_after_a_cooldown() -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "check-jsonschema"),
            "--builtin-schema",
            "vendor.dependabot",
            str(DEPENDABOT),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    updates = load(DEPENDABOT)["updates"]
    assert {update["cooldown"]["default-days"] for update in updates} == {7}
    assert {(update["package-ecosystem"], update["directory"]) for update in updates} == {
        ("pip", "/"),
        ("github-actions", "/"),
    }
    assert {update["schedule"]["interval"] for update in updates} == {"weekly"}


def run_version_check(tmp_path: Path, tag: str, built: list[str], changelog: str) -> str:
    """Runs the build job's own version/CHANGELOG script in a directory laid out like the job's."""
    (tmp_path / "dist").mkdir()
    for name in built:
        (tmp_path / "dist" / name).write_bytes(b"")
    (tmp_path / "CHANGELOG.md").write_text(changelog, encoding="utf-8")
    script = step_named("build", "Check the version and the CHANGELOG")["run"]
    bash = shutil.which("bash")
    assert bash is not None
    result = subprocess.run(
        [bash, "-e", "-c", script],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "TAG": tag},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        return result.stdout + result.stderr
    return (tmp_path / "dist" / "release-notes.md").read_text(encoding="utf-8")


CHANGELOG = (
    "# Changelog\n\n## [Unreleased]\n- next\n\n## [0.2.0] - 2026-12-05\n- first\n- second\n\n"
    "## [0.1.0]\n- older\n"
)
BUILT_020 = ["heymarket_reconciler-0.2.0.tar.gz", "heymarket_reconciler-0.2.0-py3-none-any.whl"]


def test_release_notes_are_the_changelog_section_of_the_tag(tmp_path: Path) -> None:
    notes = run_version_check(tmp_path, "v0.2.0", BUILT_020, CHANGELOG)
    assert notes.strip() == "- first\n- second"


def test_a_tag_that_built_another_version_is_refused(tmp_path: Path) -> None:
    built = [name.replace("0.2.0", "0.2.1.dev3+gabc1234") for name in BUILT_020]
    message = run_version_check(tmp_path, "v0.2.0", built, CHANGELOG)
    assert "::error::The tag v0.2.0 did not build version 0.2.0" in message


def test_a_tag_without_a_changelog_section_is_refused(tmp_path: Path) -> None:
    built = [name.replace("0.2.0", "0.3.0") for name in BUILT_020]
    message = run_version_check(tmp_path, "v0.3.0", built, CHANGELOG)
    assert '::error::CHANGELOG.md has no section "## [0.3.0]"' in message
