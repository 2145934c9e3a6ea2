"""What a command run takes from outside its flags: the process environment, the working
directory, the one console it talks through, the way it reaches the API and the clock.

Every command is ``run(request, env) -> int``; the CLI builds the standard environment, and
tests build one with a recording console, a client hook or a fixed clock."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reconciler.commands.context import ConnectClient, connect_configured
from reconciler.report.console import Console, OutputFilter


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Environment:
    """Everything a run reads or writes besides its request and the files it is pointed at.
    All output goes through ``console`` (and so through its output filter)."""

    environ: Mapping[str, str]
    cwd: Path
    console: Console
    connect_client: ConnectClient = connect_configured
    now: Callable[[], datetime] = utc_now

    @classmethod
    def standard(cls, screen: OutputFilter) -> Environment:
        """This process: its environment variables, working directory and terminal, with
        ``screen`` shared with the error handler so an error is printed as filtered as the
        rest."""
        return cls(environ=os.environ, cwd=Path.cwd(), console=Console.standard(screen))
