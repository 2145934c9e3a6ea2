"""No credential ever shows: a whole working session (plan in every format and saved, apply
with prune, restore, export, a refused key, a failing server with --debug) runs as the user
would run it, and neither its output nor any file it leaves behind holds the API key, the
secret id, the secret key or a signed token. With --mask-pii, plan output holds no full phone
or email either."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sandbox_handle import SandboxHandle

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
OWNER = "secret-team"
CONFIG = f"ownership:\n  owner: {OWNER}\nprune:\n  max_deletes: 10\n  max_delete_percent: 100\n"
# Anything shaped like a JSON Web Token (header.payload.signature, base64url).
JWT_SHAPE = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
KEPT = {"15105550101": "kept.one@example.com", "15105550102": "kept.two@example.com"}
NEW = {"15105550103": "new.three@example.com"}
PRUNED = {"15105550104": "pruned.four@example.com"}


class Session:
    """Runs the CLI in a project directory and keeps everything it printed."""

    def __init__(self, project: Path, sandbox: SandboxHandle) -> None:
        self.project = project
        self.sandbox = sandbox
        self.outputs: list[bytes] = []

    def environment(self, *, jwt: bool, **overrides: str) -> dict[str, str]:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("HEYMARKET_")}
        environment.update(self.sandbox.env(jwt=jwt))
        environment.update(overrides)
        environment["PYTHONPATH"] = str(REPOSITORY_ROOT)
        environment["HOME"] = str(self.project / "home")
        environment["GITHUB_STEP_SUMMARY"] = str(self.project / "step-summary.md")
        return environment

    def run(
        self, *args: str, jwt: bool = False, **overrides: str
    ) -> subprocess.CompletedProcess[bytes]:
        completed = subprocess.run(
            [sys.executable, "-m", "reconciler", *args],
            cwd=self.project,
            env=self.environment(jwt=jwt, **overrides),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
        )
        self.outputs += [completed.stdout, completed.stderr]
        return completed


def write_project(project: Path) -> None:
    (project / "home").mkdir()
    (project / "contacts").mkdir()
    (project / "reconciler.yaml").write_text(CONFIG, encoding="utf-8")
    declared = [
        {"phone": phone, "first": f"Person {phone[-3:]}", "email": email}
        for phone, email in {**KEPT, **NEW}.items()
    ]
    (project / "contacts" / "team.yaml").write_text(
        json.dumps({"contacts": declared}, indent=1) + "\n", encoding="utf-8"
    )


def seed(sandbox: SandboxHandle) -> None:
    sandbox.seed(
        [
            {
                "phone": phone,
                "first": "Before",
                "email": email,
                "custom": {"Managed by": OWNER},
            }
            for phone, email in {**KEPT, **PRUNED}.items()
        ]
    )


def secrets_of(sandbox: SandboxHandle, *extra: str) -> dict[str, bytes]:
    values = {
        "api key": sandbox.api_key,
        "secret id": sandbox.secret_id,
        "secret key": sandbox.secret_key,
    }
    values.update({f"refused credential {n}": value for n, value in enumerate(extra)})
    return {name: value.encode() for name, value in values.items()}


def leaks(blob: bytes, secrets: dict[str, bytes]) -> list[str]:
    found = [name for name, value in secrets.items() if value in blob]
    if JWT_SHAPE.search(blob):
        found.append("a signed token")
    return found


def test_no_credential_appears_in_any_output_or_file(
    tmp_path: Path, sandbox: SandboxHandle
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    write_project(project)
    seed(sandbox)
    session = Session(project, sandbox)
    wrong_key, wrong_secret = "refused-key-5f1e0c", "refused-secret-9a7b3d"

    for output_format in ("text", "markdown", "json"):
        assert session.run("plan", "--prune", "--format", output_format).returncode == 0
    assert session.run("plan", "--prune", "--out", "reviewed.plan", jwt=True).returncode == 0
    applied = session.run("apply", "reviewed.plan", "--auto-approve", "--prune", jwt=True)
    assert applied.returncode == 0, applied.stderr
    backups = list((project / ".reconciler" / "backups").glob("*.jsonl"))
    assert len(backups) == 1
    restored = session.run("restore", str(backups[0]), "--auto-approve")
    assert restored.returncode == 0, restored.stderr
    assert session.run("export", "--out", "exported").returncode == 0
    refused_key = session.run("--debug", "plan", HEYMARKET_API_KEY=wrong_key)
    refused_jwt = session.run("--debug", "plan", jwt=True, HEYMARKET_SECRET_KEY=wrong_secret)
    for refused in (refused_key, refused_jwt):
        assert refused.returncode == 1
        assert b"did not accept the credentials" in refused.stderr
    sandbox.set_faults(fail_rate=1.0)
    failing = session.run("--debug", "apply", "--auto-approve", "--prune", "--refresh", "full")
    assert failing.returncode == 1
    assert b"500" in failing.stderr

    secrets = secrets_of(sandbox, wrong_key, wrong_secret)
    for number, output in enumerate(session.outputs):
        assert leaks(output, secrets) == [], f"output {number}: {output[:500]!r}"
    files = [path for path in project.rglob("*") if path.is_file()]
    written = {path.relative_to(project).as_posix() for path in files}
    # The session wrote what it should (so the scan below looked at real files).
    assert {"reviewed.plan", ".reconciler/journal.jsonl", "step-summary.md"} <= written
    assert any(name.startswith(".reconciler/cache/") for name in written)
    assert any(name.startswith("exported/") for name in written)
    for path in files:
        assert leaks(path.read_bytes(), secrets) == [], path.relative_to(project).as_posix()


@pytest.mark.parametrize("output_format", ["text", "markdown", "json"])
def test_mask_pii_keeps_every_phone_and_email_out_of_plan_output(
    output_format: str, tmp_path: Path, sandbox: SandboxHandle
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    write_project(project)
    seed(sandbox)
    session = Session(project, sandbox)
    shown = session.run("plan", "--prune", "--mask-pii", "--format", output_format)
    assert shown.returncode == 0, shown.stderr
    output = shown.stdout + shown.stderr
    # The plan has a create, updates and a delete to show, masked.
    assert b"1510" in output
    for value in [*KEPT, *NEW, *PRUNED, *KEPT.values(), *NEW.values(), *PRUNED.values()]:
        assert value.encode() not in output, f"{value} in {output_format} plan output"
