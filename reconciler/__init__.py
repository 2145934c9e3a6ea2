"""GitOps for the contacts of a Heymarket account."""

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "heymarket-reconciler"

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0.0.0+unknown"
