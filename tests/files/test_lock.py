"""One apply or restore at a time per directory; a dead holder never blocks the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.core.errors import LockHeldError
from reconciler.files.lock import exclusive_lock
from tests.account import declare
from tests.sandbox_handle import SandboxHandle


def test_a_second_holder_is_refused_after_waiting(tmp_path: Path) -> None:
    waits: list[str] = []
    with (
        exclusive_lock(tmp_path, command="apply"),
        pytest.raises(LockHeldError, match=r"another reconciler run \(pid \d+ \(apply\)\)"),
        exclusive_lock(tmp_path, command="apply", wait_seconds=0.2, on_wait=waits.append),
    ):
        pass
    assert len(waits) == 1
    # Released: the next one gets it at once.
    with exclusive_lock(tmp_path, command="restore", wait_seconds=0):
        pass


def test_the_waiter_gets_the_lock_when_the_holder_finishes(tmp_path: Path) -> None:
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with exclusive_lock(tmp_path, command="apply"):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(10)
    got_it: list[bool] = []

    def waited(_message: str) -> None:
        release.set()

    with exclusive_lock(tmp_path, command="apply", wait_seconds=30, on_wait=waited):
        got_it.append(True)
    holder.join(10)
    assert got_it == [True]


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path\n"
        "from reconciler.files.lock import exclusive_lock\n"
        "with exclusive_lock(Path(sys.argv[1]), command='apply'):\n"
        "    print('held', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        with (
            pytest.raises(LockHeldError),
            exclusive_lock(tmp_path, command="apply", wait_seconds=0),
        ):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    with exclusive_lock(tmp_path, command="apply", wait_seconds=5):
        pass


def test_apply_refuses_while_another_holds_the_lock(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    declare(project, {"phone": "15105557000"})
    with exclusive_lock(project, command="apply"):
        assert main(["apply", "--auto-approve", "--lock-timeout", "0.2"]) == 1
    err = capsys.readouterr().err
    assert "holds .reconciler/lock" in err
    assert "--lock-timeout" in err
    assert sandbox.stats()["requests"] == 0
    assert main(["apply", "--auto-approve"]) == 0


def test_the_lock_works_where_fcntl_does_not_exist(tmp_path: Path) -> None:
    """Windows has no ``fcntl``: importing the lock, and holding it, must not need it."""
    code = (
        "import sys; sys.modules['fcntl'] = None\n"
        "from pathlib import Path\n"
        "from reconciler.files.lock import exclusive_lock\n"
        "from reconciler.core.errors import LockHeldError\n"
        "with exclusive_lock(Path(sys.argv[1]), command='apply'):\n"
        "    try:\n"
        "        with exclusive_lock(Path(sys.argv[1]), command='apply', wait_seconds=0):\n"
        "            print('both held')\n"
        "    except LockHeldError:\n"
        "        print('second refused')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        check=False,
        timeout=60,
    )
    # (filelock warns on stderr that only its soft lock is available there.)
    assert (result.returncode, result.stdout) == (0, "second refused\n"), result.stderr
