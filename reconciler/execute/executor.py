"""The executor that ``apply`` and ``restore`` write through: custom fields first, then
creates and updates, then (apply --prune only) deletes, all journaled by one recorder."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from reconciler.core.diff import DiffSettings
from reconciler.core.model import CustomField, DesiredContact
from reconciler.core.ownership import Marker
from reconciler.core.plan import Create, Delete, Update
from reconciler.execute.fields import ensure_fields
from reconciler.execute.journal import JOURNAL_FILE, Journal
from reconciler.execute.prune import Pruner
from reconciler.execute.recorder import Recorder, Tally
from reconciler.execute.upsert import Upserter
from reconciler.files.saved_plans import current_git_commit
from reconciler.heymarket import HeymarketClient
from reconciler.report.console import Console, GracefulInterrupt


class Executor:
    """Writes changes through the client, journals each outcome, and resolves the unknown
    ones. ``desired`` (by phone) and ``settings`` are what a re-diff needs; ``fields`` are
    the account's custom-field definitions, kept current as fields are created."""

    def __init__(
        self,
        client: HeymarketClient,
        console: Console,
        journal: Journal,
        interrupt: GracefulInterrupt,
        *,
        command: str,
        started_at: datetime,
        git_commit: str | None,
        fields: Sequence[CustomField],
        desired: Mapping[str, DesiredContact],
        settings: DiffSettings,
        cwd: Path,
        account: str | None = None,
    ) -> None:
        self.client = client
        self.console = console
        self.fields = list(fields)
        self.recorder = Recorder(
            journal,
            interrupt,
            command=command,
            started_at=started_at,
            git_commit=git_commit,
            account=account,
        )
        self.upserter = Upserter(client, console, self.recorder, desired=desired, settings=settings)
        self.pruner = Pruner(
            client, console, self.recorder, desired=desired, started_at=started_at, cwd=cwd
        )

    @property
    def tally(self) -> Tally:
        return self.recorder.tally

    @property
    def upserted_phones(self) -> set[str]:
        """Phones this run creates or updates: with the declared ones, never deleted."""
        return self.upserter.upserted_phones

    def ensure_fields(self, changes: Sequence[Create | Update], marker: Marker) -> None:
        """Create every custom field the changes name that the account lacks (the marker's
        included)."""
        self.fields = ensure_fields(self.client, self.console, self.fields, changes, marker)

    def write(self, changes: Sequence[Create | Update], marker: Marker) -> None:
        """Send the creates and updates; settle unknown outcomes by re-reading."""
        self.upserter.write(changes, marker, self.fields)

    def prune(self, deletes: Sequence[Delete], backup_dir: Path, marker: Marker) -> None:
        """Delete the plan's contacts, each re-read, backed up, and verified gone."""
        self.pruner.prune(deletes, backup_dir, marker, self.fields, self.upserted_phones)


@contextmanager
def executing(
    client: HeymarketClient,
    console: Console,
    *,
    command: str,
    started_at: datetime,
    fields: Sequence[CustomField],
    desired: Mapping[str, DesiredContact],
    settings: DiffSettings,
    cwd: Path,
    account: str | None = None,
    journal_file: Path | None = None,
) -> Iterator[Executor]:
    """An executor with its journal (``journal_file``, default ``.reconciler/journal.jsonl``
    in ``cwd``) open and Ctrl-C deferred to the end of the batch in flight; the progress
    line is ended however the block ends."""
    with Journal(journal_file if journal_file is not None else cwd / JOURNAL_FILE) as journal:
        interrupt = GracefulInterrupt(console)
        executor = Executor(
            client,
            console,
            journal,
            interrupt,
            command=command,
            started_at=started_at,
            git_commit=current_git_commit(cwd),
            fields=fields,
            desired=desired,
            settings=settings,
            cwd=cwd,
            account=account,
        )
        try:
            with interrupt.installed():
                yield executor
        finally:
            console.end_progress()
