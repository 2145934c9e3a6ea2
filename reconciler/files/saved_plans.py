"""Saved plan files (``plan --out FILE``): written atomically and privately, read back
through the one JSON decoder, and the provenance of a plan made here and now (the one
``git`` call). What a saved plan means, and how it is proven, is ``core.proof``."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.core.errors import SavedPlanError
from reconciler.core.model import DesiredContact
from reconciler.core.ownership import Marker
from reconciler.core.plan import Plan
from reconciler.core.proof import (
    Provenance,
    SavedPlan,
    desired_state_digest,
    parse_saved_plan,
    parse_saved_plans,
    saved_plan_document,
    saved_plans_document,
)
from reconciler.core.timestamps import utc_seconds_text
from reconciler.files.atomic import write_atomically
from reconciler.files.untrusted_json import UnreadableJson, decode_json


def current_git_commit(directory: Path | None = None) -> str | None:
    """The commit checked out in ``directory``, or ``None`` outside a repository or without
    git: a missing commit never stops a plan from being saved."""
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = completed.stdout.strip()
    if completed.returncode != 0 or not commit or any(c not in "0123456789abcdef" for c in commit):
        return None
    return commit


def current_provenance(
    desired: Sequence[DesiredContact],
    api_url: str,
    marker: Marker,
    repository: Path,
    account: str | None = None,
) -> Provenance:
    """What a plan made now, here, is made from (for ``account`` of several)."""
    return Provenance(
        desired_digest=desired_state_digest(desired),
        git_commit=current_git_commit(repository),
        api_url=api_url.rstrip("/"),
        marker_field=marker.field_title,
        owner=marker.owner,
        account=account,
    )


def write_saved_plan(
    path: Path, plan: Plan, provenance: Provenance, *, now: datetime | None = None
) -> SavedPlan:
    """Write the plan to ``path`` atomically, readable only by its owner (it holds contact
    data), and return what was saved."""
    created_at = utc_seconds_text(now or datetime.now(UTC))
    document = saved_plan_document(plan, provenance, created_at=created_at)
    return parse_saved_plan(decode_json(_write(path, document)), origin=str(path))


def write_saved_plans(
    path: Path, plans: Sequence[tuple[str, Plan, Provenance]], *, now: datetime | None = None
) -> dict[str | None, SavedPlan]:
    """Write the plans of several accounts to ``path`` as one file, as ``write_saved_plan``
    writes one, and return what was saved by account."""
    created_at = utc_seconds_text(now or datetime.now(UTC))
    document = saved_plans_document(plans, created_at=created_at)
    return parse_saved_plans(decode_json(_write(path, document)), origin=str(path))


def _write(path: Path, document: dict[str, Any]) -> str:
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    try:
        write_atomically(path, text, private=True, durable=True)
    except OSError as error:
        raise SavedPlanError(
            f"cannot write the plan to {path}: {error.strerror or error}. "
            "Check the directory exists and is writable."
        ) from None
    return text


def read_saved_plan(path: Path) -> SavedPlan:
    return parse_saved_plan(_read(path), origin=str(path))


def read_saved_plans(path: Path) -> dict[str | None, SavedPlan]:
    """The plan of each account a saved plan file holds (``None``: the one account)."""
    return parse_saved_plans(_read(path), origin=str(path))


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SavedPlanError(
            f"no saved plan at {path}. Make one with `reconciler plan --out {path}`."
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise SavedPlanError(f"cannot read the saved plan {path}: {error}.") from None
    try:
        document = decode_json(text)
    except UnreadableJson as error:
        where = f"line {error.line}" if error.line is not None else error.reason
        raise SavedPlanError(
            f"{path} is not valid JSON ({where}), so not a saved plan. "
            f"Run `reconciler plan --out {path}` again."
        ) from None
    return document
