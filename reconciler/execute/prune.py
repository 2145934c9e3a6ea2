"""Deletes, which are permanent, so every doubt resolves to not deleting.

Before any delete request: the phone must be neither declared nor written by this run; a
re-read must find each contact unchanged since the plan and still owned; and the full
records must be backed up durably. After: a search verifies what is really gone, since the
delete endpoint only says "ok"."""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from reconciler.core.model import CustomField, DesiredContact, LiveContact
from reconciler.core.ownership import FieldIndex, Marker, Ownership
from reconciler.core.phones import canonical_phone
from reconciler.core.plan import Delete
from reconciler.execute.backup import write_backup
from reconciler.execute.batches import chunks
from reconciler.execute.journal import JournalEntry
from reconciler.execute.recorder import Recorder
from reconciler.files.paths import display_path
from reconciler.heymarket import HeymarketClient
from reconciler.report.console import Console


class Pruner:
    """Deletes a plan's contacts; ``desired`` (by phone) is what is never deleted."""

    def __init__(
        self,
        client: HeymarketClient,
        console: Console,
        recorder: Recorder,
        *,
        desired: Mapping[str, DesiredContact],
        started_at: datetime,
        cwd: Path,
    ) -> None:
        self.client = client
        self.console = console
        self.recorder = recorder
        self.desired = desired
        self.started_at = started_at
        self.cwd = cwd

    def prune(
        self,
        deletes: Sequence[Delete],
        backup_dir: Path,
        marker: Marker,
        fields: Sequence[CustomField],
        upserted_phones: Container[str],
    ) -> None:
        """Delete the plan's contacts: re-read them (each must be unchanged and owned), back
        them up durably, delete, then verify they are gone. ``upserted_phones``: the phones
        this run wrote, never deleted."""
        tally = self.recorder.tally
        deletes = self._undeclared(deletes, upserted_phones)
        if not deletes:
            return
        ownership = Ownership.of(FieldIndex.of(fields), marker)
        current = {
            contact.uuid: contact
            for contact in self.client.search_by_phones([delete.phone for delete in deletes])
        }
        confirmed: list[LiveContact] = []
        for delete in deletes:
            live = current.get(delete.contact_id)
            if live is not None and live.phone != delete.phone:
                self.recorder.fail(
                    "delete",
                    delete.phone,
                    f"contact {delete.contact_id}",
                    "the account now answers it with another phone: not deleted. "
                    "Run plan again and review it",
                )
            elif live is None:
                tally.notes.append(
                    f"delete {delete.phone}: already gone from the account; nothing to do."
                )
            elif (live.rev, live.updated) != (delete.rev, delete.updated) or not ownership.owns(
                live
            ):
                self.recorder.fail(
                    "delete",
                    delete.phone,
                    f"contact {delete.contact_id}",
                    "changed in the account since the plan was made: not deleted. "
                    "Run plan again and review it",
                )
            else:
                confirmed.append(live)
        if not confirmed:
            return
        backup = write_backup(backup_dir, confirmed, fields, marker, self.started_at)
        tally.backup = backup
        self.console.err(
            f"Backed up {len(confirmed)} contact{'' if len(confirmed) == 1 else 's'} to "
            f"{display_path(backup, self.cwd)} before deleting.\n"
        )

        sent: list[LiveContact] = []
        unknown: set[str] = set()
        self.console.begin_progress()
        try:
            for batch in chunks(confirmed, self.client.delete_batch_size):
                # Counted as sent before the call: the client may split the batch, and a
                # part can go through before another part raises. The search that follows
                # tells what is gone, so the journal has a line for every delete that was done.
                in_flight = {contact.uuid for contact in batch}
                sent.extend(batch)
                unknown.update(in_flight)
                result = self.client.bulk_delete([contact.uuid for contact in batch])
                unknown.difference_update(in_flight)
                unknown.update(result.ambiguous)
                self.console.progress("Deleting", len(sent), len(confirmed), unit="contacts")
                if self.recorder.interrupt.requested:
                    break
        finally:
            self._verify_deleted(sent, unknown, backup)
        self.recorder.stop_if_interrupted()

    def _undeclared(
        self, deletes: Sequence[Delete], upserted_phones: Container[str]
    ) -> list[Delete]:
        """The deletes whose phone is neither declared nor written by this run. The diff
        never plans such a delete; this is the last check before a permanent one, so no
        way of building a plan (a saved file, a spelling of a phone) can get past it."""
        kept: list[Delete] = []
        for delete in deletes:
            phones = {delete.phone, delete.live.phone}
            if any(
                canonical_phone(phone) is None or phone in self.desired or phone in upserted_phones
                for phone in phones
            ):
                self.recorder.fail(
                    "delete",
                    delete.phone,
                    f"contact {delete.contact_id}",
                    "its phone is declared or written by this run, or is not a phone "
                    "number: never deleted. Run plan again and review it",
                )
            else:
                kept.append(delete)
        return kept

    def _verify_deleted(self, sent: Sequence[LiveContact], unknown: set[str], backup: Path) -> None:
        """The delete endpoint only says "ok": search for each contact and journal what is
        really gone."""
        if not sent:
            return
        recorder = self.recorder
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
                entries.append(
                    recorder.entry("delete", contact.phone, contact.uuid, "failed", reason)
                )
                recorder.fail("delete", contact.phone, f"contact {contact.uuid}", reason)
            else:
                entries.append(
                    recorder.entry(
                        "delete",
                        contact.phone,
                        contact.uuid,
                        "applied",
                        f"backup {display_path(backup, self.cwd)}",
                    )
                )
                recorder.tally.deleted += 1
        recorder.journal_lines(entries)
