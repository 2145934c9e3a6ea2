"""The GitHub workflows: valid for GitHub (actionlint, the workflow schema), the same files
`reconciler init` writes, and safe in the ways a team relies on (serialised applies, prune
only by opt-in, no secrets or comments for forks, drift without duplicate issues)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from ruamel.yaml import YAML

from reconciler.commands.init import WORKFLOW_NAMES, workflow_template
from tests.workflow_lint import ROOT, actionlint, check_jsonschema

WORKFLOWS_DIR = ROOT / ".github" / "workflows"
WORKFLOW_FILES = [WORKFLOWS_DIR / name for name in WORKFLOW_NAMES]
ALLOWED_ACTIONS = {
    "actions/checkout@v4",
    "actions/setup-python@v5",
    "actions/upload-artifact@v4",
    "actions/github-script@v7",
}
CREDENTIALS = {"HEYMARKET_SECRET_ID", "HEYMARKET_SECRET_KEY", "HEYMARKET_API_KEY"}


def load(name: str) -> dict[str, Any]:
    # YAML 1.2, so the key `on` stays the string "on" as GitHub reads it.
    document: dict[str, Any] = YAML(typ="safe").load(WORKFLOWS_DIR / name)
    return document


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def runs(workflow: dict[str, Any], needle: str) -> list[dict[str, Any]]:
    return [step for step in steps(workflow) if needle in step.get("run", "")]


def test_actionlint_passes_on_every_workflow() -> None:
    problems = actionlint(WORKFLOW_FILES)
    assert problems == [], "\n".join(map(str, problems))


def test_every_workflow_matches_githubs_workflow_schema() -> None:
    result = check_jsonschema(WORKFLOW_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_linters_catch_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\n"
        "jobs:\n"
        "  apply:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - run: echo ${{ github.no_such_property }}\n"
        "        if: vars.RECONCILER_PRUNE == 'true'\n"
        "      - uses: actions/upload-artifact@v4\n"
        "        with:\n"
        "          pathh: .reconciler/backups\n"
        "    timeout: 5\n"
    )
    problems = actionlint([broken])
    assert {(problem.line, problem.kind) for problem in problems} >= {(6, "expression")}
    assert any('"pathh" is not defined' in problem.message for problem in problems)
    # `vars` is a real context: an old actionlint that flags it would fail the real workflows.
    assert not any("vars" in problem.message for problem in problems)
    schema_result = check_jsonschema([broken])
    assert schema_result.returncode != 0
    assert "timeout" in schema_result.stdout


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_repository_workflows_are_the_templates_init_writes(name: str) -> None:
    assert (WORKFLOWS_DIR / name).read_text(encoding="utf-8") == workflow_template(name), (
        f".github/workflows/{name} differs from reconciler/templates/workflows/{name}; "
        "edit the template, then: cp reconciler/templates/workflows/*.yml .github/workflows/"
    )


def test_no_unexpected_workflow_files() -> None:
    # release.yml publishes this tool; it is no template (tests/e2e/test_release_workflow.py).
    expected = sorted([*WORKFLOW_NAMES, "release.yml"])
    assert sorted(path.name for path in WORKFLOWS_DIR.iterdir()) == expected


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_actions_are_pinned_to_a_major_version(name: str) -> None:
    used = {step["uses"] for step in steps(load(name)) if "uses" in step}
    assert used <= ALLOWED_ACTIONS


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_permissions_are_least_privilege(name: str) -> None:
    workflow = load(name)
    assert workflow["permissions"] == {"contents": "read"}
    granted = {
        job_name: job["permissions"]
        for job_name, job in workflow["jobs"].items()
        if "permissions" in job
    }
    expected = {
        "plan.yml": {"plan": {"contents": "read", "pull-requests": "write"}},
        "drift.yml": {"drift": {"contents": "read", "issues": "write"}},
    }
    assert granted == expected.get(name, {})


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_credentials_reach_only_the_steps_that_call_heymarket(name: str) -> None:
    workflow = load(name)
    assert not CREDENTIALS & set(workflow.get("env", {}))
    for job in workflow["jobs"].values():
        assert not CREDENTIALS & set(job.get("env", {}))
        for step in job["steps"]:
            given = CREDENTIALS & set(step.get("env", {}))
            calls_heymarket = any(
                command in step.get("run", "")
                for command in ("reconciler plan", "reconciler apply")
            )
            assert given == (CREDENTIALS if calls_heymarket else set()), step.get("name")
            for credential in given:
                assert step["env"][credential] == f"${{{{ secrets.{credential} }}}}"


def test_ci_runs_make_test_on_push_and_pull_request_for_each_python() -> None:
    workflow = load("ci.yml")
    assert {"push", "pull_request"} <= set(workflow["on"])
    job = workflow["jobs"]["test"]
    assert job["strategy"]["matrix"]["python-version"] == ["3.11", "3.12", "3.13"]
    assert job["strategy"]["fail-fast"] is False
    assert [step["run"] for step in job["steps"] if "run" in step] == ["make test PYTHON=python"]


def test_plan_runs_on_pull_requests_that_touch_the_desired_state() -> None:
    workflow = load("plan.yml")
    assert set(workflow["on"]) == {"pull_request"}
    assert workflow["on"]["pull_request"]["paths"] == ["contacts/**", "reconciler.yaml"]
    validate = runs(workflow, "reconciler validate")
    assert [step["run"] for step in validate] == ["reconciler validate --format github"]


def test_plan_skips_secrets_and_the_comment_on_forks() -> None:
    job = load("plan.yml")["jobs"]["plan"]
    assert job["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert job["needs"] == "validate"


def test_plan_posts_one_sticky_comment_and_keeps_the_saved_plan() -> None:
    workflow = load("plan.yml")
    (plan_step,) = runs(workflow, "reconciler plan")
    assert (
        'reconciler plan "${prune[@]}" --format markdown --out plan.json > plan.md'
        in (plan_step["run"])
    )
    (comment,) = [step for step in steps(workflow) if "github-script" in step.get("uses", "")]
    script = comment["with"]["script"]
    assert 'const marker = "<!-- reconciler-plan -->";' in script
    # Found by its marker and edited in place: one comment per pull request, not one per push.
    assert "comment.body.includes(marker)" in script
    assert script.index("updateComment") < script.index("createComment")
    (upload,) = [step for step in steps(workflow) if "upload-artifact" in step.get("uses", "")]
    assert "plan.json" in upload["with"]["path"].split()


def test_apply_is_serialised_and_never_cancelled() -> None:
    workflow = load("apply.yml")
    assert workflow["concurrency"] == {"group": "reconciler-apply", "cancel-in-progress": False}
    assert workflow["on"]["push"]["paths"] == ["contacts/**", "reconciler.yaml"]
    (job,) = workflow["jobs"].values()
    assert job["if"] == "github.ref_name == github.event.repository.default_branch"


def test_apply_prunes_only_where_the_repository_opts_in() -> None:
    workflow = load("apply.yml")
    applies = runs(workflow, "reconciler apply")
    assert {step["run"]: step["if"] for step in applies} == {
        "reconciler apply --auto-approve": "vars.RECONCILER_PRUNE != 'true'",
        "reconciler apply --auto-approve --prune": "vars.RECONCILER_PRUNE == 'true'",
    }
    # A contact the API refuses (exit 1) must fail the job.
    for step in applies:
        assert "continue-on-error" not in step
        assert "||" not in step["run"]


def test_apply_keeps_backups_and_journal_even_when_it_fails() -> None:
    workflow = load("apply.yml")
    (upload,) = [step for step in steps(workflow) if "upload-artifact" in step.get("uses", "")]
    assert upload["if"] == "${{ always() }}"
    assert upload["with"]["path"].split() == [".reconciler/backups/", ".reconciler/journal.jsonl"]
    # upload-artifact@v4 leaves out hidden paths such as .reconciler/ unless told otherwise.
    assert upload["with"]["include-hidden-files"] is True


def test_drift_is_a_scheduled_detailed_exitcode_plan() -> None:
    workflow = load("drift.yml")
    assert workflow["on"]["schedule"]
    (plan_step,) = runs(workflow, "reconciler plan")
    assert 'reconciler plan "${prune[@]}" --detailed-exitcode' in plan_step["run"]
    assert workflow["concurrency"]["group"] == "reconciler-drift"


def test_drift_updates_its_one_issue_instead_of_opening_another() -> None:
    workflow = load("drift.yml")
    (issue_step,) = [step for step in steps(workflow) if "github-script" in step.get("uses", "")]
    script = issue_step["with"]["script"]
    assert 'const label = "reconciler-drift";' in script
    assert "github.rest.issues.listForRepo" in script
    assert '{ ...repo, state: "open", labels: label }' in script
    assert script.index("if (existing)") < script.index("issues.create(")


class StepRun(NamedTuple):
    exit_code: int
    arguments: str
    output: str
    summary: str


def run_step(
    step: dict[str, Any], tmp_path: Path, plan_exit: int, variables: dict[str, str]
) -> StepRun:
    """A step's own shell, as GitHub runs it (bash -e), with `reconciler` answering a fixed
    exit code and recording its arguments: what matters here is the step's handling of both."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "reconciler"
    stand_in.write_text(
        f'#!/bin/sh\necho "$*" > "{tmp_path}/arguments"\necho "# plan"\nexit {plan_exit}\n'
    )
    stand_in.chmod(0o755)
    output, summary = tmp_path / "output", tmp_path / "summary"
    output.touch()
    summary.touch()
    result = subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=tmp_path,
        env={
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
            **variables,
        },
        capture_output=True,
        text=True,
        check=False,
    )
    return StepRun(
        result.returncode,
        (tmp_path / "arguments").read_text().strip(),
        output.read_text(),
        summary.read_text(),
    )


@pytest.mark.parametrize(
    ("variables", "prune"),
    [({"RECONCILER_PRUNE": "true"}, True), ({"RECONCILER_PRUNE": "false"}, False), ({}, False)],
)
@pytest.mark.parametrize("name", ["plan.yml", "drift.yml"])
def test_plans_show_the_deletes_exactly_where_apply_prunes(
    tmp_path: Path, name: str, variables: dict[str, str], prune: bool
) -> None:
    (plan_step,) = runs(load(name), "reconciler plan")
    assert plan_step["env"]["RECONCILER_PRUNE"] == "${{ vars.RECONCILER_PRUNE }}"
    run = run_step(plan_step, tmp_path, 0, variables)
    assert run.exit_code == 0
    assert run.arguments.startswith("plan --prune " if prune else "plan --")
    assert (tmp_path / ("plan.md" if name == "plan.yml" else "drift.md")).read_text() == "# plan\n"


@pytest.mark.parametrize(
    ("plan_exit", "step_exit", "summary"),
    [
        (0, 0, ""),
        (2, 0, "### Drift: the live account differs from the default branch\n"),
        (1, 1, ""),
    ],
)
def test_drift_step_treats_exit_2_as_a_finding_and_1_as_a_failure(
    tmp_path: Path, plan_exit: int, step_exit: int, summary: str
) -> None:
    (plan_step,) = runs(load("drift.yml"), "reconciler plan")
    run = run_step(plan_step, tmp_path, plan_exit, {})
    assert run.exit_code == step_exit
    assert run.arguments == "plan --detailed-exitcode --format markdown"
    assert run.output == f"exitcode={plan_exit}\n"
    assert run.summary == summary
