"""Runs a job of one of our GitHub workflows on this machine, step by step, the way the
runner does: each `if:` evaluated (with the implicit `success()`), `${{ }}` expressions
filled in from the contexts (github, secrets, vars, steps, needs, inputs), `run:` scripts
under `bash -e` with the step's env and the GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files, and
our composite Action (`uses: ./` or a release of it) run from action.yml the same way.

The third-party actions are stood in for by what they do to the workspace: checkout (the
workspace is already a checkout), setup-python (the test's Python), actions/cache restore
and save (a cache directory shared between simulated runs, scoped by ref as GitHub scopes
caches), upload-artifact and download-artifact (a dictionary of the run's artifacts)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REF = "refs/heads/main"
_OURS = re.compile(r"^(\./|OWNER/reconciler@)")
_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||!|\(|\)|,)"
    r"|(?P<number>\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_.-]*))"
)


class Expression:
    """GitHub's expression language, the part our workflows use."""

    def __init__(self, text: str, contexts: dict[str, Any]) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        text = text.strip()
        while position < len(text):
            match = _TOKEN.match(text, position)
            assert match and match.end() > position, f"cannot read the expression {text!r}"
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
            while position < len(text) and text[position] == " ":
                position += 1
        self.index = 0
        self.contexts = contexts

    def value(self) -> Any:
        result = self._or()
        assert self.index == len(self.tokens), f"unread tokens in {self.tokens}"
        return result

    def _peek(self) -> str:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else ""

    def _take(self) -> tuple[str, str]:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _or(self) -> Any:
        left = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            left = left or right
        return left

    def _and(self) -> Any:
        left = self._compare()
        while self._peek() == "&&":
            self._take()
            right = self._compare()
            left = left and right
        return left

    def _compare(self) -> Any:
        left = self._unary()
        while self._peek() in ("==", "!="):
            operator = self._take()[1]
            right = self._unary()
            equal = _loose(left) == _loose(right)
            left = equal if operator == "==" else not equal
        return left

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not self._unary()
        if self._peek() == "(":
            self._take()
            inner = self._or()
            assert self._take()[1] == ")"
            return inner
        kind, text = self._take()
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if kind == "number":
            return int(text)
        if text in ("true", "false"):
            return text == "true"
        if self._peek() == "(":
            self._take()
            assert self._take()[1] == ")", f"functions take no arguments here: {text}"
            return self.contexts["__functions__"][text]()
        return _lookup(self.contexts, text)


def _loose(value: Any) -> Any:
    """GitHub compares case-insensitively, and a missing value is an empty string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return value
    return str(value).lower()


def _lookup(contexts: dict[str, Any], path: str) -> Any:
    value: Any = contexts
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def interpolate(text: str, contexts: dict[str, Any]) -> str:
    return re.sub(
        r"\$\{\{(.*?)\}\}", lambda m: _text(Expression(m.group(1), contexts).value()), text
    )


def condition(text: str | bool | None, contexts: dict[str, Any]) -> bool:
    if text is None:
        return bool(contexts["__functions__"]["success"]())
    if isinstance(text, bool):
        return text
    inner = text.strip()
    if inner.startswith("${{") and inner.endswith("}}"):
        inner = inner[3:-2]
    if not re.search(r"\b(always|success|failure|cancelled)\(", inner):
        inner = f"success() && ({inner})"
    return bool(Expression(inner, contexts).value())


@dataclass
class CacheStore:
    """actions/cache across runs: entries by key, each readable from its own ref and, for a
    pull request, from the default branch (GitHub's cache scoping)."""

    root: Path
    entries: list[tuple[str, str, Path]] = field(default_factory=list)

    def restore(self, ref: str, key: str, restore_keys: list[str], target: Path) -> str:
        """Restore into ``target``: "exact" (``key`` itself), "prefix" (a restore key, for
        which actions/cache reports `cache-hit` false) or "miss"."""
        for wanted in [key, *restore_keys]:
            for scope in (ref, DEFAULT_REF):
                found = [
                    e
                    for e in self.entries
                    if e[0] == scope and (e[1] == wanted or e[1].startswith(wanted))
                ]
                if found:
                    shutil.rmtree(target, ignore_errors=True)
                    shutil.copytree(found[-1][2], target)
                    return "exact" if found[-1][1] == key else "prefix"
        return "miss"

    def save(self, ref: str, key: str, source: Path) -> None:
        if not source.exists() or any(e[1] == key and e[0] == ref for e in self.entries):
            return
        copy = self.root / f"entry-{sum(1 for _ in self.root.iterdir())}"
        shutil.copytree(source, copy)
        self.entries.append((ref, key, copy))


@dataclass
class StepResult:
    outcome: str
    outputs: dict[str, str]
    stdout: str = ""
    stderr: str = ""


@dataclass
class JobRun:
    steps: dict[str, StepResult]
    results: list[tuple[str, StepResult]]
    summary: str
    outputs: dict[str, str]

    @property
    def failed(self) -> bool:
        return any(result.outcome == "failure" for _, result in self.results)

    def log(self) -> str:
        return "\n".join(
            f"--- {name}: {result.outcome}\n{result.stdout}{result.stderr}"
            for name, result in self.results
        )


@dataclass
class Runner:
    """One runner machine's view: a workspace, the contexts, and a bin directory whose
    `reconciler` and `python` are this checkout's."""

    workspace: Path
    environment: dict[str, str]
    github: dict[str, Any]
    secrets: dict[str, str]
    vars: dict[str, str]
    cache: CacheStore
    artifacts: dict[str, dict[str, bytes]] = field(default_factory=dict)

    def bin_dir(self) -> Path:
        directory = self.workspace.parent / "bin"
        if not directory.exists():
            directory.mkdir()
            for name, command in (("reconciler", "-m reconciler"), ("python", "")):
                shim = directory / name
                shim.write_text(
                    f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" {command} "$@"\n',
                    encoding="utf-8",
                )
                shim.chmod(0o755)
        return directory

    def run_job(self, workflow: Path, job: str, needs: dict[str, Any] | None = None) -> JobRun:
        document = yaml.safe_load(workflow.read_text(encoding="utf-8"))
        definition = document["jobs"][job]
        steps: dict[str, StepResult] = {}
        results: list[tuple[str, StepResult]] = []
        summary = self.workspace.parent / f"summary-{job}.md"
        summary.write_text("", encoding="utf-8")
        failed = [False]
        functions = {
            "success": lambda: not failed[0],
            "failure": lambda: failed[0],
            "always": lambda: True,
            "cancelled": lambda: False,
        }
        contexts: dict[str, Any] = {
            "github": self.github,
            "secrets": self.secrets,
            "vars": self.vars,
            "steps": {},
            "needs": needs or {},
            "__functions__": functions,
        }
        for index, step in enumerate(definition["steps"]):
            name = step.get("name") or step.get("uses") or f"step {index}"
            if not condition(step.get("if"), contexts):
                result = StepResult("skipped", {})
            else:
                result = self._step(step, contexts, summary)
                if result.outcome == "failure" and not step.get("continue-on-error"):
                    failed[0] = True
            results.append((name, result))
            if "id" in step:
                steps[step["id"]] = result
                contexts["steps"][step["id"]] = {
                    "outputs": result.outputs,
                    "outcome": result.outcome,
                    "conclusion": result.outcome,
                }
        outputs = {
            key: interpolate(str(value), contexts)
            for key, value in definition.get("outputs", {}).items()
        }
        return JobRun(steps, results, summary.read_text(encoding="utf-8"), outputs)

    def _step(self, step: dict[str, Any], contexts: dict[str, Any], summary: Path) -> StepResult:
        env = {k: interpolate(str(v), contexts) for k, v in step.get("env", {}).items()}
        if "run" in step:
            return self._shell(step["run"], env, summary, self.workspace)
        uses = str(step["uses"])
        given = {k: interpolate(str(v), contexts) for k, v in step.get("with", {}).items()}
        if _OURS.match(uses):
            return self._our_action(given, env, summary)
        action = uses.split("@", 1)[0]
        cache_dir = self.workspace / ".reconciler" / "cache"
        if action in ("actions/checkout", "actions/setup-python"):
            return StepResult("success", {})
        if action == "actions/cache/restore":
            restore_keys = [k for k in given.get("restore-keys", "").splitlines() if k.strip()]
            found = self.cache.restore(self.github["ref"], given["key"], restore_keys, cache_dir)
            # The outputs actions/cache/restore sets: cache-hit only for the exact key.
            outputs = {"cache-hit": "true" if found == "exact" else "false"}
            if found != "miss":
                outputs["cache-matched-key"] = "restored"
            return StepResult("success", outputs)
        if action == "actions/cache/save":
            self.cache.save(self.github["ref"], given["key"], cache_dir)
            return StepResult("success", {})
        if action == "actions/upload-artifact":
            files = {}
            for pattern in given["path"].split():
                source = self.workspace / pattern
                if source.is_file():
                    files[source.name] = source.read_bytes()
                elif source.is_dir():
                    for path in source.rglob("*"):
                        if path.is_file():
                            files[str(path.relative_to(self.workspace))] = path.read_bytes()
            if not files and given.get("if-no-files-found") == "error":
                return StepResult("failure", {})
            self.artifacts[given["name"]] = files
            return StepResult("success", {})
        if action == "actions/download-artifact":
            for relative, content in self.artifacts[given["name"]].items():
                (self.workspace / relative).write_bytes(content)
            return StepResult("success", {})
        if action == "actions/github-script":
            return StepResult("skipped", {})
        raise AssertionError(f"the test has no stand-in for {uses}")

    def _our_action(self, given: dict[str, str], env: dict[str, str], summary: Path) -> StepResult:
        action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
        inputs = {k: str(v.get("default", "")) for k, v in action["inputs"].items()}
        unknown = set(given) - set(inputs)
        assert not unknown, f"the Action has no input {unknown}"
        inputs.update(given)
        contexts: dict[str, Any] = {"inputs": inputs, "steps": {}, "github": self.github}
        for step in action["runs"]["steps"]:
            if "uses" in step or step.get("name") == "Install reconciler":
                continue  # setup-python and pip install: the bin shims stand in for them
            step_env = {**env, **{k: interpolate(str(v), contexts) for k, v in step["env"].items()}}
            directory = self.workspace / interpolate(step.get("working-directory", "."), contexts)
            result = self._shell(step["run"], step_env, summary, directory)
            contexts["steps"][step.get("id", "")] = {"outputs": result.outputs}
            if result.outcome == "failure":
                return result
        outputs = {k: interpolate(str(v["value"]), contexts) for k, v in action["outputs"].items()}
        return StepResult("success", outputs, result.stdout, result.stderr)

    def _shell(self, script: str, env: dict[str, str], summary: Path, cwd: Path) -> StepResult:
        temp = self.workspace.parent / "runner-temp"
        temp.mkdir(exist_ok=True)
        outputs = self.workspace.parent / "github_output"
        outputs.write_text("", encoding="utf-8")
        script_file = self.workspace.parent / "step.sh"
        script_file.write_text(script, encoding="utf-8")
        environment = {
            "PATH": f"{self.bin_dir()}:/usr/bin:/bin",
            "HOME": str(self.workspace.parent / "home"),
            "GITHUB_ACTIONS": "true",
            "CI": "true",
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_OUTPUT": str(outputs),
            "GITHUB_ACTION_PATH": str(ROOT),
            "RUNNER_TEMP": str(temp),
            **self.environment,
            **env,
        }
        completed = subprocess.run(
            ["bash", "-e", str(script_file)],
            cwd=cwd,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        values = dict(
            line.split("=", 1)
            for line in outputs.read_text(encoding="utf-8").splitlines()
            if "=" in line
        )
        outcome = "success" if completed.returncode == 0 else "failure"
        return StepResult(outcome, values, completed.stdout, completed.stderr)
