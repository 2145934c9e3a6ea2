"""``reconciler apply``: execute a plan against the live account, carefully.

The order of a run is the contract (DESIGN.md, "Safety model" and "Apply semantics"):

1. take ``.reconciler/lock``; load the configuration and the desired state (an error there:
   exit 1, no request made);
2. plan afresh, or read a saved plan and prove it is still fresh (desired-state digest, then
   the ``rev``/``updated`` of every contact it touches): stale -> exit 3, nothing written;
3. with ``--prune``, check the caps: over one -> exit 3, nothing written at all;
4. show the plan; ask for ``yes`` unless ``--auto-approve`` (no terminal: exit 3);
5. create the missing custom fields, then creates and updates in full batches; a batch whose
   outcome is unknown is re-read and only what is still missing or different is sent again,
   so a contact is never created twice;
6. prune, only if every earlier step succeeded: re-read the contacts to delete (each must be
   unchanged and still owned), write and fsync the backup, delete, and verify by searching
   that they are gone;
7. journal every change after the server's answer; print the summary.

Ctrl-C during the writes stops after the batch in flight, with the journal written (exit
130); running apply again converges. Any doubt about a delete resolves to not deleting."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.commands.context import (
    Settings,
    cache_directory,
    connect,
    fetch_live_state,
    load_inputs,
    locked,
    make_plan,
    render_options,
)
from reconciler.commands.environment import Environment
from reconciler.core.diff import DiffSettings, diff
from reconciler.core.errors import (
    EXIT_ERROR,
    EXIT_OK,
    AmbiguousWriteError,
    ApplyInterruptedError,
    AuthenticationError,
    PruneMismatchError,
    ReconcilerError,
    StalePlanError,
)
from reconciler.core.masking import contact_names, mask_phone
from reconciler.core.model import CustomField, DesiredContact, LiveContact
from reconciler.core.normalize import custom_value_text, normalize_text
from reconciler.core.phones import canonical_phone
from reconciler.core.plan import Create, Delete, Marker, Plan, Update, check_prune_caps
from reconciler.execute.backup import write_backup
from reconciler.execute.journal import JOURNAL_FILE, Journal, JournalEntry, Result
from reconciler.files.lock import DEFAULT_WAIT_SECONDS
from reconciler.files.saved_plans import (
    Provenance,
    SavedPlan,
    current_git_commit,
    current_provenance,
    plan_differences,
    provenance_differences,
    read_saved_plan,
)
from reconciler.heymarket import FailedItem, HeymarketClient, UpsertResult
from reconciler.heymarket.encode import to_upsert_item
from reconciler.heymarket.parse import phone_of
from reconciler.live.snapshot import Refresh
from reconciler.render import RenderOptions, render_plan
from reconciler.report.console import Console, GracefulInterrupt, confirm
from reconciler.report.github import STEP_SUMMARY_VARIABLE, append_step_summary

# Rounds of "re-read, re-diff, re-send" for writes whose outcome is unknown; what is still
# unknown after them is reported (exit 1) and the next apply picks it up.
MAX_RESOLVE_ROUNDS = 3

ConnectClient = Callable[[Settings, Mapping[str, str], bool], HeymarketClient]


def connect_configured(
    settings: Settings, environ: Mapping[str, str], insecure: bool
) -> HeymarketClient:
    return connect(settings, environ, insecure=insecure)


# --- outcomes ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Failure:
    """A change that did not happen, or whose outcome is still unknown."""

    action: str
    phone: str
    source: str | None
    reason: str

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


def _item_uuid(item: Mapping[str, Any]) -> str | None:
    value = item.get("uuid", item.get("contact_id"))
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def _match_answer(
    batch: Sequence[Create | Update], result: UpsertResult
) -> dict[str, FailedItem | str | None]:
    """What the answer says of each change of the batch, by phone: the refusal, or the uuid
    it was stored under (``None`` when the answer gave none). A change is in the result only
    when exactly one answer item names its phone (canonically), and, for an update, names no
    other contact id; a change the answer does not account for that way is left out, so the
    caller re-reads it instead of trusting a guess."""
    sent = {change.phone: change for change in batch}
    updated_phone = {
        change.contact_id: change.phone for change in batch if isinstance(change, Update)
    }

    def sent_phone(item: Mapping[str, Any]) -> str | None:
        phone = phone_of(item)
        if phone is None:
            phone = updated_phone.get(_item_uuid(item) or "")
        return phone if phone in sent else None

    claims: dict[str, list[FailedItem | str | None]] = {}
    for item in result.ambiguous:
        phone = sent_phone(item)
        if phone is not None:
            claims.setdefault(phone, []).extend([None, None])  # never a single claim
    for failed in result.failed:
        phone = sent_phone(failed.item)
        if phone is not None:
            claims.setdefault(phone, []).append(failed)
    for record in result.succeeded:
        phone = sent_phone(record)
        if phone is not None:
            claims.setdefault(phone, []).append(_item_uuid(record))
    outcomes: dict[str, FailedItem | str | None] = {}
    for phone, said in claims.items():
        if len(said) != 1:
            continue
        (outcome,) = said
        change = sent[phone]
        if isinstance(change, Update) and isinstance(outcome, str) and outcome != change.contact_id:
            continue
        outcomes[phone] = outcome
    return outcomes


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + size]


# --- the executor ------------------------------------------------------------------------


class Executor:
    """Writes changes through the client, journals each outcome, and resolves the unknown
    ones. ``desired`` (by phone) and ``settings`` are what a re-diff needs."""

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
    ) -> None:
        self.cwd = cwd
        self.client = client
        self.console = console
        self.journal = journal
        self.interrupt = interrupt
        self.command = command
        self.run = _timestamp(started_at)
        self.started_at = started_at
        self.git_commit = git_commit
        self.fields = list(fields)
        self.desired = desired
        self.settings = settings
        self.tally = Tally()
        # Phones this run creates or updates: with the declared ones, never deleted.
        self.upserted_phones: set[str] = set()

    # -- journal -----------------------------------------------------------------------

    def entry(
        self,
        action: str,
        phone: str,
        contact_id: str | None,
        result: Result,
        reason: str | None = None,
    ) -> JournalEntry:
        return JournalEntry(
            time=_timestamp(datetime.now(UTC)),
            run=self.run,
            command=self.command,
            action=action,
            phone=phone,
            contact_id=contact_id,
            result=result,
            reason=reason,
            git_commit=self.git_commit,
        )

    def _stop_if_interrupted(self) -> None:
        if self.interrupt.requested:
            raise ApplyInterruptedError(
                f"Interrupted: stopped after the batch in flight, {self.tally.counts()} so far "
                f"(journal: {self.journal.path}). Run {self.command} again to finish."
            )

    # -- custom fields -----------------------------------------------------------------

    @property
    def field_ids(self) -> dict[str, str]:
        ids: dict[str, str] = {}
        for custom_field in self.fields:
            ids.setdefault(custom_field.title, custom_field.id)
        return ids

    def ensure_fields(self, changes: Sequence[Create | Update], marker: Marker) -> None:
        """Create every custom field the changes name that the account lacks (the marker's
        included). An unknown outcome is settled by listing the fields again."""
        needed = {marker.field_title}
        for change in changes:
            needed.update(change.custom)
        missing = sorted(title for title in needed if title not in self.field_ids)
        if not missing:
            return
        try:
            created = self.client.create_custom_fields(missing)
        except AmbiguousWriteError:
            self.fields = self.client.list_custom_fields()
            still_missing = [title for title in missing if title not in self.field_ids]
            created = self.client.create_custom_fields(still_missing) if still_missing else []
        self.fields.extend(created)
        unresolved = [title for title in missing if title not in self.field_ids]
        if unresolved:
            self.fields = self.client.list_custom_fields()
            unresolved = [title for title in missing if title not in self.field_ids]
        if unresolved:
            raise AmbiguousWriteError(
                f"the custom fields {', '.join(unresolved)} could not be created; nothing "
                "else was written. Run apply again."
            )
        shown = ", ".join(f'"{title}"' for title in missing)
        self.console.err(f"Created custom field{'s' if len(missing) > 1 else ''} {shown}.\n")

    # -- creates and updates -----------------------------------------------------------

    def write(self, changes: Sequence[Create | Update], marker: Marker) -> None:
        """Send the changes in full batches; settle unknown outcomes by re-reading and
        re-diffing those phones, at most ``MAX_RESOLVE_ROUNDS`` times."""
        if not changes:
            return
        self.upserted_phones.update(change.phone for change in changes)
        intent = {change.phone: change.action for change in changes}
        sources = {change.phone: str(change.source) for change in changes}
        pending: list[Create | Update] = list(changes)
        total = len(changes)
        done = 0
        for round_number in range(MAX_RESOLVE_ROUNDS + 1):
            ambiguous: list[Create | Update] = []
            for batch in _chunks(pending, self.client.batch_size):
                ambiguous.extend(self._send_batch(batch, marker, intent))
                done += len(batch)
                self.console.progress("Writing contacts", min(done, total), total)
                self._stop_if_interrupted()
            if not ambiguous:
                return
            phones = [change.phone for change in ambiguous]
            if round_number == MAX_RESOLVE_ROUNDS:
                self.journal.append(
                    [
                        self.entry(intent[phone], phone, None, "unresolved", "outcome unknown")
                        for phone in phones
                    ]
                )
                for phone in phones:
                    self.tally.failures.append(
                        Failure(
                            intent[phone],
                            phone,
                            sources[phone],
                            f"outcome still unknown after {MAX_RESOLVE_ROUNDS} re-reads; "
                            "run apply again",
                        )
                    )
                return
            pending = self._resolve(phones, intent, sources)
            total += len(pending)
            self._stop_if_interrupted()

    def _send_batch(
        self, batch: Sequence[Create | Update], marker: Marker, intent: Mapping[str, str]
    ) -> list[Create | Update]:
        field_ids = self.field_ids
        try:
            result = self.client.bulk_upsert(
                [to_upsert_item(change, field_ids, marker) for change in batch]
            )
        except AuthenticationError:
            raise
        except ReconcilerError:
            self._settle_interrupted_batch(batch, intent)
            raise
        outcomes = _match_answer(batch, result)
        entries: list[JournalEntry] = []
        ambiguous: list[Create | Update] = []
        for change in batch:
            action = intent[change.phone]
            known_id = change.contact_id if isinstance(change, Update) else None
            outcome = outcomes.get(change.phone)
            if outcome is None:
                # Not accounted for by an answer item we could match to it: it may or may
                # not have been written. Only a re-read can tell; it is never "applied".
                ambiguous.append(change)
                entries.append(self.entry(action, change.phone, known_id, "ambiguous"))
            elif isinstance(outcome, FailedItem):
                reason = f"{outcome.code}: {outcome.message}"
                entries.append(self.entry(action, change.phone, known_id, "failed", reason))
                self.tally.failures.append(
                    Failure(action, change.phone, str(change.source), reason)
                )
            else:
                entries.append(self.entry(action, change.phone, outcome or known_id, "applied"))
                self._count(action)
        self.journal.append(entries)
        return ambiguous

    def _settle_interrupted_batch(
        self, batch: Sequence[Create | Update], intent: Mapping[str, str]
    ) -> None:
        """The client splits a batch the server calls too large, so a part of it may have
        been written before another part failed: journal the batch as unknown, then let a
        re-read confirm what the account holds. Nothing is claimed that was not seen."""
        self.journal.append(
            [
                self.entry(
                    intent[change.phone],
                    change.phone,
                    change.contact_id if isinstance(change, Update) else None,
                    "ambiguous",
                    "the batch stopped part-way",
                )
                for change in batch
            ]
        )
        sources = {change.phone: str(change.source) for change in batch}
        with contextlib.suppress(ReconcilerError):
            self._resolve([change.phone for change in batch], intent, sources)

    def _count(self, action: str) -> None:
        if action == "create":
            self.tally.created += 1
        elif action == "update":
            self.tally.updated += 1

    def _resolve(
        self, phones: Sequence[str], intent: Mapping[str, str], sources: Mapping[str, str]
    ) -> list[Create | Update]:
        """Re-read these phones and return what is still missing or different for them.
        Those that now match are journaled as applied; a phone the re-read finds twice (the
        one thing a blind retry would have caused) is reported, never written again."""
        found = self.client.search_by_phones(phones)
        wanted = [self.desired[phone] for phone in phones if phone in self.desired]
        redo = diff(wanted, found, self.fields, self.settings, prune=False)
        still_to_write = {change.phone for change in redo.changes}
        troubled = {notice.phone: notice.message for notice in redo.errors if notice.phone}
        found_ids = {contact.phone: contact.uuid for contact in found}
        entries: list[JournalEntry] = []
        for phone in phones:
            action = intent[phone]
            if phone not in self.desired:
                reason = "outcome unknown and no declaration to compare with; run apply again"
                entries.append(
                    self.entry(action, phone, found_ids.get(phone), "unresolved", reason)
                )
                self.tally.failures.append(Failure(action, phone, sources[phone], reason))
            elif phone in troubled:
                reason = troubled[phone]
                entries.append(self.entry(action, phone, found_ids.get(phone), "failed", reason))
                self.tally.failures.append(Failure(action, phone, sources[phone], reason))
            elif phone not in still_to_write:
                entries.append(
                    self.entry(
                        action, phone, found_ids.get(phone), "applied", "confirmed by a re-read"
                    )
                )
                self._count(action)
        self.journal.append(entries)
        return [change for change in redo.changes if isinstance(change, Create | Update)]

    # -- deletes -----------------------------------------------------------------------

    def _owned(self, contact: LiveContact, marker: Marker) -> bool:
        marker_id = self.field_ids.get(marker.field_title)
        if marker_id is None:
            return False
        value = custom_value_text(contact.custom.get(marker_id))
        return value is not None and value == normalize_text(marker.owner)

    def prune(self, deletes: Sequence[Delete], backup_dir: Path, marker: Marker) -> None:
        """Delete the plan's contacts: re-read them (each must be unchanged and owned), back
        them up durably, delete, then verify they are gone."""
        deletes = self._undeclared(deletes)
        if not deletes:
            return
        current = {
            contact.uuid: contact
            for contact in self.client.search_by_phones([delete.phone for delete in deletes])
        }
        confirmed: list[LiveContact] = []
        for delete in deletes:
            live = current.get(delete.contact_id)
            if live is not None and live.phone != delete.phone:
                self.tally.failures.append(
                    Failure(
                        "delete",
                        delete.phone,
                        f"contact {delete.contact_id}",
                        "the account now answers it with another phone: not deleted. "
                        "Run plan again and review it",
                    )
                )
            elif live is None:
                self.tally.notes.append(
                    f"delete {delete.phone}: already gone from the account; nothing to do."
                )
            elif (live.rev, live.updated) != (delete.rev, delete.updated) or not self._owned(
                live, marker
            ):
                self.tally.failures.append(
                    Failure(
                        "delete",
                        delete.phone,
                        f"contact {delete.contact_id}",
                        "changed in the account since the plan was made: not deleted. "
                        "Run plan again and review it",
                    )
                )
            else:
                confirmed.append(live)
        if not confirmed:
            return
        backup = write_backup(backup_dir, confirmed, self.fields, marker, self.started_at)
        self.tally.backup = backup
        self.console.err(
            f"Backed up {len(confirmed)} contact{'' if len(confirmed) == 1 else 's'} to "
            f"{_shown(backup, self.cwd)} before deleting.\n"
        )

        sent: list[LiveContact] = []
        unknown: set[str] = set()
        try:
            for batch in _chunks(confirmed, self.client.delete_batch_size):
                # Counted as sent before the call: the client may split the batch, and a
                # part can go through before another part raises. The search that follows
                # tells what is gone, so the journal has a line for every delete that was done.
                in_flight = {contact.uuid for contact in batch}
                sent.extend(batch)
                unknown.update(in_flight)
                result = self.client.bulk_delete([contact.uuid for contact in batch])
                unknown.difference_update(in_flight)
                unknown.update(result.ambiguous)
                self.console.progress("Deleting contacts", len(sent), len(confirmed))
                if self.interrupt.requested:
                    break
        finally:
            self._verify_deleted(sent, unknown, backup)
        self._stop_if_interrupted()

    def _undeclared(self, deletes: Sequence[Delete]) -> list[Delete]:
        """The deletes whose phone is neither declared nor written by this run. The diff
        never plans such a delete; this is the last check before a permanent one, so no
        way of building a plan (a saved file, a spelling of a phone) can get past it."""
        kept: list[Delete] = []
        for delete in deletes:
            phones = {delete.phone, delete.live.phone}
            if any(
                canonical_phone(phone) is None
                or phone in self.desired
                or phone in self.upserted_phones
                for phone in phones
            ):
                self.tally.failures.append(
                    Failure(
                        "delete",
                        delete.phone,
                        f"contact {delete.contact_id}",
                        "its phone is declared or written by this run, or is not a phone "
                        "number: never deleted. Run plan again and review it",
                    )
                )
            else:
                kept.append(delete)
        return kept

    def _verify_deleted(self, sent: Sequence[LiveContact], unknown: set[str], backup: Path) -> None:
        """The delete endpoint only says "ok": search for each contact and journal what is
        really gone."""
        if not sent:
            return
        remaining = {
            contact.uuid for contact in self.client.search_by_phones([c.phone for c in sent])
        }
        entries: list[JournalEntry] = []
        for contact in sent:
            if contact.uuid in remaining:
                reason = (
                    "the delete request got no usable answer and the contact is still there"
                    if contact.uuid in unknown
                    else "still present after the delete request answered ok"
                )
                entries.append(self.entry("delete", contact.phone, contact.uuid, "failed", reason))
                self.tally.failures.append(
                    Failure("delete", contact.phone, f"contact {contact.uuid}", reason)
                )
            else:
                entries.append(
                    self.entry(
                        "delete",
                        contact.phone,
                        contact.uuid,
                        "applied",
                        f"backup {_shown(backup, self.cwd)}",
                    )
                )
                self.tally.deleted += 1
        self.journal.append(entries)


def _shown(path: Path, cwd: Path) -> str:
    """A path relative to the working directory when it is inside it (messages read better)."""
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- apply -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplyRequest:
    """The flags of one ``apply`` run."""

    plan_file: Path | None = None
    config_file: Path | None = None
    contacts_dir: Path | None = None
    api_url: str | None = None
    auto_approve: bool = False
    prune: bool = False
    max_deletes: int | None = None
    mask_pii: bool = False
    no_color: bool = False
    insecure: bool = False
    lock_timeout: float = DEFAULT_WAIT_SECONDS
    # "full" lists the whole account instead of what changed since the last snapshot.
    refresh: Refresh = "auto"


def _check_prune_intent(request: ApplyRequest, saved: SavedPlan) -> None:
    """A saved plan is applied with the --prune it was reviewed with, or not at all."""
    if saved.prune == request.prune:
        return
    if saved.prune:
        raise PruneMismatchError(
            f"{request.plan_file} was planned with --prune (it may delete contacts) but "
            "apply was run without it. Pass --prune to apply it, or make a plan without "
            "--prune."
        )
    raise PruneMismatchError(
        f"apply --prune was asked for, but {request.plan_file} was planned without "
        "--prune, so the deletes were never reviewed. Make the plan with --prune, or "
        "apply without --prune."
    )


def _prove_saved_plan(
    request: ApplyRequest,
    saved: SavedPlan,
    derived: Plan,
    current: Provenance,
    console: Console,
    *,
    mask: bool,
) -> None:
    """Raise ``StalePlanError`` unless the saved changes are exactly the derived ones, for
    the same account and owner. The derived plan is made with today's config, so caps,
    protect and ownership are today's; the file is only compared, never executed."""
    again = "Make a new plan (`reconciler plan --out FILE`), review it, and apply that."
    since = provenance_differences(saved.provenance, current)
    what_changed = f" Since it was saved: {'; '.join(since)}." if since else ""
    was, now = saved.provenance, current
    if (was.api_url, was.marker_field, was.owner) != (now.api_url, now.marker_field, now.owner):
        raise StalePlanError(
            f"{request.plan_file} was made for another account or owner, so nothing was "
            f"written.{what_changed} {again}"
        )
    differences = plan_differences(saved, derived, mask=mask)
    if not differences:
        return
    for difference in differences:
        console.err(f"  ~ {difference}\n")
    count = len(differences)
    raise StalePlanError(
        f"{request.plan_file} is not the plan apply derives now ({count} "
        f"difference{'' if count == 1 else 's'} above), so nothing was written."
        f"{what_changed} {again}"
    )


def _show_plan(plan: Plan, console: Console, options: RenderOptions) -> None:
    rendered = render_plan(plan, "text", options)
    console.out(rendered.stdout)
    if rendered.stderr:
        console.err(rendered.stderr)


def _report(
    tally: Tally, console: Console, *, mask: bool, verb: str, state: str = "complete"
) -> None:
    report_failures(tally, console, mask=mask)
    console.out(tally.summary(verb, state) + "\n")


def _step_summary(
    tally: Tally,
    environ: Mapping[str, str],
    screen: Callable[[str], str],
    *,
    mask: bool,
    verb: str,
) -> str:
    if not environ.get(STEP_SUMMARY_VARIABLE, "").strip():
        return ""
    lines = [
        f"### reconciler {verb.lower()}",
        "",
        "| created | updated | deleted | failed |",
        "|---:|---:|---:|---:|",
        f"| {tally.created} | {tally.updated} | {tally.deleted} | {len(tally.failures)} |",
    ]
    if tally.backup is not None:
        lines += ["", f"Prune backup: `{tally.backup}`"]
    if tally.failures:
        lines += ["", "Failed:", ""]
        lines += [f"- {failure.line(mask=mask)}" for failure in tally.failures]
    return append_step_summary("\n".join(lines) + "\n", environ, screen=screen)


def report_failures(tally: Tally, console: Console, *, mask: bool) -> None:
    """The notes and failed changes of a run, one line each on stderr (apply and restore)."""
    for note in tally.notes:
        console.err(f"Note: {note}\n")
    for failure in tally.failures:
        console.err(f"Failed: {failure.line(mask=mask)}\n")


def run(request: ApplyRequest, env: Environment) -> int:
    """One ``apply`` run; returns the exit code (guards and errors raise)."""
    with locked(env, command="apply", wait_seconds=request.lock_timeout):
        return _apply_locked(request, env, env.now())


def _apply_locked(request: ApplyRequest, env: Environment, started_at: datetime) -> int:
    console, cwd = env.console, env.cwd
    inputs = load_inputs(
        env,
        config_file=request.config_file,
        contacts_dir=request.contacts_dir,
        api_url=request.api_url,
        mask_pii=request.mask_pii,
    )
    if inputs is None:
        return EXIT_ERROR
    settings, desired = inputs.settings, inputs.desired
    mask = inputs.masks(mask_pii=request.mask_pii)
    config = settings.config
    saved = read_saved_plan(_absolute(request.plan_file, cwd)) if request.plan_file else None
    if saved is not None:
        _check_prune_intent(request, saved)
    if request.max_deletes is not None and not request.prune:
        console.err("Note: --max-deletes has no effect without --prune.\n")

    options = render_options(env, mask=mask, no_color=request.no_color)
    diff_settings = DiffSettings.from_config(config)

    with env.connect_client(settings, env.environ, request.insecure) as client:
        live = fetch_live_state(
            client, refresh=request.refresh, cache_dir=cache_directory(settings)
        )
        console.screen.add_names(contact_names(live.contacts))
        plan = make_plan(
            desired, live, config, prune=request.prune, run_max_deletes=request.max_deletes
        ).plan
        fields: Sequence[CustomField] = live.fields
        if saved is not None:
            current = current_provenance(desired.contacts, settings.api_url, plan.marker, cwd)
            _prove_saved_plan(request, saved, plan, current, console, mask=mask)

        if request.prune:
            check_prune_caps(
                plan,
                plan.owned_live_count,
                config.prune.max_deletes,
                config.prune.max_delete_percent,
                run_max_deletes=request.max_deletes,
            )

        _show_plan(plan, console, options)
        if not plan.has_changes:
            return EXIT_ERROR if plan.has_errors else EXIT_OK
        if saved is None:
            confirm(console, auto_approve=request.auto_approve)

        with Journal(cwd / JOURNAL_FILE) as journal:
            interrupt = GracefulInterrupt(console)
            executor = Executor(
                client,
                console,
                journal,
                interrupt,
                command="apply",
                started_at=started_at,
                git_commit=current_git_commit(cwd),
                fields=fields,
                desired={contact.phone: contact for contact in desired.contacts},
                settings=diff_settings,
                cwd=cwd,
            )
            try:
                with interrupt.installed():
                    _execute(executor, plan, settings, request)
            except ApplyInterruptedError:
                console.end_progress()
                _report(executor.tally, console, mask=mask, verb="Apply", state="interrupted")
                raise
            console.end_progress()
    tally = executor.tally
    _report(tally, console, mask=mask, verb="Apply")
    warning = _step_summary(tally, env.environ, console.screen, mask=mask, verb="Apply")
    if warning:
        console.err(warning)
    return EXIT_ERROR if tally.failures or plan.has_errors else EXIT_OK


def _execute(executor: Executor, plan: Plan, settings: Settings, request: ApplyRequest) -> None:
    upserts: list[Create | Update] = [*plan.creates, *plan.updates]
    if upserts:
        executor.ensure_fields(upserts, plan.marker)
        executor.write(upserts, plan.marker)
    deletes = plan.deletes
    if not (request.prune and deletes):
        return
    # Deletes are permanent: when anything before them went wrong, or the plan left
    # contacts for a human to sort out, nobody has seen this run end as reviewed.
    if executor.tally.failures or plan.has_errors:
        problems = len(executor.tally.failures) + len(plan.errors)
        executor.tally.notes.append(
            f"prune skipped: {problems} contacts failed or were left untouched above, so "
            f"none of the {len(deletes)} deletes was done. Fix them and run apply --prune again."
        )
        return
    backup_dir = _absolute(settings.config.prune.backup_dir, settings.cwd)
    executor.prune(deletes, backup_dir, plan.marker)


def _absolute(path: Path, cwd: Path) -> Path:
    return path if path.is_absolute() else cwd / path
