"""How paths appear in messages, plans and reports."""

from __future__ import annotations

from pathlib import Path


def display_path(path: Path, cwd: Path) -> str:
    """``path`` relative to ``cwd`` when it is inside it, as given otherwise; always with
    forward slashes, as it appears in messages and plans."""
    try:
        return path.absolute().relative_to(cwd.absolute()).as_posix()
    except ValueError:
        return path.as_posix()
