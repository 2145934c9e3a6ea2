"""`python -m reconciler.ci.github_flow`, run as the workflows run it, against the local
GitHub stub: the right comment edited among many, the newest plan of this repository chosen,
the token never sent to blob storage, and failures as one line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.github_stub import GitHubStub, github_stub
from tests.workflow_lint import ROOT

SHA = "d" * 40


@pytest.fixture
def github() -> Iterator[GitHubStub]:
    with github_stub() as stub:
        yield stub


def flow(
    github: GitHubStub, tmp_path: Path, *arguments: str, **environ: str
) -> subprocess.CompletedProcess[str]:
    outputs = tmp_path / "github_output"
    outputs.touch()
    return subprocess.run(
        [sys.executable, "-m", "reconciler.ci.github_flow", *arguments],
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            "GITHUB_OUTPUT": str(outputs),
            **github.env(),
            **environ,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def outputs(tmp_path: Path) -> dict[str, str]:
    lines = (tmp_path / "github_output").read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_the_plan_comment_is_found_among_many_and_edited_in_place(
    github: GitHubStub, tmp_path: Path
) -> None:
    people = [
        {"id": n, "body": "<!-- reconciler-plan --> quoted by a person", "user": {"type": "User"}}
        for n in range(1, 151)
    ]
    ours = {"id": 999, "body": "<!-- reconciler-plan -->\nold plan", "user": {"type": "Bot"}}
    github.state.comments[3] = [*people, ours]
    (tmp_path / "plan.md").write_text("## new plan\n", encoding="utf-8")

    result = flow(
        github, tmp_path, "plan-comment", "--pr", "3", "--head-sha", SHA,
        "--outcome", "planned", "--plan-markdown", "plan.md",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    bodies = github.state.comment_bodies(3)
    assert len(bodies) == 151
    assert bodies[-1].startswith("<!-- reconciler-plan -->\n## new plan\n")
    assert f"Plan of {SHA[:7]}" in bodies[-1]
    assert all("quoted by a person" in body for body in bodies[:-1])


def test_a_long_plan_is_cut_to_fit_a_comment(github: GitHubStub, tmp_path: Path) -> None:
    (tmp_path / "plan.md").write_text("| row |\n" * 20_000, encoding="utf-8")

    result = flow(
        github, tmp_path, "plan-comment", "--pr", "3", "--head-sha", SHA,
        "--outcome", "planned", "--plan-markdown", "plan.md",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    (body,) = github.state.comment_bodies(3)
    assert len(body) <= 65_536
    assert "cut short" in body
    assert body.endswith(
        f"Plan of {SHA[:7]} · [run](https://github.example/example/contacts/actions/runs/777)</sub>"
    )


def test_the_newest_plan_of_this_repository_is_fetched_through_the_redirect(
    github: GitHubStub, tmp_path: Path
) -> None:
    github.state.merged_pull(5, "e" * 40, SHA)
    github.state.add_plan_artifact(SHA, {"plan.json": b'{"older": true}'})
    github.state.add_plan_artifact(SHA, {"plan.json": b'{"newest": true}'})
    github.state.add_plan_artifact(SHA, {"plan.json": b'{"fork": true}'}, fork=True)
    github.state.add_plan_artifact("f" * 40, {"plan.json": b'{"other commit": true}'})

    result = flow(github, tmp_path, "reviewed-plan", "--sha", "e" * 40, "--out", "r/plan.json")

    assert result.returncode == 0, result.stderr
    assert outputs(tmp_path) == {"pr": "5", "found": "true", "reason": ""}
    assert json.loads((tmp_path / "r" / "plan.json").read_text()) == {"newest": True}
    # The stub's blob storage refuses a request that carries the token: it was not sent.
    assert any(request.startswith("GET /blob/") for request in github.state.requests)


def test_a_merge_whose_head_has_no_plan_is_reported_not_failed(
    github: GitHubStub, tmp_path: Path
) -> None:
    github.state.merged_pull(5, "e" * 40, SHA)

    result = flow(github, tmp_path, "reviewed-plan", "--sha", "e" * 40, "--out", "plan.json")

    assert result.returncode == 0, result.stderr
    assert outputs(tmp_path) == {
        "pr": "5",
        "found": "false",
        "reason": f"no saved plan for {SHA[:7]}",
    }
    assert not (tmp_path / "plan.json").exists()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"GITHUB_TOKEN": "wrong"}, "::error::GitHub answered 401 to GET /repos/"),
        ({"GITHUB_TOKEN": ""}, "::error::GITHUB_TOKEN is not set: pass it in the step's env."),
        ({"GITHUB_API_URL": "http://127.0.0.1:9"}, "::error::cannot reach GitHub for GET"),
    ],
)
def test_a_failure_is_one_line_and_exit_1(
    github: GitHubStub, tmp_path: Path, environ: dict[str, str], message: str
) -> None:
    result = flow(github, tmp_path, "reviewed-plan", "--sha", SHA, "--out", "plan.json", **environ)

    assert result.returncode == 1
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("broken", ["pull without a number", "artifact without an id"])
def test_an_answer_missing_an_id_is_one_line_and_exit_1(
    github: GitHubStub, tmp_path: Path, broken: str
) -> None:
    head = "e" * 40
    github.state.merged_pull(7, SHA, head)
    github.state.add_plan_artifact(head, {"plan.json": b"{}"})
    if broken == "pull without a number":
        del github.state.pulls_by_commit[SHA][0]["number"]
    else:
        del github.state.artifacts[-1]["id"]

    result = flow(github, tmp_path, "reviewed-plan", "--sha", SHA, "--out", "plan.json")

    assert result.returncode == 1
    assert result.stderr.startswith("::error::GitHub's answer has no usable ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "plan.json").exists()
