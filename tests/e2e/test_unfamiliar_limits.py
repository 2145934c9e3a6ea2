"""The whole cycle against a server whose limits are not our sandbox's defaults: Heymarket
documents neither its largest page nor its largest batch, so nothing may depend on 100."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.cli import main
from tests.account import OWNER
from tests.sandbox_handle import SandboxHandle


@pytest.fixture
def project_files() -> dict[str, str]:
    return {
        "reconciler.yaml": (
            f"ownership:\n  owner: {OWNER}\nprune:\n  max_deletes: 50\n  max_delete_percent: 50\n"
        )
    }


@pytest.mark.parametrize(("page_cap", "bulk_cap"), [(7, 9), (1, 3), (250, 250)])
def test_plan_apply_prune_converge_whatever_the_page_and_batch_limits(
    project: Path, sandbox: SandboxHandle, page_cap: int, bulk_cap: int
) -> None:
    fields = sandbox.create_fields(["Managed by", "Tier"])
    marker, tier = fields["Managed by"], fields["Tier"]
    # 40 owned contacts: 20 stay as they are, 10 change, 10 are no longer declared.
    sandbox.seed(
        [
            {"phone": f"1510555{n:04d}", "first": f"P{n}", "custom": {marker: OWNER, tier: "a"}}
            for n in range(40)
        ]
        + [{"phone": "15105559999", "first": "Typed in the app"}]  # never owned, never pruned
    )
    declared: list[dict[str, Any]] = [
        {"phone": f"1510555{n:04d}", "first": f"P{n}", "custom": {"Tier": "a" if n < 20 else "b"}}
        for n in range(30)
    ] + [{"phone": f"1628555{n:04d}", "first": f"New {n}"} for n in range(25)]
    (project / "contacts" / "team.yaml").write_text(
        json.dumps({"contacts": declared}), encoding="utf-8"
    )
    sandbox.set_faults(page_cap=page_cap, bulk_cap=bulk_cap, latency_ms=2)

    assert main(["apply", "--auto-approve", "--prune"]) == 0
    assert main(["plan", "--prune", "--detailed-exitcode", "--refresh", "full"]) == 0

    live = {record["phone"]: record for record in sandbox.contacts()}
    phones = [str(contact["phone"]) for contact in declared]
    assert sorted(live) == sorted([*phones, "15105559999"])
    assert all(live[f"1510555{n:04d}"]["custom"][tier] == "b" for n in range(20, 30))
    assert all(live[phone]["custom"].get(marker) == OWNER for phone in phones)
    assert marker not in live["15105559999"]["custom"]
