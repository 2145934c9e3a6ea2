"""GitOps for the contacts of a Heymarket account."""

import importlib

DISTRIBUTION = "heymarket-reconciler"


def _built_version() -> str:
    """The version written into the package when it was built or installed (from the git
    tag, pyproject.toml); a source tree that was never installed has none."""
    try:
        written = importlib.import_module("reconciler._version")
    except ImportError:
        return "0.0.0+unknown"
    return str(written.__version__)


__version__ = _built_version()
