"""A contacts repository and the sandbox account it manages, as the command tests see them:
the repository's configuration, contacts declared in it, contacts seeded as already owned,
and what the account and the journal hold after a run."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.live import snapshot
from tests.sandbox_handle import SandboxHandle

OWNER = "team-a"
CONFIG = f"ownership:\n  owner: {OWNER}\nprune:\n  max_deletes: 25\n  max_delete_percent: 50\n"
# Every route that changes the account; a refused guard must reach none of them.
WRITE_ROUTES = frozenset(
    {
        "POST /v2/contacts",
        "DELETE /v2/contacts",
        "POST /v1/contacts/fields",
        "POST /v1/batch/contacts",
    }
)


def contacts_yaml(*contacts: dict[str, Any]) -> str:
    """A contacts file declaring ``contacts`` (JSON is YAML)."""
    return json.dumps({"contacts": list(contacts)}, indent=2) + "\n"


def declare(project: Path, *contacts: dict[str, Any], name: str = "team.yaml") -> None:
    """Write ``contacts`` as the repository's contacts/``name``."""
    (project / "contacts" / name).write_text(contacts_yaml(*contacts), encoding="utf-8")


def owned(sandbox: SandboxHandle, *phones: str) -> list[dict[str, Any]]:
    """Seed contacts that carry this repository's ownership marker."""
    return sandbox.seed(
        [
            {"phone": phone, "first": f"Owned {phone[-2:]}", "custom": {"Managed by": OWNER}}
            for phone in phones
        ]
    )


def by_phone(sandbox: SandboxHandle) -> dict[str, dict[str, Any]]:
    """Every contact in the account, by phone."""
    return {record["phone"]: record for record in sandbox.contacts()}


def live_phones(sandbox: SandboxHandle) -> set[str]:
    """The phones of every contact in the account."""
    return {record["phone"] for record in sandbox.contacts()}


def writes(sandbox: SandboxHandle) -> dict[str, int]:
    """The write requests the sandbox received, by route."""
    by_route: dict[str, int] = sandbox.stats()["by_route"]
    return {route: count for route, count in by_route.items() if route in WRITE_ROUTES}


def write_count(sandbox: SandboxHandle) -> int:
    """How many write requests the sandbox received, whatever their route."""
    return sum(writes(sandbox).values())


def journal_lines(project: Path) -> list[dict[str, Any]]:
    """The repository's apply journal, one dict a line; empty before the first apply."""
    path = project / ".reconciler" / "journal.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# The live snapshot's columns, in the order the file holds them.
SNAPSHOT_COLUMNS = snapshot.COLUMNS


def forge_snapshot(path: Path, edit: Callable[[dict[str, list[Any]]], None]) -> None:
    """Rewrite the live snapshot at ``path`` as someone with write access to the cache could:
    ``edit`` changes its columns (by name) in place, and the count and checksum are made to
    match, so only the tool's other proofs can tell."""
    header_line, *lines = path.read_text(encoding="utf-8").splitlines()
    columns = dict(zip(SNAPSHOT_COLUMNS, (json.loads(line) for line in lines), strict=False))
    # The custom column holds each distinct set of values once, then each contact's index.
    shared, rows = columns["custom"]
    columns["custom"] = [shared[row] for row in rows]
    edit(columns)
    header = json.loads(header_line)
    header["contacts"] = len(columns["id"])
    columns["custom"] = [columns["custom"], list(range(len(columns["custom"])))]
    body = "".join(json.dumps(columns[name]) + "\n" for name in SNAPSHOT_COLUMNS)
    trailer = json.dumps({"sha256": hashlib.sha256(body.encode()).hexdigest()})
    path.write_text(f"{json.dumps(header)}\n{body}{trailer}\n", encoding="utf-8")
