"""The result document of a run that writes (``apply --format json``, ``restore --format
json``): what it did, counted; each change that failed or whose outcome is unknown; where the
backup and the journal are. With several accounts, one document of their totals and each
account's own result (``accounts_result``). Its form is ``schemas/apply-result.schema.json``
and ``schemas/restore-result.schema.json``; keys are added, never renamed."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler.commands.environment import Environment
from reconciler.core.masking import mask_phone
from reconciler.execute import Failure, Tally
from reconciler.files.paths import display_path

RESULT_FORMAT_VERSION = 1

# Where a run's result document goes.
Publish = Callable[[dict[str, Any]], None]


def for_document(env: Environment, output_format: str) -> tuple[Publish | None, Environment]:
    """With ``--format json``: where the one document goes (stdout), and the environment to
    run in, whose console sends everything else (the plan, progress, prompt) to stderr.
    Otherwise ``None`` and ``env`` unchanged."""
    if output_format != "json":
        return None, env
    out = env.console.out
    return lambda document: out(printed(document)), replace(
        env, console=env.console.for_people_on_stderr()
    )


def printed(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def failure_json(failure: Failure, *, mask: bool) -> dict[str, Any]:
    return {
        "action": failure.action,
        "phone": mask_phone(failure.phone) if mask else failure.phone,
        "source": failure.source,
        "reason": failure.reason,
        "outcome": "unknown" if failure.unknown else "failed",
    }


def result_document(
    command: str,
    tally: Tally,
    *,
    mask: bool,
    cwd: Path,
    journal: Path,
    backup: Path | None,
    **details: Any,
) -> dict[str, Any]:
    """The document: ``failed`` counts the changes that did not happen,
    ``unknown`` those that may have (both are in ``failures``, told apart by ``outcome``)."""
    unknown = sum(1 for failure in tally.failures if failure.unknown)
    document: dict[str, Any] = {
        "format_version": RESULT_FORMAT_VERSION,
        "command": command,
        **details,
        "created": tally.created,
        "updated": tally.updated,
        "deleted": tally.deleted,
        "failed": len(tally.failures) - unknown,
        "unknown": unknown,
        "failures": [failure_json(failure, mask=mask) for failure in tally.failures],
        "notes": list(tally.notes),
        "backup": None if backup is None else display_path(backup, cwd),
        "journal": display_path(journal, cwd),
    }
    return document


# The counts of a result document, which several accounts' document totals.
_COUNTS = ("created", "updated", "deleted", "failed", "unknown")
_PLAN_COUNTS = ("create", "update", "delete", "unchanged")


def account_entry(
    name: str, exit_code: int, result: dict[str, Any] | None, error: str | None = None
) -> dict[str, Any]:
    """One account's entry in a run of several: its own result document (without the
    format and command the whole document states), or the error it failed with before
    writing one."""
    entry: dict[str, Any] = {"name": name, "exit_code": exit_code}
    if result is None:
        entry["error"] = error or "failed"
        return entry
    entry.update((key, value) for key, value in result.items() if key not in _ENVELOPE)
    return entry


_ENVELOPE = frozenset({"format_version", "command"})


def accounts_result(
    command: str,
    entries: Sequence[dict[str, Any]],
    *,
    cwd: Path,
    journal: Path,
    **details: Any,
) -> dict[str, Any]:
    """The one document of a run over several accounts: the counts are the totals of their
    entries, ``failures`` and ``notes`` all of theirs (each failure naming its account, each
    note prefixed with it), ``backup`` null (each account's is in its entry), and
    ``accounts`` each account's entry (``account_entry``)."""
    results = [entry for entry in entries if "error" not in entry]
    document: dict[str, Any] = {
        "format_version": RESULT_FORMAT_VERSION,
        "command": command,
        **details,
        "plan": {key: sum(entry["plan"][key] for entry in results) for key in _PLAN_COUNTS},
        "plan_errors": sum(entry["plan_errors"] for entry in results),
    }
    document.update({key: sum(entry[key] for entry in results) for key in _COUNTS})
    document["failures"] = [
        {**failure, "account": entry["name"]} for entry in results for failure in entry["failures"]
    ]
    document["notes"] = [
        f"account {entry['name']}: {note}" for entry in results for note in entry["notes"]
    ]
    document["backup"] = None
    document["journal"] = display_path(journal, cwd)
    document["accounts"] = list(entries)
    return document
