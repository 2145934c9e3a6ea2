"""Applies that run at the same time, as separate processes the way CI jobs and people do:
two repositories applying to one account at once end in the declared state with no contact
created twice; two runs in one working directory take turns on ``.reconciler/lock``, and a
holder killed with SIGKILL leaves nothing that blocks the next run."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.account import write_count
from tests.sandbox_handle import SandboxHandle

OWNER = "shared-team"
MARKER = "Managed by"
PROMPT = "Only 'yes' will be accepted"
TIMEOUT_SECONDS = 120.0


def _repository(directory: Path, contacts: list[dict[str, Any]]) -> Path:
    (directory / "contacts").mkdir(parents=True, exist_ok=True)
    (directory / "reconciler.yaml").write_text(f"ownership:\n  owner: {OWNER}\n", encoding="utf-8")
    (directory / "contacts" / "team.yaml").write_text(
        json.dumps({"contacts": contacts}, indent=1), encoding="utf-8"
    )
    return directory


def _declared(phones: list[str], first: str = "Declared") -> list[dict[str, Any]]:
    return [{"phone": phone, "first": f"{first} {phone[-3:]}", "last": "Same"} for phone in phones]


def _environment(sandbox: SandboxHandle) -> dict[str, str]:
    root = str(Path(__file__).parents[2])
    return {**os.environ, **sandbox.env(), "NO_COLOR": "1", "PYTHONPATH": root}


def _apply(cwd: Path, sandbox: SandboxHandle, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", *args],
        cwd=cwd,
        env=_environment(sandbox),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = process.communicate(timeout=TIMEOUT_SECONDS)
    return process.returncode, out + err


def _stored(sandbox: SandboxHandle) -> Counter[str]:
    return Counter(record["phone"] for record in sandbox.contacts())


def test_two_repositories_applying_at_once_end_in_the_declared_state(
    tmp_path: Path, sandbox: SandboxHandle
) -> None:
    # Both declare the same 450 contacts (five batches each), 150 of which exist unowned:
    # whichever writes a contact second finds it there, or is refused and says so.
    phones = [f"1555000{n:04d}" for n in range(450)]
    sandbox.seed([{"phone": phone, "first": "Unowned"} for phone in phones[:150]])
    sandbox.set_faults(latency_ms=20)
    first = _repository(tmp_path / "first", _declared(phones))
    second = _repository(tmp_path / "second", _declared(phones))

    # Both have planned against the same account before either writes: a real race.
    with (
        _waiting_at_the_prompt(first, sandbox) as one,
        _waiting_at_the_prompt(second, sandbox) as other,
    ):
        one.answer("yes\n")
        other.answer("yes\n")
        results = [prompted.finish() for prompted in (one, other)]
    sandbox.set_faults(latency_ms=0)

    # Each run writes all it planned; where the other run created a contact first, the
    # server refuses the create as a duplicate and the run says so (exit 1).
    refused = 0
    for code, output in results:
        failures = [line for line in output.splitlines() if line.startswith("Failed:")]
        assert code == (1 if failures else 0), output
        assert all("duplicate_phone" in line for line in failures), failures
        refused += len(failures)
    assert refused > 0
    stored = _stored(sandbox)
    assert set(stored) == set(phones)
    assert max(stored.values()) == 1

    # A run after the race converges whatever it was, and then neither repository has changes.
    for directory in (first, second):
        code, output = _finish(_apply(directory, sandbox, "--auto-approve"))
        assert code == 0, output
    for record in sandbox.contacts():
        assert (record["first"], record["last"]) == (f"Declared {record['phone'][-3:]}", "Same")
        assert OWNER in record["custom"].values()
    for directory in (first, second):
        plan = subprocess.run(
            [sys.executable, "-m", "reconciler", "plan", "--detailed-exitcode"],
            cwd=directory,
            env=_environment(sandbox),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
        assert plan.returncode == 0, plan.stdout + plan.stderr


@contextmanager
def _waiting_at_the_prompt(cwd: Path, sandbox: SandboxHandle) -> Iterator[_Prompted]:
    """An apply on a terminal that holds the lock while it asks for approval."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply"],
        cwd=cwd,
        env=_environment(sandbox),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    prompted = _Prompted(process, controller)
    try:
        prompted.read_until(PROMPT)
        yield prompted
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=TIMEOUT_SECONDS)
        os.close(controller)


class _Prompted:
    def __init__(self, process: subprocess.Popen[bytes], controller: int) -> None:
        self.process = process
        self.controller = controller
        self.seen = ""

    def read_until(self, text: str) -> None:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while text not in self.seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {text!r} from apply; it wrote {self.seen!r}"
            ready, _, _ = select.select([self.controller], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.controller, 4096)
                except OSError:
                    chunk = b""
                assert chunk, f"apply ended before {text!r}; it wrote {self.seen!r}"
                self.seen += chunk.decode("utf-8", "replace")

    def answer(self, text: str) -> None:
        os.write(self.controller, text.encode())

    def finish(self) -> tuple[int, str]:
        """Wait for the run to end; its exit code and all it wrote to the terminal."""
        while True:
            ready, _, _ = select.select([self.controller], [], [], TIMEOUT_SECONDS)
            assert ready, f"apply did not finish; it wrote {self.seen!r}"
            try:
                chunk = os.read(self.controller, 4096)
            except OSError:  # the terminal closes with the last process that had it open
                chunk = b""
            if not chunk:
                break
            self.seen += chunk.decode("utf-8", "replace")
        return self.process.wait(timeout=TIMEOUT_SECONDS), self.seen.replace("\r\n", "\n")


def test_a_second_apply_in_the_same_directory_refuses_or_waits(
    tmp_path: Path, sandbox: SandboxHandle
) -> None:
    phones = [f"1556000{n:04d}" for n in range(20)]
    project = _repository(tmp_path, _declared(phones))
    with _waiting_at_the_prompt(project, sandbox) as holder:
        # Not prepared to wait: refused, with the holder named, and nothing written.
        code, output = _finish(_apply(project, sandbox, "--auto-approve", "--lock-timeout", "0.3"))
        assert code == 1
        assert f"pid {holder.process.pid} (apply)" in output
        assert "holds .reconciler/lock" in output
        assert write_count(sandbox) == 0

        # Prepared to wait: it waits for the holder, then finds nothing left to do.
        waiter = _apply(project, sandbox, "--auto-approve", "--lock-timeout", "60")
        assert waiter.stderr is not None
        ready, _, _ = select.select([waiter.stderr], [], [], TIMEOUT_SECONDS)
        assert ready
        assert "Waiting for another reconciler run" in waiter.stderr.readline()
        assert _stored(sandbox) == Counter()
        holder.answer("yes\n")
        assert holder.process.wait(timeout=TIMEOUT_SECONDS) == 0
        code, output = _finish(waiter)
        assert code == 0, output
        assert "No changes." in output
    assert set(_stored(sandbox)) == set(phones)
    assert max(_stored(sandbox).values()) == 1


def test_a_killed_apply_does_not_block_the_next_one(tmp_path: Path, sandbox: SandboxHandle) -> None:
    phones = [f"1557000{n:04d}" for n in range(20)]
    project = _repository(tmp_path, _declared(phones))
    with _waiting_at_the_prompt(project, sandbox) as holder:
        holder.process.send_signal(signal.SIGKILL)
        assert holder.process.wait(timeout=TIMEOUT_SECONDS) == -signal.SIGKILL
        # The lock file stays behind, naming the dead holder; it must not matter.
        lock = project / ".reconciler" / "lock"
        assert f"pid {holder.process.pid}" in lock.read_text(encoding="utf-8")
        code, output = _finish(_apply(project, sandbox, "--auto-approve", "--lock-timeout", "0"))
    assert code == 0, output
    assert "Apply complete: 20 created" in output
    assert set(_stored(sandbox)) == set(phones)
