"""The sandbox stands apart from the client it tests: it shares no normalisation, no wire
format and no executor with it, so an end-to-end test cannot agree with itself. It may use
only the error types, the hostile-input JSON decoder and the YAML gate for seed files."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import reconciler.sandbox

SANDBOX_DIR = Path(reconciler.sandbox.__file__).parent
ALLOWED_OUTSIDE_SANDBOX = frozenset(
    {
        "reconciler",
        # The version the package was built with (generated; holds nothing but the version).
        "reconciler._version",
        "reconciler.core",
        "reconciler.core.errors",
        "reconciler.files",
        "reconciler.files.untrusted_json",
        "reconciler.desired",
        "reconciler.desired.yaml_safety",
    }
)


def _is_allowed(module: str) -> bool:
    in_sandbox = module == "reconciler.sandbox" or module.startswith("reconciler.sandbox.")
    return in_sandbox or module in ALLOWED_OUTSIDE_SANDBOX


def _is_package(module: str) -> bool:
    spec = importlib.util.find_spec(module)
    return spec is not None and spec.submodule_search_locations is not None


def _imported_modules(source: Path) -> set[str]:
    """Every module of the package that an import in ``source`` names, at any depth."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module is not None, f"{source.name}: relative import"
            if _is_package(node.module):  # `from reconciler.core import normalize`
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return {name for name in found if name.split(".")[0] == "reconciler"}


def test_sandbox_modules_import_only_the_allowed_parts_of_the_package() -> None:
    modules = sorted(SANDBOX_DIR.glob("*.py"))
    assert len(modules) > 5
    refused = [
        f"{source.name} imports {name}"
        for source in modules
        for name in sorted(_imported_modules(source))
        if not _is_allowed(name)
    ]
    assert refused == []


def test_importing_the_sandbox_loads_nothing_else_of_the_package() -> None:
    """Checked in a fresh interpreter, so indirect imports count too."""
    names = [f"reconciler.sandbox.{source.stem}" for source in sorted(SANDBOX_DIR.glob("*.py"))]
    program = (
        "import importlib, json, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('reconciler'))))\n"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", program], check=True, capture_output=True, text=True
        ).stdout
    )
    assert [name for name in loaded if not _is_allowed(name)] == []
