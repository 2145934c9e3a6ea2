"""A SIGKILL can land anywhere in a large `apply --prune`: the rerun converges, nothing is
duplicated, every contact that disappeared was in a backup on disk before it went, and the
journal never claims a change the account does not show.

Each kill waits for a random number of API requests to reach the sandbox (which delays every
answer, so the process is mid-run), plus a random fraction of one answer's latency, so kills
land before, during and after writes, backups and deletes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

import pytest

from tests.sandbox_handle import SandboxHandle

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
OWNER = "crash-team"
CONFIG = f"ownership:\n  owner: {OWNER}\nprune:\n  max_deletes: 10000\n  max_delete_percent: 100\n"
LATENCY_MS = 60
KEPT_UPDATED = [f"1510555{n:04d}" for n in range(100)]
KEPT_SAME = [f"1510555{n:04d}" for n in range(100, 200)]
TO_DELETE = [f"1510555{n:04d}" for n in range(200, 400)]
TO_CREATE = [f"1510555{n:04d}" for n in range(1000, 1200)]
UNOWNED = [f"1510555{n:04d}" for n in range(2000, 2050)]
# A full run makes 16 API requests (listing, field, writes, prune reads, deletes, verify); a
# kill after at most the 15th to arrive always lands while the run is still going.
LAST_KILL_POINT = 15
RUN_TIMEOUT_SECONDS = 120.0


def desired_first(phone: str) -> str:
    if phone in KEPT_UPDATED:
        return f"Updated {phone[-4:]}"
    if phone in TO_CREATE:
        return f"Created {phone[-4:]}"
    return f"Owned {phone[-4:]}"


def write_project(project: Path) -> None:
    (project / "contacts").mkdir()
    (project / "reconciler.yaml").write_text(CONFIG, encoding="utf-8")
    declared = [
        {"phone": phone, "first": desired_first(phone)}
        for phone in KEPT_UPDATED + KEPT_SAME + TO_CREATE
    ]
    (project / "contacts" / "team.yaml").write_text(
        json.dumps({"contacts": declared}, indent=1) + "\n", encoding="utf-8"
    )


def seed_account(sandbox: SandboxHandle) -> dict[str, dict[str, Any]]:
    owned = [
        {"phone": phone, "first": f"Owned {phone[-4:]}", "custom": {"Managed by": OWNER}}
        for phone in KEPT_UPDATED + KEPT_SAME + TO_DELETE
    ]
    unowned = [{"phone": phone, "first": "Someone else's"} for phone in UNOWNED]
    return {record["uuid"]: record for record in sandbox.seed(owned + unowned)}


def cli_environment(sandbox: SandboxHandle) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HEYMARKET_")}
    environment.update(sandbox.env())
    environment["PYTHONPATH"] = str(REPOSITORY_ROOT)
    environment.pop("GITHUB_STEP_SUMMARY", None)
    return environment


def start_apply(
    project: Path, environment: dict[str, str], log: IO[bytes]
) -> subprocess.Popen[bytes]:
    # Output goes to a file: a full pipe nobody reads would stall the run, not the kill.
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "--auto-approve", "--prune"],
        cwd=project,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )


def run_cli(
    project: Path, environment: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=project,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )


def kill_after_requests(
    process: subprocess.Popen[bytes], sandbox: SandboxHandle, requests: int, extra_seconds: float
) -> bool:
    """SIGKILL the process once the sandbox has seen ``requests`` API requests and
    ``extra_seconds`` more have passed; False when it finished first."""
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
        while process.poll() is None and sandbox.stats()["requests"] < requests:
            assert time.monotonic() < deadline, "the apply never reached the kill point"
            time.sleep(0.005)
        if extra_seconds:
            time.sleep(extra_seconds)
        if process.poll() is not None:
            return False
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL
        return True
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def journal_entries(project: Path) -> list[dict[str, Any]]:
    """Every journal line; a line that is not a whole JSON object fails the test."""
    path = project / ".reconciler" / "journal.jsonl"
    if not path.exists():
        return []
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        entry = json.loads(line)
        assert isinstance(entry, dict), f"journal line {number} is not an object: {line!r}"
        entries.append(entry)
    return entries


def backed_up_uuids(project: Path) -> set[str]:
    directory = project / ".reconciler" / "backups"
    uuids: set[str] = set()
    for path in sorted(directory.glob("*.jsonl")) if directory.exists() else []:
        for line in path.read_text(encoding="utf-8").splitlines():
            uuids.add(str(json.loads(line)["record"]["uuid"]))
    return uuids


def assert_account_is_sound(
    project: Path, sandbox: SandboxHandle, before: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """What must hold at any moment, even right after a kill; returns the live contacts."""
    live = sandbox.contacts()
    phones = Counter(record["phone"] for record in live)
    assert [phone for phone, count in phones.items() if count > 1] == []
    live_by_phone = {record["phone"]: record for record in live}
    live_uuids = {record["uuid"] for record in live}

    gone = {uuid: record for uuid, record in before.items() if uuid not in live_uuids}
    assert {record["phone"] for record in gone.values()} <= set(TO_DELETE)
    # The killed process cannot write anything after it died: what is gone was backed up first.
    assert set(gone) <= backed_up_uuids(project)
    assert set(UNOWNED) <= set(live_by_phone)

    for entry in journal_entries(project):
        if entry["result"] != "applied":
            continue
        phone = entry["phone"]
        if entry["action"] == "delete":
            assert entry["contact_id"] not in live_uuids, f"journal claims a delete: {entry}"
            assert phone not in live_by_phone, f"journal claims a delete: {entry}"
        else:
            assert phone in live_by_phone, f"journal claims a {entry['action']}: {entry}"
            record = live_by_phone[phone]
            assert record["first"] == desired_first(phone), f"journal claims: {entry}"
            assert OWNER in record["custom"].values(), f"journal claims: {entry}"
    return live_by_phone


def assert_converged(
    project: Path, sandbox: SandboxHandle, environment: dict[str, str], before: dict[str, Any]
) -> None:
    live_by_phone = assert_account_is_sound(project, sandbox, before)
    assert set(live_by_phone) == set(KEPT_UPDATED + KEPT_SAME + TO_CREATE + UNOWNED)
    for phone in KEPT_UPDATED + KEPT_SAME + TO_CREATE:
        assert live_by_phone[phone]["first"] == desired_first(phone)
    planned = run_cli(project, environment, "plan", "--prune", "--detailed-exitcode")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "No changes." in planned.stdout


def crash_and_rerun(seed: int, tmp_path: Path, sandbox: SandboxHandle) -> None:
    chance = random.Random(seed)
    project = tmp_path / "project"
    project.mkdir()
    write_project(project)
    before = seed_account(sandbox)
    sandbox.set_faults(latency_ms=LATENCY_MS)
    environment = cli_environment(sandbox)

    kill_at = chance.randint(1, LAST_KILL_POINT)
    extra = chance.uniform(0, LATENCY_MS / 1000)
    with (tmp_path / "killed-apply.log").open("wb") as log:
        process = start_apply(project, environment, log)
        killed = kill_after_requests(process, sandbox, kill_at, extra)
    assert killed, f"the apply finished before request {kill_at}: lower LAST_KILL_POINT"
    assert_account_is_sound(project, sandbox, before)

    sandbox.set_faults(latency_ms=0)
    rerun = run_cli(project, environment, "apply", "--auto-approve", "--prune")
    assert rerun.returncode == 0, f"killed at request {kill_at}: {rerun.stdout}{rerun.stderr}"
    assert "Traceback" not in rerun.stderr
    assert_converged(project, sandbox, environment, before)


@pytest.mark.parametrize("seed", range(3))
def test_a_killed_apply_with_prune_converges_on_rerun(
    seed: int, tmp_path: Path, sandbox: SandboxHandle
) -> None:
    crash_and_rerun(seed, tmp_path, sandbox)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 120))
def test_twenty_kills_at_random_points_each_converge(
    seed: int, tmp_path: Path, sandbox: SandboxHandle
) -> None:
    crash_and_rerun(seed, tmp_path, sandbox)
