"""The workflows' jobs, run step by step as GitHub runs them (tests/workflow_runner.py):
their own `run:` scripts and the Action's, against the sandbox and a local stub of the
GitHub REST endpoints the jobs use (tests/github_stub.py). The one difference from a real
run: HEYMARKET_API_URL and GITHUB_API_URL point at those two.

The flow under test: a pull request's Plan job saves the plan of its head commit; once
merged, the Apply job applies that plan if it is proven, and otherwise posts a fresh plan
that only the approved job applies."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.github_stub import REPOSITORY, GitHubStub, github_stub
from tests.sandbox_handle import SandboxHandle
from tests.workflow_runner import DEFAULT_REF, ROOT, CacheStore, JobRun, Runner

# The scaffold's jobs run the same steps (tests/e2e/test_workflows.py checks it, all but the
# Action's reference); one flow runs them too, the rest this repository's only.
WORKFLOW_DIRS = [ROOT / ".github" / "workflows", ROOT / "reconciler" / "templates" / "workflows"]
WORKFLOW_IDS = ["repository", "init-template"]
HEAD_SHA = "a" * 40
MERGE_SHA = "b" * 40
PR = 7

MakeRunner = Callable[..., Runner]


def seed_demo_account(sandbox: SandboxHandle) -> None:
    """The live account of `make demo` (demo/seed.yaml, custom fields by title), edited over
    the past weeks as a real account is (one contact a day), not all in one second."""
    contacts = yaml.safe_load((ROOT / "demo" / "seed.yaml").read_text(encoding="utf-8"))
    for day, contact in enumerate(contacts, start=1):
        contact.setdefault("updated", f"2026-10-{day:02d}T12:00:00Z")
    titles = sorted({title for c in contacts for title in c.get("custom", {})})
    field_ids = sandbox.create_fields(titles)
    for contact in contacts:
        contact["custom"] = {
            field_ids[title]: value for title, value in contact.get("custom", {}).items()
        }
    sandbox.seed(contacts)


@pytest.fixture
def github() -> Iterator[GitHubStub]:
    with github_stub() as stub:
        yield stub


@pytest.fixture
def cache(tmp_path: Path) -> CacheStore:
    (tmp_path / "cache-store").mkdir()
    return CacheStore(tmp_path / "cache-store")


@pytest.fixture
def make_runner(
    tmp_path: Path, sandbox: SandboxHandle, github: GitHubStub, cache: CacheStore
) -> MakeRunner:
    """A fresh runner for one job: a checkout of a contacts repository (the example
    contacts/ and the demo's settings) and the contexts of a pull request or a push."""
    counter = [0]

    def make(event: str = "pull_request", *, contacts: Path | None = None) -> Runner:
        counter[0] += 1
        machine = tmp_path / f"runner-{counter[0]}"
        workspace = machine / "workspace"
        workspace.mkdir(parents=True)
        (machine / "home").mkdir()
        shutil.copytree(contacts or ROOT / "contacts", workspace / "contacts")
        config = (ROOT / "demo" / "reconciler.yaml").read_text(encoding="utf-8")
        (workspace / "reconciler.yaml").write_text(
            config.replace("contacts: ../contacts", "contacts: contacts/"), encoding="utf-8"
        )
        pull_request = event == "pull_request"
        context: dict[str, Any] = {
            "event_name": event,
            "repository": REPOSITORY,
            "ref": f"refs/pull/{PR}/merge" if pull_request else DEFAULT_REF,
            "ref_name": f"{PR}/merge" if pull_request else "main",
            "base_ref": "main" if pull_request else "",
            "sha": "c" * 40 if pull_request else MERGE_SHA,
            "run_id": str(1000 + counter[0]),
            "run_attempt": "1",
            "token": "ghs_stub-token",
            "event": {
                "repository": {"default_branch": "main"},
                "pull_request": {
                    "number": PR,
                    "head": {"sha": HEAD_SHA, "repo": {"full_name": REPOSITORY}},
                }
                if pull_request
                else None,
            },
        }
        secrets = {
            "HEYMARKET_SECRET_ID": sandbox.secret_id,
            "HEYMARKET_SECRET_KEY": sandbox.secret_key,
        }
        environment = {"HEYMARKET_API_URL": sandbox.url, **github.env()}
        return Runner(workspace, environment, context, secrets, {}, cache)

    return make


def live_plan(runner: Runner, *extra: str) -> dict[str, Any]:
    """What a plan of the runner's checkout finds now."""
    result = subprocess.run(
        [str(runner.bin_dir() / "reconciler"), "plan", "--format", "json", *extra],
        cwd=runner.workspace,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(runner.workspace.parent / "home"),
            "HEYMARKET_API_URL": runner.environment["HEYMARKET_API_URL"],
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


WRITE_ROUTES = (
    "POST /v2/contacts",
    "DELETE /v2/contacts",
    "POST /v1/batch/contacts",
    "POST /v1/contacts/fields",
)


def writes(sandbox: SandboxHandle) -> int:
    routes = sandbox.stats()["by_route"]
    return sum(routes.get(route, 0) for route in WRITE_ROUTES)


def api_requests(sandbox: SandboxHandle) -> int:
    routes = sandbox.stats()["by_route"]
    return sum(count for route, count in routes.items() if "/_sandbox/" not in route)


def reviewed_pull_request(
    make_runner: MakeRunner, github: GitHubStub, workflows: Path
) -> tuple[JobRun, Runner]:
    """The pull request's Plan job, then GitHub's part: the artifact kept for its head
    commit, and the merge of the pull request as MERGE_SHA."""
    runner = make_runner("pull_request")
    job = runner.run_job(workflows / "plan.yml", "plan")
    assert not job.failed, job.log()
    name = f"reconciler-plan-{HEAD_SHA}"
    files = runner.artifacts[name]
    github.state.add_plan_artifact(HEAD_SHA, files)
    github.state.merged_pull(PR, MERGE_SHA, HEAD_SHA)
    return job, runner


# --- plan.yml ----------------------------------------------------------------------------


@pytest.mark.parametrize("workflows", WORKFLOW_DIRS[:1], ids=WORKFLOW_IDS[:1])
def test_plan_job_saves_the_head_commits_plan_and_keeps_one_current_comment(
    make_runner: MakeRunner, sandbox: SandboxHandle, github: GitHubStub, workflows: Path
) -> None:
    seed_demo_account(sandbox)
    runner = make_runner("pull_request")

    job = runner.run_job(workflows / "plan.yml", "plan")

    assert not job.failed, job.log()
    saved = json.loads(runner.artifacts[f"reconciler-plan-{HEAD_SHA}"]["plan.json"])
    assert saved["summary"]["create"] > 0
    (comment,) = github.state.comment_bodies(PR)
    assert comment.startswith("<!-- reconciler-plan -->\n")
    assert f"Plan of {HEAD_SHA[:7]}" in comment
    markdown = runner.artifacts[f"reconciler-plan-{HEAD_SHA}"]["plan.md"].decode()
    assert markdown.strip() in comment
    assert writes(sandbox) == 0
    for text in (comment, json.dumps(saved), job.log(), job.summary):
        assert sandbox.secret_key not in text

    # The next push breaks a contact: validation fails, annotated in the diff, and the same
    # comment now says so instead of showing the old plan as current.
    broken = make_runner("pull_request")
    sales = broken.workspace / "contacts" / "sales.yaml"
    text = sales.read_text(encoding="utf-8")
    sales.write_text(text.replace("    first: Hiro\n", "    frist: Hiro\n"), encoding="utf-8")
    typo_line = text.splitlines().index("    first: Hiro") + 1

    failed = broken.run_job(workflows / "plan.yml", "plan")

    assert failed.failed
    assert failed.steps["validate"].outcome == "failure"
    assert failed.steps["plan"].outcome == "skipped"
    annotations = [
        line for line in failed.steps["validate"].stdout.splitlines() if line.startswith("::error ")
    ]
    assert [a.split("::")[1] for a in annotations] == [
        f"error file=contacts/sales.yaml,line={typo_line},col=5"
    ]
    (replaced,) = github.state.comment_bodies(PR)
    assert "validation failed, no plan" in replaced
    assert markdown.strip() not in replaced
    assert f"reconciler-plan-{HEAD_SHA}" not in broken.artifacts


@pytest.mark.parametrize("why", ["a fork", "no credentials"])
def test_plan_job_without_secrets_validates_only_and_posts_no_comment(
    make_runner: MakeRunner, sandbox: SandboxHandle, github: GitHubStub, why: str
) -> None:
    runner = make_runner("pull_request")
    if why == "a fork":
        # GitHub gives a fork no secrets; the job's own guard must hold even if it did.
        runner.github["event"]["pull_request"]["head"]["repo"]["full_name"] = "someone/fork"
    else:
        runner.secrets = {}

    job = runner.run_job(ROOT / ".github" / "workflows" / "plan.yml", "plan")

    assert not job.failed, job.log()
    assert job.steps["validate"].outcome == "success"
    assert job.steps["plan"].outcome == "skipped"
    assert github.state.comment_bodies(PR) == []
    assert api_requests(sandbox) == 0


# --- apply.yml ---------------------------------------------------------------------------


@pytest.mark.parametrize("workflows", WORKFLOW_DIRS, ids=WORKFLOW_IDS)
def test_a_reviewed_plan_that_is_proven_is_applied_and_the_result_posted(
    make_runner: MakeRunner, sandbox: SandboxHandle, github: GitHubStub, workflows: Path
) -> None:
    seed_demo_account(sandbox)
    reviewed_pull_request(make_runner, github, workflows)
    runner = make_runner("push")

    job = runner.run_job(workflows / "apply.yml", "apply")

    assert not job.failed, job.log()
    assert job.steps["apply"].outputs["exit-code"] == "0"
    assert job.outputs["fresh"] == ""
    assert live_plan(runner)["changes"] == []
    result = github.state.comment_bodies(PR)[-1]
    assert result.startswith("<!-- reconciler-apply -->\n**reconciler apply applied** (reviewed")
    assert "#artifacts" in result
    assert "Apply complete: " in result and " created" in result
    journal = runner.artifacts[f"reconciler-apply-{runner.github['run_id']}-1"]
    assert "journal.jsonl" in journal


@pytest.mark.parametrize("prune", ["true", "", "false"])
def test_deletes_are_planned_reviewed_and_applied_only_where_the_repository_opts_in(
    make_runner: MakeRunner, sandbox: SandboxHandle, github: GitHubStub, prune: str
) -> None:
    seed_demo_account(sandbox)
    workflows = ROOT / ".github" / "workflows"
    planner = make_runner("pull_request")
    planner.vars["RECONCILER_PRUNE"] = prune
    planned = planner.run_job(workflows / "plan.yml", "plan")
    assert not planned.failed, planned.log()
    saved = json.loads(planner.artifacts[f"reconciler-plan-{HEAD_SHA}"]["plan.json"])
    to_delete = {c["phone"] for c in saved["changes"] if c["action"] == "delete"}
    assert bool(to_delete) is (prune == "true")
    github.state.add_plan_artifact(HEAD_SHA, planner.artifacts[f"reconciler-plan-{HEAD_SHA}"])
    github.state.merged_pull(PR, MERGE_SHA, HEAD_SHA)
    runner = make_runner("push")
    runner.vars["RECONCILER_PRUNE"] = prune
    live_before = {c["phone"] for c in sandbox.contacts()}

    job = runner.run_job(workflows / "apply.yml", "apply")

    assert not job.failed, job.log()
    assert job.steps["apply"].outputs["exit-code"] == "0"
    live_after = {c["phone"] for c in sandbox.contacts()}
    assert live_before - live_after == to_delete
    uploaded = runner.artifacts[f"reconciler-apply-{runner.github['run_id']}-1"]
    backed_up = {
        json.loads(line)["phone"]
        for name, content in uploaded.items()
        if "backups" in name
        for line in content.decode().splitlines()
    }
    assert backed_up == to_delete


def test_a_failed_apply_is_posted_and_fails_the_job_without_a_second_plan(
    make_runner: MakeRunner, sandbox: SandboxHandle, github: GitHubStub
) -> None:
    seed_demo_account(sandbox)
    workflows = ROOT / ".github" / "workflows"
    reviewed_pull_request(make_runner, github, workflows)
    # The account stores the names cut short: apply reports the inconsistency and exits 1.
    sandbox.set_faults(rewrite_truncate=3)
    runner = make_runner("push")

    job = runner.run_job(workflows / "apply.yml", "apply")

    assert job.failed
    assert job.steps["apply"].outputs["exit-code"] == "1"
    assert job.outputs["fresh"] == ""
    result = github.state.comment_bodies(PR)[-1]
    assert result.startswith("<!-- reconciler-apply -->\n**reconciler apply failed** (reviewed")
    # The journal of what was written is kept, failure or not.
    assert f"reconciler-apply-{runner.github['run_id']}-1" in runner.artifacts


def change_desired_state(runner: Runner) -> None:
    """Another merge landed between the review and this apply: a name changed."""
    sales = runner.workspace / "contacts" / "sales.yaml"
    text = sales.read_text(encoding="utf-8")
    sales.write_text(text.replace("first: Greta", "first: Margareta"), encoding="utf-8")


@pytest.mark.parametrize("workflows", WORKFLOW_DIRS[:1], ids=WORKFLOW_IDS[:1])
def test_a_plan_that_differs_is_refused_and_the_fresh_plan_waits_for_approval(
    make_runner: MakeRunner, sandbox: SandboxHandle, github: GitHubStub, workflows: Path
) -> None:
    seed_demo_account(sandbox)
    reviewed_pull_request(make_runner, github, workflows)
    runner = make_runner("push")
    change_desired_state(runner)
    writes_before = writes(sandbox)

    job = runner.run_job(workflows / "apply.yml", "apply")

    assert not job.failed, job.log()
    assert job.steps["apply"].outputs["exit-code"] == "3"
    assert "not the plan apply derives now" in job.steps["apply"].stdout
    assert writes(sandbox) == writes_before
    assert job.outputs == {"fresh": "true", "pr": str(PR)}
    fresh_comment = github.state.comment_bodies(PR)[-1]
    assert "the reviewed plan was not applied" in fresh_comment
    assert "`heymarket` environment" in fresh_comment
    assert "Margareta" in fresh_comment
    assert fresh_comment.strip() in job.summary

    # A required reviewer approves: the gated job applies exactly the fresh plan.
    approved = make_runner("push")
    change_desired_state(approved)
    # The same run: the second job of the workflow, with the first job's artifacts.
    approved.github["run_id"] = runner.github["run_id"]
    approved.artifacts = runner.artifacts
    document = yaml.safe_load((workflows / "apply.yml").read_text(encoding="utf-8"))
    assert document["jobs"]["apply-fresh"]["environment"] == "heymarket"
    gated = approved.run_job(
        workflows / "apply.yml", "apply-fresh", needs={"apply": {"outputs": job.outputs}}
    )

    assert not gated.failed, gated.log()
    assert live_plan(approved)["changes"] == []
    result = github.state.comment_bodies(PR)[-1]
    assert result.startswith("<!-- reconciler-apply -->\n**reconciler apply applied** (fresh")


@pytest.mark.parametrize("workflows", WORKFLOW_DIRS[:1], ids=WORKFLOW_IDS[:1])
def test_a_tampered_plan_is_refused_and_nothing_is_written(
    make_runner: MakeRunner, sandbox: SandboxHandle, github: GitHubStub, workflows: Path
) -> None:
    seed_demo_account(sandbox)
    reviewed_pull_request(make_runner, github, workflows)
    artifact = github.state.artifacts[-1]
    with zipfile.ZipFile(io.BytesIO(github.state.archives[artifact["id"]])) as bundle:
        plan = json.loads(bundle.read("plan.json"))
    plan["changes"] = [c for c in plan["changes"] if c["action"] != "create"][:1] or plan[
        "changes"
    ][:1]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("plan.json", json.dumps(plan))
    github.state.archives[artifact["id"]] = buffer.getvalue()
    runner = make_runner("push")
    writes_before = writes(sandbox)

    job = runner.run_job(workflows / "apply.yml", "apply")

    assert not job.failed, job.log()
    assert job.steps["apply"].outputs["exit-code"] == "3"
    assert writes(sandbox) == writes_before
    assert job.outputs["fresh"] == "true"


def test_a_push_that_no_pull_request_reviewed_goes_to_approval(
    make_runner: MakeRunner, sandbox: SandboxHandle, github: GitHubStub
) -> None:
    seed_demo_account(sandbox)
    runner = make_runner("push")

    job = runner.run_job(ROOT / ".github" / "workflows" / "apply.yml", "apply")

    assert not job.failed, job.log()
    assert job.steps["apply"].outcome == "skipped"
    assert job.outputs == {"fresh": "true", "pr": ""}
    assert "no merged pull request" in job.summary
    assert writes(sandbox) == 0


def test_a_plan_artifact_from_a_fork_is_never_used(
    make_runner: MakeRunner, sandbox: SandboxHandle, github: GitHubStub
) -> None:
    seed_demo_account(sandbox)
    _job, planned = reviewed_pull_request(make_runner, github, ROOT / ".github" / "workflows")
    github.state.artifacts.clear()
    github.state.add_plan_artifact(
        HEAD_SHA, planned.artifacts[f"reconciler-plan-{HEAD_SHA}"], fork=True
    )
    runner = make_runner("push")

    job = runner.run_job(ROOT / ".github" / "workflows" / "apply.yml", "apply")

    assert job.steps["reviewed"].outputs["found"] == "false"
    assert job.outputs["fresh"] == "true"


def test_without_credentials_apply_and_drift_skip_with_a_notice(
    make_runner: MakeRunner, sandbox: SandboxHandle, github: GitHubStub
) -> None:
    for workflow, job_name in (("apply.yml", "apply"), ("drift.yml", "drift")):
        runner = make_runner("push")
        runner.secrets = {}
        job = runner.run_job(ROOT / ".github" / "workflows" / workflow, job_name)
        assert not job.failed, job.log()
        assert "::notice::No Heymarket credentials" in job.steps["credentials"].stdout
    assert api_requests(sandbox) == 0
    assert github.state.requests == []


# --- drift.yml and the cache -------------------------------------------------------------


@pytest.mark.parametrize("workflows", WORKFLOW_DIRS[:1], ids=WORKFLOW_IDS[:1])
def test_drift_is_reported_then_gone_once_applied(
    make_runner: MakeRunner, sandbox: SandboxHandle, github: GitHubStub, workflows: Path
) -> None:
    seed_demo_account(sandbox)
    drifted = make_runner("push").run_job(workflows / "drift.yml", "drift")
    assert not drifted.failed, drifted.log()
    assert drifted.steps["plan"].outputs["exit-code"] == "2"
    assert "### Drift: the live account differs from the default branch" in drifted.summary

    reviewed_pull_request(make_runner, github, workflows)
    assert not make_runner("push").run_job(workflows / "apply.yml", "apply").failed

    in_sync = make_runner("push").run_job(workflows / "drift.yml", "drift")
    assert not in_sync.failed, in_sync.log()
    assert in_sync.steps["plan"].outputs["exit-code"] == "0"
    assert "Drift" not in in_sync.summary


def test_drift_fails_the_job_on_an_error_rather_than_reporting_drift(
    make_runner: MakeRunner,
) -> None:
    runner = make_runner("push")
    runner.secrets = {"HEYMARKET_SECRET_ID": "wrong", "HEYMARKET_SECRET_KEY": "wrong"}

    job = runner.run_job(ROOT / ".github" / "workflows" / "drift.yml", "drift")

    assert job.failed
    assert job.steps["plan"].outcome == "failure"
    assert "Drift" not in job.summary


def test_a_second_ci_plan_reads_the_snapshot_of_the_first_and_costs_a_handful_of_requests(
    make_runner: MakeRunner, sandbox: SandboxHandle, cache: CacheStore
) -> None:
    seed_demo_account(sandbox)
    # Pages of 5 contacts: listing this small account in full takes as many pages as a big
    # one would at the real page size, so a full read and an incremental one tell apart.
    sandbox.set_faults(page_cap=5)
    drift = ROOT / ".github" / "workflows" / "drift.yml"
    first = make_runner("push").run_job(drift, "drift")
    assert not first.failed, first.log()
    cold = api_requests(sandbox)

    # Another runner: nothing shared but the cache.
    second = make_runner("push").run_job(drift, "drift")

    assert not second.failed, second.log()
    assert second.steps["plan"].outputs["exit-code"] == first.steps["plan"].outputs["exit-code"]
    warm = api_requests(sandbox) - cold
    assert warm <= 5, f"the second plan used {warm} requests (the first {cold})"
    assert cold > warm


def test_a_pull_request_reads_the_default_branchs_snapshot_but_never_the_reverse(
    make_runner: MakeRunner, sandbox: SandboxHandle, cache: CacheStore
) -> None:
    seed_demo_account(sandbox)
    planned = make_runner("pull_request").run_job(
        ROOT / ".github" / "workflows" / "plan.yml", "plan"
    )
    assert not planned.failed, planned.log()
    assert [entry[0] for entry in cache.entries] == [f"refs/pull/{PR}/merge"]

    drift = make_runner("push").run_job(ROOT / ".github" / "workflows" / "drift.yml", "drift")

    (restore,) = [r for name, r in drift.results if name == "Restore the live snapshot"]
    assert restore.outcome == "success"
    assert "cache-matched-key" not in restore.outputs

    # The other way round is the point: another pull request reads the default branch's.
    cache.entries = [entry for entry in cache.entries if entry[0] == DEFAULT_REF]
    other = make_runner("pull_request").run_job(ROOT / ".github" / "workflows" / "plan.yml", "plan")
    (restore,) = [r for name, r in other.results if name == "Restore the live snapshot"]
    assert restore.outputs["cache-matched-key"] == "restored"


@pytest.mark.parametrize("damage", ["truncated", "foreign"])
def test_a_damaged_snapshot_in_the_cache_is_not_trusted(
    make_runner: MakeRunner, sandbox: SandboxHandle, cache: CacheStore, damage: str
) -> None:
    seed_demo_account(sandbox)
    sandbox.set_faults(page_cap=5)
    drift = ROOT / ".github" / "workflows" / "drift.yml"
    first = make_runner("push").run_job(drift, "drift")
    assert not first.failed, first.log()
    expected = json.loads(Path(first.steps["plan"].outputs["plan-json"]).read_text())["changes"]
    snapshots = [p for _, _, entry in cache.entries for p in entry.rglob("*") if p.is_file()]
    assert snapshots
    for snapshot in snapshots:
        content = snapshot.read_bytes()
        snapshot.write_bytes(content[: len(content) // 2] if damage == "truncated" else b"[]")
    cold = api_requests(sandbox)

    second = make_runner("push").run_job(drift, "drift")

    assert not second.failed, second.log()
    saved = json.loads(Path(second.steps["plan"].outputs["plan-json"]).read_text())
    assert saved["changes"] == expected
    # Listed in full again (an incremental read of this account costs at most 5).
    assert api_requests(sandbox) - cold > 5
