"""Creates and updates, in full batches, each outcome journaled after the server's answer.

A change counts as done only when the answer accounts for it beyond doubt (see
``match_answer``). Anything else, a batch whose outcome is unknown included, is re-read and
re-diffed, and only what is still missing or different is sent again, so a contact is never
created twice."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

from reconciler.core.diff import DiffSettings, diff
from reconciler.core.errors import AuthenticationError, ReconcilerError
from reconciler.core.model import CustomField, DesiredContact
from reconciler.core.ownership import FieldIndex, Marker
from reconciler.core.plan import Create, Update
from reconciler.execute.batches import chunks
from reconciler.execute.journal import JournalEntry
from reconciler.execute.recorder import Recorder
from reconciler.heymarket import HeymarketClient, Refusal, UpsertResult
from reconciler.heymarket.encode import to_upsert_item
from reconciler.report.console import Console

# Rounds of "re-read, re-diff, re-send" for writes whose outcome is unknown; what is still
# unknown after them is reported (exit 1) and the next apply picks it up.
MAX_RESOLVE_ROUNDS = 3


def match_answer(
    batch: Sequence[Create | Update], result: UpsertResult
) -> dict[str, Refusal | str | None]:
    """What the answer says of each change of the batch, by phone: the refusal, or the uuid
    it was stored under (``None`` when the answer gave none). A change is in the result only
    when exactly one answer entry names its phone (canonically), and, for an update, names no
    other contact id; a change the answer does not account for that way is left out, so the
    caller re-reads it instead of trusting a guess."""
    sent = {change.phone: change for change in batch}
    updated_phone = {
        change.contact_id: change.phone for change in batch if isinstance(change, Update)
    }

    def sent_phone(phone: str | None, uuid: str | None) -> str | None:
        if phone is None:
            phone = updated_phone.get(uuid or "")
        return phone if phone in sent else None

    claims: dict[str, list[Refusal | str | None]] = {}
    for unknown in result.ambiguous:
        phone = sent_phone(unknown.phone, unknown.uuid)
        if phone is not None:
            claims.setdefault(phone, []).extend([None, None])  # never a single claim
    for refusal in result.failed:
        phone = sent_phone(refusal.phone, refusal.uuid)
        if phone is not None:
            claims.setdefault(phone, []).append(refusal)
    for stored in result.succeeded:
        phone = sent_phone(stored.phone, stored.uuid)
        if phone is not None:
            claims.setdefault(phone, []).append(stored.uuid)
    outcomes: dict[str, Refusal | str | None] = {}
    for phone, said in claims.items():
        if len(said) != 1:
            continue
        (outcome,) = said
        change = sent[phone]
        if isinstance(change, Update) and isinstance(outcome, str) and outcome != change.contact_id:
            continue
        outcomes[phone] = outcome
    return outcomes


class Upserter:
    """Writes creates and updates through the client; ``desired`` (by phone) and
    ``settings`` are what a re-diff needs."""

    def __init__(
        self,
        client: HeymarketClient,
        console: Console,
        recorder: Recorder,
        *,
        desired: Mapping[str, DesiredContact],
        settings: DiffSettings,
    ) -> None:
        self.client = client
        self.console = console
        self.recorder = recorder
        self.desired = desired
        self.settings = settings
        # Phones this run creates or updates: with the declared ones, never deleted.
        self.upserted_phones: set[str] = set()

    def write(
        self, changes: Sequence[Create | Update], marker: Marker, fields: Sequence[CustomField]
    ) -> None:
        """Send the changes in full batches; settle unknown outcomes by re-reading and
        re-diffing those phones, at most ``MAX_RESOLVE_ROUNDS`` times. ``fields`` holds
        every custom field the changes name."""
        if not changes:
            return
        recorder = self.recorder
        self.upserted_phones.update(change.phone for change in changes)
        intent = {change.phone: change.action for change in changes}
        sources = {change.phone: str(change.source) for change in changes}
        pending: list[Create | Update] = list(changes)
        total = len(changes)
        done = 0
        for round_number in range(MAX_RESOLVE_ROUNDS + 1):
            ambiguous: list[Create | Update] = []
            for batch in chunks(pending, self.client.batch_size):
                ambiguous.extend(self._send_batch(batch, marker, fields, intent))
                done += len(batch)
                self.console.progress("Writing contacts", min(done, total), total)
                recorder.stop_if_interrupted()
            if not ambiguous:
                return
            phones = [change.phone for change in ambiguous]
            if round_number == MAX_RESOLVE_ROUNDS:
                recorder.journal_lines(
                    [
                        recorder.entry(intent[phone], phone, None, "unresolved", "outcome unknown")
                        for phone in phones
                    ]
                )
                for phone in phones:
                    recorder.fail(
                        intent[phone],
                        phone,
                        sources[phone],
                        f"outcome still unknown after {MAX_RESOLVE_ROUNDS} re-reads; "
                        "run apply again",
                    )
                return
            pending = self._resolve(phones, fields, intent, sources)
            total += len(pending)
            recorder.stop_if_interrupted()

    def _send_batch(
        self,
        batch: Sequence[Create | Update],
        marker: Marker,
        fields: Sequence[CustomField],
        intent: Mapping[str, str],
    ) -> list[Create | Update]:
        recorder = self.recorder
        field_ids = FieldIndex.of(fields).ids
        try:
            result = self.client.bulk_upsert(
                [to_upsert_item(change, field_ids, marker) for change in batch]
            )
        except AuthenticationError:
            raise
        except ReconcilerError:
            self._settle_interrupted_batch(batch, fields, intent)
            raise
        outcomes = match_answer(batch, result)
        entries: list[JournalEntry] = []
        ambiguous: list[Create | Update] = []
        for change in batch:
            action = intent[change.phone]
            known_id = change.contact_id if isinstance(change, Update) else None
            outcome = outcomes.get(change.phone)
            if outcome is None:
                # Not accounted for by an answer entry we could match to it: it may or may
                # not have been written. Only a re-read can tell; it is never "applied".
                ambiguous.append(change)
                entries.append(recorder.entry(action, change.phone, known_id, "ambiguous"))
            elif isinstance(outcome, Refusal):
                reason = f"{outcome.code}: {outcome.message}"
                entries.append(recorder.entry(action, change.phone, known_id, "failed", reason))
                recorder.fail(action, change.phone, str(change.source), reason)
            else:
                entries.append(recorder.entry(action, change.phone, outcome or known_id, "applied"))
                recorder.count(action)
        recorder.journal_lines(entries)
        return ambiguous

    def _settle_interrupted_batch(
        self,
        batch: Sequence[Create | Update],
        fields: Sequence[CustomField],
        intent: Mapping[str, str],
    ) -> None:
        """The client splits a batch the server calls too large, so a part of it may have
        been written before another part failed: journal the batch as unknown, then let a
        re-read confirm what the account holds. Nothing is claimed that was not seen."""
        self.recorder.journal_lines(
            [
                self.recorder.entry(
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
            self._resolve([change.phone for change in batch], fields, intent, sources)

    def _resolve(
        self,
        phones: Sequence[str],
        fields: Sequence[CustomField],
        intent: Mapping[str, str],
        sources: Mapping[str, str],
    ) -> list[Create | Update]:
        """Re-read these phones and return what is still missing or different for them.
        Those that now match are journaled as applied; a phone the re-read finds twice (the
        one thing a blind retry would have caused) is reported, never written again."""
        recorder = self.recorder
        found = self.client.search_by_phones(phones)
        wanted = [self.desired[phone] for phone in phones if phone in self.desired]
        redo = diff(wanted, found, fields, self.settings, prune=False)
        still_to_write = {change.phone for change in redo.changes}
        troubled = {notice.phone: notice.message for notice in redo.errors if notice.phone}
        found_ids = {contact.phone: contact.uuid for contact in found}
        entries: list[JournalEntry] = []
        for phone in phones:
            action = intent[phone]
            if phone not in self.desired:
                reason = "outcome unknown and no declaration to compare with; run apply again"
                entries.append(
                    recorder.entry(action, phone, found_ids.get(phone), "unresolved", reason)
                )
                recorder.fail(action, phone, sources[phone], reason)
            elif phone in troubled:
                reason = troubled[phone]
                entries.append(
                    recorder.entry(action, phone, found_ids.get(phone), "failed", reason)
                )
                recorder.fail(action, phone, sources[phone], reason)
            elif phone not in still_to_write:
                entries.append(
                    recorder.entry(
                        action, phone, found_ids.get(phone), "applied", "confirmed by a re-read"
                    )
                )
                recorder.count(action)
        recorder.journal_lines(entries)
        return [change for change in redo.changes if isinstance(change, Create | Update)]
