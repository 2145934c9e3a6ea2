"""Executing a plan against the live account: the ``Executor`` (custom fields, creates and
updates, prune), the journal every outcome goes to, and the prune backups.

    from reconciler.execute import Executor
"""

from reconciler.execute.executor import Executor
from reconciler.execute.recorder import Failure, Tally

__all__ = ["Executor", "Failure", "Tally"]
