"""GitOps for the contacts of a Heymarket account."""

__version__ = "0.1.0"
