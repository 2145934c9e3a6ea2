"""The GitHub side of the reviewed-plan flow, run by the workflows (and the Action) as
``python -m reconciler.ci.github_flow COMMAND``: find the pull request a push merged, fetch
the plan saved for its head commit, and keep the pull request's comments current.

The standard library and the package's one JSON decoder only: it talks to the GitHub REST API
(``GITHUB_API_URL``, ``GITHUB_TOKEN``, ``GITHUB_REPOSITORY`` as a job provides them) and
writes step outputs to ``GITHUB_OUTPUT``. Every failure is one line and exit 1."""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.files.untrusted_json import UnreadableJson, decode_json

PLAN_MARKER = "<!-- reconciler-plan -->"
APPLY_MARKER = "<!-- reconciler-apply -->"
PLAN_ARTIFACT_PREFIX = "reconciler-plan-"
# An issue comment holds at most 65,536 characters.
COMMENT_LIMIT = 60_000
_TIMEOUT = 30


class FlowError(Exception):
    """A failure worth one line in the job log."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are followed by hand: an artifact download redirects to blob storage, which
    must not receive the GitHub token."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


@dataclass(frozen=True, slots=True)
class GitHub:
    api_url: str
    token: str
    repository: str

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> GitHub:
        missing = [name for name in ("GITHUB_TOKEN", "GITHUB_REPOSITORY") if not environ.get(name)]
        if missing:
            verb, pronoun = ("is", "it") if len(missing) == 1 else ("are", "them")
            raise FlowError(
                f"{' and '.join(missing)} {verb} not set: pass {pronoun} in the step's env."
            )
        api_url = environ.get("GITHUB_API_URL") or "https://api.github.com"
        return cls(api_url.rstrip("/"), environ["GITHUB_TOKEN"], environ["GITHUB_REPOSITORY"])

    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes, str]:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(f"{self.api_url}{path}", data=data, method=method)
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("X-GitHub-Api-Version", "2022-11-28")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=_TIMEOUT) as response:
                return response.status, response.read(), ""
        except urllib.error.HTTPError as error:
            if error.code in (301, 302, 303, 307, 308):
                return error.code, b"", error.headers.get("Location", "")
            raise FlowError(f"GitHub answered {error.code} to {method} {path}.") from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise FlowError(f"cannot reach GitHub for {method} {path}: {error}.") from None

    def json(self, method: str, path: str, body: Any = None) -> Any:
        _status, payload, _location = self._request(method, path, body)
        try:
            return decode_json(payload) if payload else None
        except UnreadableJson:
            raise FlowError(f"GitHub's answer to {method} {path} is not JSON.") from None

    def pages(self, path: str, key: str | None = None) -> list[Any]:
        """Every item of a paginated list (100 a page, until a short page)."""
        items: list[Any] = []
        separator = "&" if "?" in path else "?"
        for page in range(1, 101):
            answer = self.json("GET", f"{path}{separator}per_page=100&page={page}")
            batch = answer.get(key, []) if key and isinstance(answer, dict) else answer
            if not isinstance(batch, list) or not all(isinstance(item, dict) for item in batch):
                raise FlowError(f"GitHub's answer to GET {path} is not a list of objects.")
            items.extend(batch)
            if len(batch) < 100:
                break
        return items

    def download(self, path: str) -> bytes:
        status, payload, location = self._request("GET", path)
        if not location:
            return payload
        try:
            with urllib.request.urlopen(location, timeout=_TIMEOUT) as response:
                content: bytes = response.read()
                return content
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise FlowError(f"cannot download {path} (redirect {status}): {error}.") from None

    @property
    def repo_path(self) -> str:
        return f"/repos/{self.repository}"


def merged_pull_request(github: GitHub, sha: str) -> dict[str, Any] | None:
    """The pull request whose merge is ``sha``, if the commit came from one."""
    pulls = github.json("GET", f"{github.repo_path}/commits/{sha}/pulls")
    if not isinstance(pulls, list):
        raise FlowError("GitHub's list of the commit's pull requests is not a list.")
    merged = [pull for pull in pulls if isinstance(pull, dict) and pull.get("merged_at")]
    exact = [pull for pull in merged if pull.get("merge_commit_sha") == sha]
    chosen = exact or merged
    return chosen[0] if chosen else None


def _object(value: object) -> dict[str, Any]:
    """A nested object of a GitHub answer; anything else reads as an empty one."""
    return value if isinstance(value, dict) else {}


def _number(value: object, what: str) -> int:
    """A positive integer from a GitHub answer, or a one-line failure naming ``what``."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise FlowError(f"GitHub's answer has no usable {what} ({value!r:.40}).")


def plan_artifact_name(head_sha: str) -> str:
    return f"{PLAN_ARTIFACT_PREFIX}{head_sha}"


def fetch_plan(github: GitHub, head_sha: str, destination: Path) -> Path | None:
    """Download ``plan.json`` of the newest plan artifact made in this repository (not a
    fork) for the pull request's head commit ``head_sha``; ``None`` when there is none."""
    name = urllib.parse.quote(plan_artifact_name(head_sha))
    artifacts = github.pages(f"{github.repo_path}/actions/artifacts?name={name}", "artifacts")
    candidates = []
    for artifact in artifacts:
        run = _object(artifact.get("workflow_run"))
        if artifact.get("expired") or artifact.get("name") != plan_artifact_name(head_sha):
            continue
        if run.get("head_sha") != head_sha:
            continue
        # A pull request from a fork runs its own copy of the workflow: never trust its files.
        if run.get("head_repository_id") != run.get("repository_id"):
            continue
        candidates.append(artifact)
    if not candidates:
        return None
    newest = max(candidates, key=lambda artifact: str(artifact.get("created_at", "")))
    identifier = _number(newest.get("id"), "an artifact id")
    archive = github.download(f"{github.repo_path}/actions/artifacts/{identifier}/zip")
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
            plan = bundle.read("plan.json")
    except (zipfile.BadZipFile, KeyError):
        raise FlowError(f"the artifact {newest['name']} has no plan.json.") from None
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_bytes(plan)
    return destination


def upsert_comment(github: GitHub, number: int, marker: str, body: str) -> str:
    """Edit the bot's comment that carries ``marker`` or create it: one per pull request."""
    path = f"{github.repo_path}/issues/{number}/comments"
    comments = github.pages(path)
    for comment in comments:
        user = _object(comment.get("user"))
        if user.get("type") == "Bot" and marker in str(comment.get("body", "")):
            identifier = _number(comment.get("id"), "a comment id")
            github.json("PATCH", f"{github.repo_path}/issues/comments/{identifier}", {"body": body})
            return "updated"
    github.json("POST", path, {"body": body})
    return "created"


def add_comment(github: GitHub, number: int, body: str) -> None:
    github.json("POST", f"{github.repo_path}/issues/{number}/comments", {"body": body})


def _run_link(environ: Mapping[str, str]) -> str:
    server = environ.get("GITHUB_SERVER_URL", "https://github.com")
    repository, run_id = environ.get("GITHUB_REPOSITORY", ""), environ.get("GITHUB_RUN_ID", "")
    return f"{server}/{repository}/actions/runs/{run_id}"


def _read(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _clip(text: str) -> str:
    if len(text) <= COMMENT_LIMIT:
        return text
    return text[:COMMENT_LIMIT] + "\n\n… (cut short: the whole text is in the run's log)"


def plan_comment(outcome: str, plan_markdown: str, head_sha: str, run: str) -> str:
    """The pull request's plan comment for the head commit ``head_sha``."""
    if outcome == "validation-failed":
        text = (
            "**reconciler: validation failed, no plan.** The desired state of this commit "
            f"does not validate; the problems are annotated in the diff and in [the run]({run})."
        )
    elif outcome == "planned" and plan_markdown:
        text = plan_markdown
    else:
        text = f"**reconciler plan failed, no plan.** See [the run log]({run})."
    footer = f"<sub>Plan of {head_sha[:7]} · [run]({run})</sub>"
    return f"{PLAN_MARKER}\n{_clip(text)}\n\n{footer}"


def fresh_plan_comment(plan_markdown: str, reason: str, environment: str, run: str) -> str:
    return _clip(
        f"{APPLY_MARKER}\n**reconciler: the reviewed plan was not applied** ({reason}). This "
        f"fresh plan of the merged state waits for approval in the `{environment}` "
        f"environment of [this run]({run}):\n\n{plan_markdown or '(no plan output)'}"
    )


def apply_result_comment(outcome: str, output: str, which: str, run: str) -> str:
    verdict = "applied" if outcome == "success" else "failed"
    return _clip(
        f"{APPLY_MARKER}\n**reconciler apply {verdict}** ({which} plan) in [this run]({run}). "
        f"Prune backups and the audit journal: [the run's artifacts]({run}#artifacts).\n\n"
        f"```\n{output or '(no output)'}\n```"
    )


def _set_outputs(environ: Mapping[str, str], values: Mapping[str, str]) -> None:
    lines = "".join(f"{key}={value}\n" for key, value in values.items())
    target = environ.get("GITHUB_OUTPUT")
    if target:
        with Path(target).open("a", encoding="utf-8") as handle:
            handle.write(lines)
    sys.stdout.write(lines)


def _summary(environ: Mapping[str, str], text: str) -> None:
    target = environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with Path(target).open("a", encoding="utf-8") as handle:
            handle.write(text + "\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reconciler.ci.github_flow")
    commands = parser.add_subparsers(dest="command", required=True)
    find = commands.add_parser("reviewed-plan", help="find the merged PR and its saved plan")
    find.add_argument("--sha", required=True)
    find.add_argument("--out", type=Path, required=True)
    plan = commands.add_parser("plan-comment", help="the PR's sticky plan comment")
    plan.add_argument("--pr", type=int, required=True)
    plan.add_argument("--head-sha", required=True)
    plan.add_argument(
        "--outcome", choices=("planned", "validation-failed", "plan-failed"), required=True
    )
    plan.add_argument("--plan-markdown", type=Path)
    fresh = commands.add_parser("fresh-plan-comment", help="a plan that waits for approval")
    fresh.add_argument("--pr", default="")
    fresh.add_argument("--reason", required=True)
    fresh.add_argument("--environment", required=True)
    fresh.add_argument("--plan-markdown", type=Path)
    result = commands.add_parser("result-comment", help="the apply's result on the PR")
    result.add_argument("--pr", default="")
    result.add_argument("--outcome", required=True)
    result.add_argument("--which", choices=("reviewed", "fresh"), required=True)
    result.add_argument("--output", type=Path)
    return parser


def run(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    arguments = _parser().parse_args(argv)
    github = GitHub.from_environment(environ)
    link = _run_link(environ)
    if arguments.command == "reviewed-plan":
        pull = merged_pull_request(github, arguments.sha)
        if pull is None:
            _set_outputs(environ, {"pr": "", "found": "false", "reason": "no merged pull request"})
            return 0
        number = _number(pull.get("number"), "a pull request number")
        head_sha = str(_object(pull.get("head")).get("sha", ""))
        saved = fetch_plan(github, head_sha, arguments.out) if head_sha else None
        _set_outputs(
            environ,
            {
                "pr": str(number),
                "found": "true" if saved else "false",
                "reason": "" if saved else f"no saved plan for {head_sha[:7]}",
            },
        )
        return 0
    if arguments.command == "plan-comment":
        body = plan_comment(
            arguments.outcome, _read(arguments.plan_markdown), arguments.head_sha, link
        )
        print(upsert_comment(github, arguments.pr, PLAN_MARKER, body), "the plan comment")
        return 0
    if arguments.command == "fresh-plan-comment":
        body = fresh_plan_comment(
            _read(arguments.plan_markdown), arguments.reason, arguments.environment, link
        )
    else:
        body = apply_result_comment(
            arguments.outcome, _read(arguments.output), arguments.which, link
        )
    _summary(environ, body)
    if arguments.pr:
        add_comment(github, int(arguments.pr), body)
    return 0


def main() -> int:
    try:
        return run(sys.argv[1:], os.environ)
    except FlowError as error:
        print(f"::error::{error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
