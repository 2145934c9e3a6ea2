"""Golden files: expected output kept in tests/golden/ and compared byte for byte.

After an intended change of the output, regenerate them with
``UPDATE_GOLDEN=1 .venv/bin/pytest tests/render tests/commands/test_plan.py`` and review the
diff before committing it."""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"


def assert_golden(name: str, actual: str) -> None:
    """``actual`` is what tests/golden/``name`` holds (or becomes it under UPDATE_GOLDEN=1)."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing; create it with UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"
