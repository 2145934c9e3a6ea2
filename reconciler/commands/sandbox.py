"""``reconciler sandbox``: a local Heymarket-compatible API server until Ctrl-C or SIGTERM.

It prints where it listens and the credentials it made up (never those it was given), as
an ``export`` line to paste."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, cast

from reconciler.commands.environment import Environment
from reconciler.report.console import ConsoleStream


@dataclass(frozen=True, slots=True)
class SandboxRequest:
    """The flags of one ``sandbox`` run."""

    host: str = "127.0.0.1"
    port: int = 8080
    db: Path | None = None
    seed_file: Path | None = None
    rate_limit: int = 0
    latency_ms: int = 0
    fail_rate: float = 0.0


def run(request: SandboxRequest, env: Environment) -> int:
    # Imported here: the server is only needed by this command.
    from reconciler.sandbox.faults import FaultSettings
    from reconciler.sandbox.server import run_sandbox

    return run_sandbox(
        host=request.host,
        port=request.port,
        db=request.db,
        seed_file=request.seed_file,
        initial_faults=FaultSettings(
            rate_limit=request.rate_limit,
            latency_ms=request.latency_ms,
            fail_rate=request.fail_rate,
        ),
        environ=env.environ,
        # print() needs only write and flush, which a text stream of the console has.
        out=cast(TextIO, ConsoleStream(env.console)),
    )
