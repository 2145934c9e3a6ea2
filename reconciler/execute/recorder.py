"""The bookkeeping of one run that writes: a journal line for every outcome, the tally the
summary prints, and the stop after the batch in flight when Ctrl-C was pressed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from reconciler.core.errors import ApplyInterruptedError
from reconciler.core.masking import mask_phone
from reconciler.core.rewrites import Rewrite
from reconciler.core.timestamps import utc_seconds_text
from reconciler.execute.journal import Journal, JournalEntry, Result
from reconciler.report.console import GracefulInterrupt


@dataclass(frozen=True, slots=True)
class Failure:
    """A change that did not happen, or whose outcome is still unknown."""

    action: str
    phone: str
    source: str | None
    reason: str
    # True when the change may or may not have happened (still unknown after re-reads).
    unknown: bool = False

    def line(self, *, mask: bool) -> str:
        phone = mask_phone(self.phone) if mask else self.phone
        where = f" ({self.source})" if self.source else ""
        return f"{self.action} {phone}{where}: {self.reason}"


@dataclass
class Tally:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    backup: Path | None = None

    def counts(self) -> str:
        return (
            f"{self.created} created, {self.updated} updated, {self.deleted} deleted, "
            f"{len(self.failures)} failed"
        )

    def summary(self, verb: str = "Apply", state: str = "complete") -> str:
        return f"{verb} {state}: {self.counts()}."


class Recorder:
    """Journals the outcomes of one run (``command``, started at ``started_at``) and
    tallies them."""

    def __init__(
        self,
        journal: Journal,
        interrupt: GracefulInterrupt,
        *,
        command: str,
        started_at: datetime,
        git_commit: str | None,
        account: str | None = None,
    ) -> None:
        self.journal = journal
        self.account = account
        self.interrupt = interrupt
        self.command = command
        self.run = utc_seconds_text(started_at)
        self.git_commit = git_commit
        self.tally = Tally()

    def entry(
        self,
        action: str,
        phone: str,
        contact_id: str | None,
        result: Result,
        reason: str | None = None,
        *,
        rewrite: Rewrite | None = None,
    ) -> JournalEntry:
        return JournalEntry(
            time=utc_seconds_text(datetime.now(UTC)),
            run=self.run,
            command=self.command,
            action=action,
            phone=phone,
            contact_id=contact_id,
            result=result,
            reason=reason,
            git_commit=self.git_commit,
            rewrite=rewrite,
            account=self.account,
        )

    def journal_lines(self, entries: Sequence[JournalEntry]) -> None:
        self.journal.append(entries)

    def fail(
        self, action: str, phone: str, source: str | None, reason: str, *, unknown: bool = False
    ) -> None:
        self.tally.failures.append(Failure(action, phone, source, reason, unknown))

    def count(self, action: str) -> None:
        if action == "create":
            self.tally.created += 1
        elif action == "update":
            self.tally.updated += 1

    def stop_if_interrupted(self) -> None:
        if self.interrupt.requested:
            raise ApplyInterruptedError(
                f"Interrupted: stopped after the batch in flight, {self.tally.counts()} so far "
                f"(journal: {self.journal.path}). Run {self.command} again to finish."
            )
