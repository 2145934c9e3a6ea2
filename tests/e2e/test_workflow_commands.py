"""Each workflow's reconciler steps, run the way GitHub Actions runs them: the `run:` script
read from the workflow file, under `bash -e` (the runner's default shell), with the step's
`env:` (secrets and repository variables filled in), GITHUB_ACTIONS=true and the
GITHUB_STEP_SUMMARY / GITHUB_OUTPUT files, in a copy of a contacts repository, against the
sandbox. The one difference from a real run: HEYMARKET_API_URL points at the sandbox."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.sandbox_handle import SandboxHandle

ROOT = Path(__file__).resolve().parents[2]
# The workflows of this repository and the copies `reconciler init` writes.
WORKFLOW_DIRS = [ROOT / ".github" / "workflows", ROOT / "reconciler" / "templates" / "workflows"]
WORKFLOW_IDS = ["repository", "init-template"]
OWNER = "example-contacts"
MARKER = "Managed by"

_EXPRESSION = re.compile(r"\$\{\{\s*(secrets|vars)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_CONDITION = re.compile(r"^vars\.([A-Za-z_][A-Za-z0-9_]*)\s*(==|!=)\s*'([^']*)'$")


@dataclass(frozen=True)
class StepRun:
    exit_code: int
    stdout: str
    stderr: str
    summary: str
    outputs: str


@dataclass
class Runner:
    """A job's workspace and what GitHub would provide to its steps."""

    workspace: Path
    sandbox: SandboxHandle
    bin_dir: Path
    vars: dict[str, str]
    # A repository that stored the JWT pair, not the legacy key: that secret is unset, and
    # GitHub passes an unset secret as an empty string.
    secrets: dict[str, str]

    def steps(self, workflow: Path, job: str) -> list[dict[str, Any]]:
        """The job's reconciler steps whose `if:` holds for the repository variables."""
        document = yaml.safe_load(workflow.read_text(encoding="utf-8"))
        chosen = []
        for step in document["jobs"][job]["steps"]:
            if "run" not in step or "reconciler " not in step["run"]:
                continue
            if "Install reconciler" in step.get("name", ""):
                continue
            if self.condition_holds(step.get("if")):
                chosen.append(step)
        return chosen

    def condition_holds(self, condition: str | None) -> bool:
        if condition is None:
            return True
        match = _CONDITION.match(condition.strip())
        assert match, f"the test cannot evaluate the step condition {condition!r}"
        name, operator, value = match.groups()
        equal = self.vars.get(name, "") == value
        return equal if operator == "==" else not equal

    def expand(self, text: str) -> str:
        def value(match: re.Match[str]) -> str:
            kind, name = match.groups()
            return (self.secrets if kind == "secrets" else self.vars).get(name, "")

        expanded = _EXPRESSION.sub(value, text)
        assert "${{" not in expanded, f"the test cannot evaluate {text!r}"
        return expanded

    def run(self, step: dict[str, Any]) -> StepRun:
        summary = self.workspace.parent / "step_summary.md"
        outputs = self.workspace.parent / "github_output"
        summary.write_text("", encoding="utf-8")
        outputs.write_text("", encoding="utf-8")
        script = self.workspace.parent / "step.sh"
        script.write_text(step["run"], encoding="utf-8")
        environment = {
            "PATH": f"{self.bin_dir}:/usr/bin:/bin",
            "HOME": str(self.workspace.parent / "home"),
            "GITHUB_ACTIONS": "true",
            "CI": "true",
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_OUTPUT": str(outputs),
            "HEYMARKET_API_URL": self.sandbox.url,
        }
        environment.update({k: self.expand(str(v)) for k, v in step.get("env", {}).items()})
        result = subprocess.run(
            ["bash", "-e", str(script)],
            cwd=self.workspace,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return StepRun(
            result.returncode,
            result.stdout,
            result.stderr,
            summary.read_text(encoding="utf-8"),
            outputs.read_text(encoding="utf-8"),
        )


def seed_demo_account(sandbox: SandboxHandle) -> None:
    """The live account of `make demo` (demo/seed.yaml, custom fields by title)."""
    contacts = yaml.safe_load((ROOT / "demo" / "seed.yaml").read_text(encoding="utf-8"))
    titles = sorted({title for c in contacts for title in c.get("custom", {})})
    field_ids = sandbox.create_fields(titles)
    for contact in contacts:
        contact["custom"] = {
            field_ids[title]: value for title, value in contact.get("custom", {}).items()
        }
    sandbox.seed(contacts)


@pytest.fixture
def runner(tmp_path: Path, sandbox: SandboxHandle) -> Runner:
    """A checkout of a contacts repository: the example contacts/ and the demo's settings."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (tmp_path / "home").mkdir(exist_ok=True)
    shutil.copytree(ROOT / "contacts", workspace / "contacts")
    config = (ROOT / "demo" / "reconciler.yaml").read_text(encoding="utf-8")
    (workspace / "reconciler.yaml").write_text(
        config.replace("contacts: ../contacts", "contacts: contacts/"), encoding="utf-8"
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # What `pip install` puts on the runner's PATH.
    shim = bin_dir / "reconciler"
    shim.write_text(
        f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m reconciler "$@"\n',
        encoding="utf-8",
    )
    shim.chmod(0o755)
    secrets = {
        "HEYMARKET_SECRET_ID": sandbox.secret_id,
        "HEYMARKET_SECRET_KEY": sandbox.secret_key,
    }
    return Runner(workspace, sandbox, bin_dir, vars={}, secrets=secrets)


def only_step(runner: Runner, workflow: Path, job: str) -> dict[str, Any]:
    (step,) = runner.steps(workflow, job)
    return step


def plan_after(runner: Runner, *extra: str) -> dict[str, Any]:
    result = subprocess.run(
        [str(runner.bin_dir / "reconciler"), "plan", "--format", "json", *extra],
        cwd=runner.workspace,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(runner.workspace.parent / "home"),
            "HEYMARKET_API_URL": runner.sandbox.url,
            **runner.secrets,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    plan: dict[str, Any] = json.loads(result.stdout)
    return plan


# --- plan.yml ----------------------------------------------------------------------------


@pytest.mark.parametrize("workflows", WORKFLOW_DIRS, ids=WORKFLOW_IDS)
def test_plan_workflow_validate_annotates_a_bad_contact_in_the_diff(
    runner: Runner, workflows: Path
) -> None:
    step = only_step(runner, workflows / "plan.yml", "validate")
    assert step["run"].strip() == "reconciler validate --format github"

    assert runner.run(step).exit_code == 0

    sales = runner.workspace / "contacts" / "sales.yaml"
    lines = sales.read_text(encoding="utf-8").splitlines(keepends=True)
    typo_line = lines.index("    first: Hiro\n") + 1
    lines[typo_line - 1] = "    frist: Hiro\n"
    sales.write_text("".join(lines), encoding="utf-8")
    failed = runner.run(step)
    assert failed.exit_code == 1
    annotations = [line for line in failed.stdout.splitlines() if line.startswith("::error ")]
    assert len(annotations) == 1
    assert annotations[0].startswith(f"::error file=contacts/sales.yaml,line={typo_line},col=5::")
    assert "frist" in annotations[0]


@pytest.mark.parametrize("prune", [False, True], ids=["no-prune", "prune"])
@pytest.mark.parametrize("workflows", WORKFLOW_DIRS, ids=WORKFLOW_IDS)
def test_plan_workflow_writes_the_comment_the_saved_plan_and_the_job_summary(
    runner: Runner, sandbox: SandboxHandle, workflows: Path, prune: bool
) -> None:
    seed_demo_account(sandbox)
    runner.vars["RECONCILER_PRUNE"] = "true" if prune else ""
    step = only_step(runner, workflows / "plan.yml", "plan")

    result = runner.run(step)

    assert result.exit_code == 0, result.stderr
    comment = (runner.workspace / "plan.md").read_text(encoding="utf-8")
    saved = json.loads((runner.workspace / "plan.json").read_text(encoding="utf-8"))
    assert comment.startswith(("#", "**")), comment[:200]
    assert saved["format_version"] == 1
    assert saved["summary"]["create"] > 0
    assert (saved["summary"]["delete"] > 0) is prune
    assert ("delete" in {c["action"] for c in saved["changes"]}) is prune
    assert comment.strip() in result.summary
    # Nothing was written by a plan.
    assert sandbox.stats()["by_route"].get("POST /v2/contacts", 0) == 0
    # The credentials never reach the comment, the saved plan or the logs.
    for text in (comment, json.dumps(saved), result.stdout, result.stderr, result.summary):
        assert sandbox.secret_key not in text


# --- apply.yml ---------------------------------------------------------------------------


@pytest.mark.parametrize("workflows", WORKFLOW_DIRS, ids=WORKFLOW_IDS)
def test_apply_workflow_applies_without_deleting_unless_the_repository_opts_in(
    runner: Runner, sandbox: SandboxHandle, workflows: Path
) -> None:
    seed_demo_account(sandbox)
    step = only_step(runner, workflows / "apply.yml", "apply")
    assert step["run"].strip() == "reconciler apply --auto-approve"

    result = runner.run(step)

    assert result.exit_code == 0, result.stderr
    assert result.summary.strip()
    plan = plan_after(runner)
    assert plan["changes"] == []
    assert plan_after(runner, "--prune")["summary"]["delete"] > 0


@pytest.mark.parametrize("workflows", WORKFLOW_DIRS, ids=WORKFLOW_IDS)
def test_apply_workflow_prunes_with_a_backup_where_the_repository_opts_in(
    runner: Runner, sandbox: SandboxHandle, workflows: Path
) -> None:
    seed_demo_account(sandbox)
    runner.vars["RECONCILER_PRUNE"] = "true"
    to_delete = {
        c["phone"] for c in plan_after(runner, "--prune")["changes"] if c["action"] == "delete"
    }
    assert to_delete
    step = only_step(runner, workflows / "apply.yml", "apply")
    assert step["run"].strip() == "reconciler apply --auto-approve --prune"

    result = runner.run(step)

    assert result.exit_code == 0, result.stderr
    assert to_delete.isdisjoint(c["phone"] for c in sandbox.contacts())
    assert plan_after(runner, "--prune")["changes"] == []
    backups = list((runner.workspace / ".reconciler" / "backups").iterdir())
    backed_up = {
        json.loads(line)["phone"]
        for backup in backups
        for line in backup.read_text(encoding="utf-8").splitlines()
    }
    assert backed_up == to_delete


# --- drift.yml ---------------------------------------------------------------------------


@pytest.mark.parametrize("workflows", WORKFLOW_DIRS, ids=WORKFLOW_IDS)
def test_drift_workflow_reports_drift_in_the_summary_and_its_output(
    runner: Runner, sandbox: SandboxHandle, workflows: Path
) -> None:
    seed_demo_account(sandbox)
    step = only_step(runner, workflows / "drift.yml", "drift")
    assert "reconciler plan" in step["run"] and "--detailed-exitcode" in step["run"]

    drifted = runner.run(step)

    assert drifted.exit_code == 0, drifted.stderr
    assert "exitcode=2" in drifted.outputs.splitlines()
    assert "### Drift: the live account differs from the default branch" in drifted.summary
    report = (runner.workspace / "drift.md").read_text(encoding="utf-8")
    assert report.strip() and report.strip() in drifted.summary


@pytest.mark.parametrize("workflows", WORKFLOW_DIRS, ids=WORKFLOW_IDS)
def test_drift_workflow_finds_no_drift_once_the_apply_workflow_ran(
    runner: Runner, sandbox: SandboxHandle, workflows: Path
) -> None:
    seed_demo_account(sandbox)
    apply = only_step(runner, workflows / "apply.yml", "apply")
    assert runner.run(apply).exit_code == 0

    in_sync = runner.run(only_step(runner, workflows / "drift.yml", "drift"))

    assert in_sync.exit_code == 0, in_sync.stderr
    assert "exitcode=0" in in_sync.outputs.splitlines()
    assert "Drift" not in in_sync.summary


@pytest.mark.parametrize("workflows", WORKFLOW_DIRS, ids=WORKFLOW_IDS)
def test_drift_workflow_fails_the_job_on_an_error_rather_than_reporting_drift(
    runner: Runner, sandbox: SandboxHandle, workflows: Path
) -> None:
    step = only_step(runner, workflows / "drift.yml", "drift")
    runner.secrets = {"HEYMARKET_SECRET_ID": "wrong", "HEYMARKET_SECRET_KEY": "wrong"}

    result = runner.run(step)

    assert result.exit_code == 1
    assert "exitcode=1" in result.outputs.splitlines()
    assert "Drift" not in result.summary
