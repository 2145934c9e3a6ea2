"""The journal is append-only JSON Lines, private, and keeps earlier runs' lines."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from reconciler.core.rewrites import Rewrite
from reconciler.execute.journal import Journal, JournalEntry, seen_rewrites


def entry(phone: str, result: str = "applied") -> JournalEntry:
    return JournalEntry(
        time="2026-11-26T10:15:01Z",
        run="2026-11-26T10:15:00Z",
        command="apply",
        action="delete",
        phone=phone,
        contact_id=f"uuid-{phone}",
        result="applied" if result == "applied" else "failed",
        reason=None if result == "applied" else "still present",
        git_commit="0123abcd",
    )


def test_lines_are_appended_across_runs(tmp_path: Path) -> None:
    path = tmp_path / ".reconciler" / "journal.jsonl"
    with Journal(path) as journal:
        journal.append([entry("15105550001"), entry("15105550002", "failed")])
    with Journal(path) as journal:
        journal.append([])
        journal.append([entry("15105550003")])
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["phone"] for line in lines] == ["15105550001", "15105550002", "15105550003"]
    assert lines[1] == {
        "time": "2026-11-26T10:15:01Z",
        "run": "2026-11-26T10:15:00Z",
        "command": "apply",
        "action": "delete",
        "phone": "15105550002",
        "contact_id": "uuid-15105550002",
        "result": "failed",
        "reason": "still present",
        "git_commit": "0123abcd",
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_each_batch_is_on_disk_before_the_next(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    with Journal(path) as journal:
        journal.append([entry("15105550001")])
        # Another reader (a person tailing it, or the next run after a crash) sees it now.
        assert len(path.read_text().splitlines()) == 1


def test_plan_reads_back_the_values_the_account_rewrote(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    assert seen_rewrites(path) == {}
    rewrite = Rewrite("15105550001", "tags", (" VIP",), ("VIP",))
    line = JournalEntry(
        "t", "r", "apply", "update", "15105550001", "u1", "inconsistent", "why", None, rewrite
    ).to_json_line()
    plain = JournalEntry("t", "r", "apply", "update", "15105550002", "u2", "applied", None, None)
    assert "sent" not in plain.to_json_line()  # every other line as it always was
    path.write_text(f"{plain.to_json_line()}\n{line}\n" + '{"result": "inconsistent', "utf-8")
    assert seen_rewrites(path) == {("15105550001", "tags"): [" VIP"]}


def test_with_several_accounts_a_line_names_its_account_and_rewrites_are_per_account(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.jsonl"
    rewrite = Rewrite("15105550001", "first", "ana", "Ana")
    lines = [
        JournalEntry(
            "t",
            "r",
            "apply",
            "update",
            "15105550001",
            "u1",
            "inconsistent",
            "why",
            None,
            rewrite,
            account=account,
        ).to_json_line()
        for account in ("uk", None)
    ]
    path.write_text("".join(line + "\n" for line in lines), "utf-8")
    assert json.loads(lines[0])["account"] == "uk"
    assert "account" not in json.loads(lines[1])
    assert seen_rewrites(path, "uk") == {("15105550001", "first"): "ana"}
    assert seen_rewrites(path, "us") == {}
    assert seen_rewrites(path) == {("15105550001", "first"): "ana"}
