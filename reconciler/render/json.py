"""The JSON plan of the contract (ARCHITECTURE.md), with a stable key and change order."""

from __future__ import annotations

import json

from reconciler.core.plan import Plan


def render_json(plan: Plan) -> str:
    document = plan.to_json_dict()
    if plan.live_read is not None:
        # Beside the plan, not in it: a saved plan's proof covers ``to_json_dict`` only.
        document["live"] = plan.live_read.to_json_dict()
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
