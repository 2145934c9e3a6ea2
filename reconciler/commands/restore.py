"""``reconciler restore BACKUP_FILE``: re-create the contacts of a prune backup.

Each contact comes back with its standard fields, its custom fields by title (created in the
account when missing), its tags, its opt-out state and the ownership marker of the apply that
deleted it. A phone that exists again is skipped: restore never overwrites a live contact. The
conversation history went with the delete and cannot come back; restore says so.

The whole file is read and checked before any request, so a damaged line writes nothing.
Writes go through the same executor as apply: full batches, a journal line per contact,
unknown outcomes settled by a re-read so nothing is created twice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from reconciler.commands.accounts import backed_up_in, the_one_account
from reconciler.commands.apply import report_failures
from reconciler.commands.context import arm_output_filter, locked, open_account_settings
from reconciler.commands.environment import Environment
from reconciler.commands.run_result import Publish, for_document, result_document
from reconciler.core.diff import DiffSettings, diff
from reconciler.core.errors import EXIT_ERROR, EXIT_OK, BackupError
from reconciler.core.masking import contact_names, mask_phone
from reconciler.core.model import STANDARD_FIELDS, DesiredContact, SourceLocation, StandardValue
from reconciler.core.ownership import Marker
from reconciler.core.plan import Create
from reconciler.desired.config_discovery import state_root
from reconciler.execute import Tally
from reconciler.execute.backup import BackupRecord, read_backup
from reconciler.execute.executor import executing
from reconciler.execute.journal import JOURNAL_FILE
from reconciler.files.lock import DEFAULT_WAIT_SECONDS
from reconciler.render import RenderOptions, render_plan
from reconciler.report.console import confirm

HISTORY_NOTICE = (
    "Conversation history cannot be restored: Heymarket deleted it with the contacts. "
    "Restore brings back the contacts and their fields only."
)


@dataclass(frozen=True, slots=True)
class RestoreRequest:
    backup_file: Path
    config_file: Path | None = None
    api_url: str | None = None
    auto_approve: bool = False
    mask_pii: bool = False
    insecure: bool = False
    lock_timeout: float = DEFAULT_WAIT_SECONDS
    # "json": the plan and progress on stderr, one result document on stdout.
    output_format: str = "text"
    # --account: the one account to restore into when several are configured.
    accounts: tuple[str, ...] = ()


def _declared(record: BackupRecord, shown_path: str) -> DesiredContact:
    """A backup record as a declaration, so the diff builds the create exactly as apply
    would (and can re-check it after an unknown outcome)."""
    contact = record.contact
    fields: dict[str, StandardValue] = {
        name: contact.standard_value(name)
        for name in STANDARD_FIELDS
        if contact.standard_value(name) is not None
    }
    custom = {
        title: value
        for title, value in record.custom_by_title.items()
        if title != record.marker.field_title
    }
    return DesiredContact(
        phone=contact.phone,
        fields=fields,
        custom=custom,
        source=SourceLocation(shown_path, record.line),
        tags=contact.tags,
    )


def _marker_of(records: Sequence[BackupRecord], path: Path) -> Marker:
    markers = {record.marker for record in records}
    if len(markers) > 1:
        raise BackupError(
            f"{path} mixes contacts of several owners ({', '.join(m.owner for m in markers)}); "
            "a prune backup holds one apply's contacts. Split the file by owner."
        )
    return next(iter(markers))


def run(request: RestoreRequest, env: Environment) -> int:
    """One ``restore`` run; returns the exit code (refusals and errors raise)."""
    document, env = for_document(env, request.output_format)
    with locked(
        env, command="restore", wait_seconds=request.lock_timeout, config_file=request.config_file
    ):
        return _restore_locked(request, env, env.now(), document)


def _restore_locked(
    request: RestoreRequest,
    env: Environment,
    started_at: datetime,
    document: Publish | None,
) -> int:
    console, cwd = env.console, env.cwd
    mask = request.mask_pii
    # Beside the configuration, like the lock (``config_discovery``).
    journal = state_root(request.config_file, cwd) / JOURNAL_FILE

    def publish(tally: Tally, skipped: int) -> None:
        if document is not None:
            document(
                result_document(
                    "restore",
                    tally,
                    mask=mask,
                    cwd=cwd,
                    journal=journal,
                    backup=path,
                    skipped=skipped,
                )
            )

    # Armed before the backup is read: what it says of a damaged line is masked too.
    arm_output_filter(env, mask_pii=request.mask_pii)
    path = request.backup_file if request.backup_file.is_absolute() else cwd / request.backup_file
    records = read_backup(path)
    if not records:
        console.out(f"{request.backup_file} holds no contacts; nothing to restore.\n")
        publish(Tally(), 0)
        return EXIT_OK
    marker = _marker_of(records, request.backup_file)
    selected = open_account_settings(
        env,
        config_file=request.config_file,
        api_url=request.api_url,
        mask_pii=request.mask_pii,
        accounts=request.accounts,
    )
    # Without --account, a backup under one account's backup directory goes back there.
    settings = the_one_account(backed_up_in(selected, path) if len(selected) > 1 else selected)
    # Masking asked for by any account of the configuration masks all of it.
    mask = request.mask_pii or settings.config.output.mask_pii or console.screen.masking
    console.screen.add_names(contact_names(record.contact for record in records))
    shown_path = str(request.backup_file)
    declared = {record.contact.phone: _declared(record, shown_path) for record in records}
    diff_settings = DiffSettings(marker_field=marker.field_title, owner=marker.owner)

    with env.connect_client(settings, env.environ, request.insecure) as client:
        existing = {contact.phone for contact in client.search_by_phones(list(declared))}
        for phone in sorted(existing):
            shown = mask_phone(phone) if mask else phone
            console.err(f"Skipped {shown}: a contact with this phone exists again.\n")
        to_restore = [contact for phone, contact in declared.items() if phone not in existing]
        if not to_restore:
            console.out(f"Nothing to restore: all {len(declared)} phones exist again.\n")
            console.out(HISTORY_NOTICE + "\n")
            publish(Tally(), len(existing))
            return EXIT_OK
        fields = client.list_custom_fields()
        plan = diff(to_restore, [], fields, diff_settings, prune=False)
        rendered = render_plan(plan, "text", RenderOptions(mask_pii=mask))
        console.out(rendered.stdout)
        console.out(HISTORY_NOTICE + "\n")
        confirm(console, auto_approve=request.auto_approve, what="restore")

        creates: list[Create] = list(plan.creates)
        with executing(
            client,
            console,
            command="restore",
            started_at=started_at,
            fields=fields,
            desired={contact.phone: contact for contact in to_restore},
            settings=diff_settings,
            cwd=cwd,
            account=settings.account,
            journal_file=journal,
        ) as executor:
            try:
                executor.ensure_fields(creates, marker)
                executor.write(creates, marker)
            finally:
                console.end_progress()
                tally = executor.tally
                report_failures(tally, console, mask=mask)
    console.out(
        f"Restore complete: {tally.created} restored, {len(existing)} skipped (exist again), "
        f"{len(tally.failures)} failed.\n"
    )
    publish(tally, len(existing))
    return EXIT_ERROR if tally.failures else EXIT_OK
