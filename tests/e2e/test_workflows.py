"""The GitHub workflows and the Action: valid for GitHub (actionlint, the workflow schema),
clean for zizmor, the same steps as the ones `reconciler init` writes, and safe in the ways
a team relies on (pinned actions, least permissions, timeouts, serialised default-branch
applies, a gated fresh plan, prune only by opt-in, no secrets or comments for forks). The
jobs themselves run in test_workflow_commands.py."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from reconciler.commands.init import WORKFLOW_NAMES, workflow_template
from tests.workflow_lint import ROOT, actionlint, check_jsonschema, zizmor

WORKFLOWS_DIR = ROOT / ".github" / "workflows"
TEMPLATES_DIR = ROOT / "reconciler" / "templates" / "workflows"
WORKFLOW_FILES = [WORKFLOWS_DIR / name for name in WORKFLOW_NAMES]
ALL_WORKFLOWS = [*WORKFLOW_FILES, *(TEMPLATES_DIR / name for name in WORKFLOW_NAMES)]
ALL_FILES = [ROOT / "action.yml", *ALL_WORKFLOWS]
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
    problems = actionlint(ALL_WORKFLOWS)
    assert problems == [], "\n".join(map(str, problems))


def test_every_workflow_matches_githubs_workflow_schema() -> None:
    result = check_jsonschema(ALL_WORKFLOWS)
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


SHARED = ("plan.yml", "apply.yml", "drift.yml")
LOCAL_ACTION = "uses: ./ # zizmor: ignore[self-repository] see the note at the top\n"
RELEASE_ACTION = "uses: OWNER/reconciler@v0.2.0 # zizmor: ignore[unpinned-uses]\n"
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def header_free(text: str) -> str:
    """The workflow from its `name:` on (the header comments say which Action is used)."""
    return text[text.index("\nname: ") :]


def with_release_action(text: str) -> str:
    """The repository's workflow as a contacts repository gets it: the Action of a release,
    installing that release."""
    return re.sub(
        r"( +)uses: \./ # zizmor: ignore\[self-repository\] see the note at the top\n"
        r"((?:\1  .*\n)*?)\1with:\n",
        lambda m: (
            f"{m.group(1)}{RELEASE_ACTION}{m.group(2)}{m.group(1)}with:\n"
            f'{m.group(1)}  version: "0.2.0"\n'
        ),
        text,
    )


@pytest.mark.parametrize("name", SHARED)
def test_the_templates_run_the_same_steps_as_this_repository(name: str) -> None:
    repository = (WORKFLOWS_DIR / name).read_text(encoding="utf-8")
    assert LOCAL_ACTION in repository
    assert header_free(workflow_template(name)) == header_free(with_release_action(repository)), (
        f"reconciler/templates/workflows/{name} differs from .github/workflows/{name} beyond "
        "the Action reference: edit both"
    )


def test_the_scaffold_ci_checks_contacts_not_the_tools_python() -> None:
    template: dict[str, Any] = YAML(typ="safe").load(workflow_template("ci.yml"))
    (job,) = template["jobs"].values()
    commands = [
        step["with"]["command"]
        for step in job["steps"]
        if "with" in step and "command" in step["with"]
    ]
    assert commands == ["validate", "fmt-check", "plan"]
    assert "matrix" not in json.dumps(template)
    own = load("ci.yml")
    assert [step["run"] for step in own["jobs"]["test"]["steps"] if "run" in step] == [
        "make test PYTHON=python"
    ]


def test_no_unexpected_workflow_files() -> None:
    # release.yml publishes this tool; it is no template (tests/e2e/test_release_workflow.py).
    expected = sorted([*WORKFLOW_NAMES, "release.yml"])
    assert sorted(path.name for path in WORKFLOWS_DIR.iterdir()) == expected


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_action_is_pinned_by_its_full_commit_sha(path: Path) -> None:
    for line in path.read_text(encoding="utf-8").splitlines():
        if not re.match(r"^\s*(- )?uses: ", line):
            continue
        reference = line.split("uses: ", 1)[1]
        if reference in (LOCAL_ACTION.strip()[6:], RELEASE_ACTION.strip()[6:]):
            continue
        assert PINNED.match(reference), f"{path.name}: {line.strip()}"


def test_the_scaffold_pins_the_same_action_commits_as_this_repository() -> None:
    def pins(paths: list[Path]) -> set[str]:
        found = set()
        for path in paths:
            found |= set(re.findall(r"uses: (\S+@[0-9a-f]{40} # \S+)", path.read_text()))
        return found

    templates = list((ROOT / "reconciler" / "templates" / "workflows").glob("*.yml"))
    assert pins(templates) <= pins([*WORKFLOW_FILES, ROOT / "action.yml"])


@pytest.mark.parametrize("path", ALL_WORKFLOWS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_checkout_leaves_no_credentials_behind(path: Path) -> None:
    document: dict[str, Any] = YAML(typ="safe").load(path)
    for job in document["jobs"].values():
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


@pytest.mark.parametrize("path", ALL_WORKFLOWS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_job_has_a_timeout_and_its_own_least_permissions(path: Path) -> None:
    document: dict[str, Any] = YAML(typ="safe").load(path)
    assert document["permissions"] == {}
    granted = {name: job["permissions"] for name, job in document["jobs"].items()}
    for job in document["jobs"].values():
        assert 0 < job["timeout-minutes"] <= 30
    expected = {
        "ci.yml": {"test": {"contents": "read"}, "check": {"contents": "read"}},
        "plan.yml": {"plan": {"contents": "read", "pull-requests": "write"}},
        "apply.yml": {
            "apply": {"contents": "read", "actions": "read", "pull-requests": "write"},
            "apply-fresh": {"contents": "read", "pull-requests": "write"},
        },
        "drift.yml": {"drift": {"contents": "read", "issues": "write"}},
    }[path.name]
    assert all(expected[name] == permissions for name, permissions in granted.items())


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_credentials_reach_only_the_steps_that_call_heymarket(name: str) -> None:
    for path in (WORKFLOWS_DIR / name, TEMPLATES_DIR / name):
        workflow: dict[str, Any] = YAML(typ="safe").load(path)
        assert not CREDENTIALS & set(workflow.get("env", {}))
        for job in workflow["jobs"].values():
            assert not CREDENTIALS & set(job.get("env", {}))
            for step in job["steps"]:
                given = CREDENTIALS & set(step.get("env", {}))
                calls_heymarket = step.get("with", {}).get("command") in ("plan", "apply")
                assert given == (CREDENTIALS if calls_heymarket else set()), step.get("name")
                for credential in given:
                    assert step["env"][credential] == f"${{{{ secrets.{credential} }}}}"


def test_ci_runs_make_test_on_push_and_pull_request_for_each_python() -> None:
    workflow = load("ci.yml")
    assert {"push", "pull_request"} <= set(workflow["on"])
    job = workflow["jobs"]["test"]
    assert job["strategy"]["matrix"]["python-version"] == ["3.11", "3.12", "3.13"]
    assert job["strategy"]["fail-fast"] is False


def test_plan_runs_on_pull_requests_that_touch_the_desired_state() -> None:
    workflow = load("plan.yml")
    assert set(workflow["on"]) == {"pull_request"}
    assert workflow["on"]["pull_request"]["paths"] == ["contacts/**", "reconciler.yaml"]
    assert workflow["concurrency"]["cancel-in-progress"] is True


def test_plan_skips_secrets_and_the_comment_on_forks() -> None:
    (job,) = load("plan.yml")["jobs"].values()
    same_repository = "github.event.pull_request.head.repo.full_name == github.repository"
    for step in job["steps"]:
        if CREDENTIALS & set(step.get("env", {})) or "github_flow" in step.get("run", ""):
            assert same_repository in step["if"], step["name"]


def test_apply_runs_only_for_the_default_branch_one_at_a_time_never_cancelled() -> None:
    workflow = load("apply.yml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert workflow["on"]["push"]["paths"] == ["contacts/**", "reconciler.yaml"]
    assert workflow["concurrency"] == {
        "group": "reconciler-apply-${{ github.ref }}",
        "cancel-in-progress": False,
    }
    assert (
        workflow["jobs"]["apply"]["if"]
        == "github.ref_name == github.event.repository.default_branch"
    )
    gated = workflow["jobs"]["apply-fresh"]
    assert gated["environment"] == "heymarket"
    assert gated["needs"] == "apply"


def test_apply_prunes_only_where_the_repository_opts_in() -> None:
    for path in (WORKFLOWS_DIR / "apply.yml", TEMPLATES_DIR / "apply.yml"):
        workflow: dict[str, Any] = YAML(typ="safe").load(path)
        applies = [
            step
            for job in workflow["jobs"].values()
            for step in job["steps"]
            if step.get("with", {}).get("command") in ("apply", "plan")
        ]
        assert len(applies) == 3
        for step in applies:
            assert step["with"]["prune"] == "${{ vars.RECONCILER_PRUNE == 'true' }}"


def test_apply_keeps_backups_and_journal_even_when_it_fails() -> None:
    workflow = load("apply.yml")
    for job in workflow["jobs"].values():
        (upload,) = [
            step
            for step in job["steps"]
            if "upload-artifact" in step.get("uses", "") and "backups" in step["with"]["path"]
        ]
        assert upload["if"].startswith("${{ always() && ")
        assert upload["with"]["path"].split() == [
            ".reconciler/backups/",
            ".reconciler/journal.jsonl",
        ]
        # upload-artifact@v4 leaves out hidden paths such as .reconciler/ unless told otherwise.
        assert upload["with"]["include-hidden-files"] is True


def test_drift_is_a_scheduled_plan_with_one_issue() -> None:
    workflow = load("drift.yml")
    assert workflow["on"]["schedule"]
    assert workflow["concurrency"]["group"] == "reconciler-drift"
    (issue_step,) = [step for step in steps(workflow) if "github-script" in step.get("uses", "")]
    script = issue_step["with"]["script"]
    assert 'const label = "reconciler-drift";' in script
    assert '{ ...repo, state: "open", labels: label }' in script
    assert script.index("if (existing)") < script.index("issues.create(")


def test_zizmor_finds_nothing_not_explained_where_it_is_ignored() -> None:
    # Every finding at any severity fails; the few accepted ones (low) are ignored on their
    # line with the reason in a comment of the workflow.
    paths = [ROOT / "action.yml", *ALL_WORKFLOWS]
    findings = zizmor(paths)
    assert findings == [], "\n".join(findings)


def test_zizmor_catches_an_unsafe_workflow(tmp_path: Path) -> None:
    unsafe = tmp_path / "unsafe.yml"
    unsafe.write_text(
        "on: pull_request_target\n"
        "jobs:\n"
        "  plan:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    findings = zizmor([unsafe])
    assert any("template-injection" in finding for finding in findings)
    assert any("unpinned-uses" in finding for finding in findings)
