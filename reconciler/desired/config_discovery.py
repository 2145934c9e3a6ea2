"""Which ``reconciler.yaml`` a run uses without ``--config``, and where its state lives.

The file is looked for in the working directory, then in each parent up to the root of the
git repository (the directory holding ``.git``), so a command run from ``contacts/sales/``
finds the repository's configuration instead of silently using the defaults. Without a git
repository the search ends at the filesystem root.

``.reconciler/`` (the journal, the lock, the caches) sits beside the configuration file a run
uses, else in the working directory: one repository, one state, wherever it is run from."""

from __future__ import annotations

from pathlib import Path

DEFAULT_CONFIG_FILE = "reconciler.yaml"


def find_config(cwd: Path) -> Path | None:
    """The nearest ``reconciler.yaml`` from ``cwd`` up to the git root, as a path relative to
    ``cwd`` (``reconciler.yaml``, ``../reconciler.yaml``, …), or ``None``."""
    upward = Path()
    for directory in (cwd.absolute(), *cwd.absolute().parents):
        if (directory / DEFAULT_CONFIG_FILE).is_file():
            return upward / DEFAULT_CONFIG_FILE
        # A worktree or submodule has a .git file, a clone a .git directory.
        if (directory / ".git").exists():
            return None
        upward /= ".."
    return None


def config_path(config_file: Path | None, cwd: Path) -> Path | None:
    """The configuration file a run uses: ``--config`` (relative to ``cwd``), else the one
    found from ``cwd``; ``None`` when there is none (the defaults apply)."""
    chosen = config_file if config_file is not None else find_config(cwd)
    if chosen is None:
        return None
    return chosen if chosen.is_absolute() else cwd / chosen


def state_root(config_file: Path | None, cwd: Path) -> Path:
    """The directory holding ``.reconciler/``: the configuration file's, else ``cwd``."""
    path = config_path(config_file, cwd)
    return cwd if path is None else path.parent
