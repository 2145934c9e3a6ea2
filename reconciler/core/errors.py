"""The exception tree. Every expected failure is a ``ReconcilerError``; the CLI prints its
message on one line and exits with its ``exit_code``.

    ReconcilerError                  exit 1
    ├── DesiredStateError            the YAML contacts (or the config) are invalid
    │   ├── ConfigError              reconciler.yaml is invalid
    │   └── InputNotFoundError       no contacts directory / config file where named
    ├── CredentialsError             no usable credentials in the environment
    ├── ApiError                     Heymarket answered with an error (status, request id)
    │   ├── AuthenticationError      401 / 403
    │   ├── RateLimitedError         429 that outlasted the retry budget
    │   ├── ServerError              5xx that outlasted the retry budget
    │   └── BadResponseError         a body that is not what the API documents
    ├── TransportError               could not reach the server (connection, timeout)
    ├── AmbiguousWriteError          a write whose outcome is unknown (timeout/5xx after send)
    ├── SavedPlanError               a saved plan file is unreadable, foreign or too new
    ├── SandboxError                 the sandbox server could not start (port, --db, --seed)
    ├── ScaffoldError                init could not write the scaffold (existing files, I/O)
    ├── ExportError                  export could not write (non-empty directory, I/O)
    ├── FormatError                  fmt could not rewrite a contacts file (I/O)
    ├── LockHeldError                another apply/restore holds .reconciler/lock
    ├── BackupError                  a prune backup cannot be written or read
    ├── ApplyInterruptedError        exit 130: Ctrl-C, stopped cleanly between batches
    └── GuardRefusedError            exit 3: a safety guard refused
        ├── PruneCapExceededError
        ├── StalePlanError
        ├── PruneMismatchError
        └── ApprovalRequiredError
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_REFUSED = 3
EXIT_INTERRUPTED = 130

# Every character str.splitlines() breaks at. A message quotes values from files and servers;
# one of these inside would split it, and terminals, `file:line:col:` parsers and workflow
# annotations all read one message per line.
_LINE_BREAKS = {
    ord(character): character.encode("unicode_escape").decode("ascii")
    for character in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
}


def one_line(text: str) -> str:
    """``text`` with every line break written as its escape (``\\n``), so it stays one line."""
    return text.translate(_LINE_BREAKS)


class ReconcilerError(Exception):
    """Root of every expected error. ``str(error)`` is a one-line message for the user."""

    exit_code: int = EXIT_ERROR


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in a desired-state or config file, located to line and column."""

    path: str
    line: int
    column: int
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", one_line(self.path))
        object.__setattr__(self, "message", one_line(self.message))

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


class DesiredStateError(ReconcilerError):
    """The desired state could not be loaded; carries every problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem], *, warnings: Sequence[str] = ()) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        # Found beside the problems, already worded as ``FILE:LINE:COL: warning: ...`` lines.
        self.warnings: tuple[str, ...] = tuple(warnings)
        count = len(self.problems)
        first = str(self.problems[0]) if self.problems else "no details"
        more = f" (and {count - 1} more)" if count > 1 else ""
        super().__init__(f"{first}{more}")


class ConfigError(DesiredStateError):
    """reconciler.yaml (or --config FILE) is invalid."""


class InputNotFoundError(DesiredStateError):
    """The contacts directory (or a config file named by --config) does not exist or holds no
    contacts files: one message, no per-file problems."""

    def __init__(self, message: str) -> None:
        self.problems = ()
        self.warnings = ()
        ReconcilerError.__init__(self, message)


class CredentialsError(ReconcilerError):
    """No usable Heymarket credentials in the environment."""


class ApiError(ReconcilerError):
    """Heymarket answered with an error. Never carries a credential."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
    ) -> None:
        self.status = status
        self.request_id = request_id
        self.code = code
        message = one_line(message)
        self.server_message = message
        details = [
            f"HTTP {status}" if status is not None else "",
            f"request id {request_id}" if request_id else "",
        ]
        detail = ", ".join(d for d in details if d)
        super().__init__(f"{message} ({detail})" if detail else message)


class AuthenticationError(ApiError):
    """401 or 403."""


class RateLimitedError(ApiError):
    """429 for longer than the retry budget allows."""


class ServerError(ApiError):
    """5xx for longer than the retry budget allows."""


class BadResponseError(ApiError):
    """A response body that does not have the documented shape."""


class TransportError(ReconcilerError):
    """The server could not be reached (connection refused, DNS, timeout before sending)."""


class AmbiguousWriteError(ReconcilerError):
    """A write was sent but its outcome is unknown (timeout or 5xx after the body was sent).

    The caller must re-read the affected contacts before retrying: a blind retry could create
    a duplicate."""


class SavedPlanError(ReconcilerError):
    """A saved plan file is corrupt, not a reconciler plan, or from a newer format."""


class SandboxError(ReconcilerError):
    """``reconciler sandbox`` could not start: port in use, unreadable --db or --seed file."""


class ScaffoldError(ReconcilerError):
    """``reconciler init`` could not write the scaffold: files exist already, or I/O failed."""


class ExportError(ReconcilerError):
    """``reconciler export`` could not write: the directory is not empty, or I/O failed."""


class TargetError(ReconcilerError):
    """A ``--target`` that names no phone and no contacts file, or is used where it cannot
    be (with a saved plan, which carries its own)."""


class FormatError(ReconcilerError):
    """``reconciler fmt`` could not rewrite a contacts file (read-only file or directory)."""


class GuardRefusedError(ReconcilerError):
    """A safety guard refused the operation; nothing was written."""

    exit_code = EXIT_REFUSED


class PruneCapExceededError(GuardRefusedError):
    """More deletes than max_deletes or max_delete_percent allow."""


class StalePlanError(GuardRefusedError):
    """A saved plan no longer matches the live account or the desired state."""


class ApprovalRequiredError(GuardRefusedError):
    """Apply needs confirmation and none was given (no terminal, no --auto-approve)."""


class PruneMismatchError(GuardRefusedError):
    """A saved plan made with --prune applied without it, or the other way round."""


class LockHeldError(ReconcilerError):
    """Another apply or restore in this directory holds the lock for longer than we wait."""


class BackupError(ReconcilerError):
    """A prune backup could not be written (nothing is deleted then), or a backup file to
    restore is unreadable or corrupt (nothing is written then)."""


class ApplyInterruptedError(ReconcilerError):
    """Ctrl-C: the run stopped after the batch in flight, with the journal written."""

    exit_code = EXIT_INTERRUPTED
