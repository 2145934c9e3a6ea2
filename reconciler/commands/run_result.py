"""The result document of a run that writes (``apply --format json``, ``restore --format
json``): what it did, counted; each change that failed or whose outcome is unknown; where the
backup and the journal are. Its form is ``schemas/apply-result.schema.json`` and
``schemas/restore-result.schema.json``; keys are added, never renamed."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler.commands.environment import Environment
from reconciler.core.masking import mask_phone
from reconciler.execute import Failure, Tally
from reconciler.files.paths import display_path

RESULT_FORMAT_VERSION = 1

Publish = Callable[[str], None]


def for_document(env: Environment, output_format: str) -> tuple[Publish | None, Environment]:
    """With ``--format json``: where the one document goes (stdout), and the environment to
    run in, whose console sends everything else (the plan, progress, prompt) to stderr.
    Otherwise ``None`` and ``env`` unchanged."""
    if output_format != "json":
        return None, env
    return env.console.out, replace(env, console=env.console.for_people_on_stderr())


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
) -> str:
    """The document, as printed: ``failed`` counts the changes that did not happen,
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
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
