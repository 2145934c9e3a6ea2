"""The JSON plan of the contract (ARCHITECTURE.md), with a stable key and change order."""

from __future__ import annotations

import json

from reconciler.core.plan import Plan


def render_json(plan: Plan) -> str:
    return json.dumps(plan.to_json_dict(), indent=2, ensure_ascii=False) + "\n"
