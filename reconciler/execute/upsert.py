"""Creates and updates, in full batches, each outcome journaled after the server's answer.

A change counts as done only when the answer accounts for it beyond doubt (see
``match_answer``). Anything else, a batch whose outcome is unknown included, is re-read and
re-diffed, and only what is still missing or different is sent again, so a contact is never
created twice.

A write the account stored otherwise than sent and than predicted (``core.rewrites``) is an
"inconsistent result after apply": journaled, reported with the value to declare, and never
sent again in the run (a re-read that finds it so does not chase it)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

from reconciler.core.diff import DiffSettings, diff
from reconciler.core.errors import AuthenticationError, ReconcilerError
from reconciler.core.masking import NAME_FIELDS
from reconciler.core.model import CustomField, DesiredContact, LiveContact
from reconciler.core.ownership import FieldIndex, Marker
from reconciler.core.plan import Create, Update
from reconciler.core.rewrites import Rewrite, unpredicted_rewrites
from reconciler.execute.batches import chunks
from reconciler.execute.consistency import answered_values, read_back_values
from reconciler.execute.journal import JournalEntry
from reconciler.execute.recorder import Recorder
from reconciler.heymarket import HeymarketClient, Refusal, StoredContact, UpsertResult
from reconciler.heymarket.encode import to_upsert_item
from reconciler.report.console import Console

# Rounds of "re-read, re-diff, re-send" for writes whose outcome is unknown; what is still
# unknown after them is reported (exit 1) and the next apply picks it up.
MAX_RESOLVE_ROUNDS = 3


def match_answer(
    batch: Sequence[Create | Update], result: UpsertResult
) -> dict[str, Refusal | StoredContact]:
    """What the answer says of each change of the batch, by phone: the refusal, or the
    contact as stored under a uuid. A change is in the result only
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

    claims: dict[str, list[Refusal | StoredContact | None]] = {}
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
            # An entry without a uuid proves nothing: the change is re-read.
            claims.setdefault(phone, []).append(stored if stored.uuid is not None else None)
    outcomes: dict[str, Refusal | StoredContact] = {}
    for phone, said in claims.items():
        if len(said) != 1:
            continue
        (outcome,) = said
        if outcome is None:
            continue
        change = sent[phone]
        if (
            isinstance(change, Update)
            and isinstance(outcome, StoredContact)
            and outcome.uuid != change.contact_id
        ):
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
        # The change last sent for each phone, and the phones whose write came back
        # rewritten (never sent again in this run).
        self._last_sent: dict[str, Create | Update] = {}
        self._rewritten_phones: set[str] = set()

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
        self.console.begin_progress()
        for round_number in range(MAX_RESOLVE_ROUNDS + 1):
            ambiguous: list[Create | Update] = []
            for batch in chunks(pending, self.client.batch_size):
                ambiguous.extend(self._send_batch(batch, marker, fields, intent))
                done += len(batch)
                self.console.progress("Writing", min(done, total), total, unit="changes")
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
                        unknown=True,
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
        index = FieldIndex.of(fields)
        field_ids = index.ids
        self._last_sent.update((change.phone, change) for change in batch)
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
                contact_id = outcome.uuid
                stored = answered_values(outcome, index.titles)
                rewrites = unpredicted_rewrites(change, stored)
                if rewrites:
                    entries.extend(self._inconsistent(action, change, contact_id, rewrites))
                else:
                    entries.append(recorder.entry(action, change.phone, contact_id, "applied"))
                recorder.count(action)
        recorder.journal_lines(entries)
        return ambiguous

    def _inconsistent(
        self,
        action: str,
        change: Create | Update,
        contact_id: str | None,
        rewrites: Sequence[Rewrite],
    ) -> list[JournalEntry]:
        """Report a write the account stored otherwise than predicted: one failure for the
        contact, one journal line per value; the phone is not sent again in this run."""
        self._rewritten_phones.add(change.phone)
        # Rewritten names are names too: masked like the declared ones.
        self.console.screen.add_names(
            value
            for rewrite in rewrites
            if rewrite.label in NAME_FIELDS
            for value in (rewrite.sent, rewrite.stored)
        )
        self.recorder.fail(
            action,
            change.phone,
            str(change.source),
            "; ".join(rewrite.message() for rewrite in rewrites),
        )
        return [
            self.recorder.entry(
                action,
                change.phone,
                contact_id,
                "inconsistent",
                "inconsistent result after apply",
                rewrite=rewrite,
            )
            for rewrite in rewrites
        ]

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
        found_by_phone = {contact.phone: contact for contact in found}
        titles = FieldIndex.of(fields).titles
        entries: list[JournalEntry] = []
        for phone in phones:
            action = intent[phone]
            contact_id = found_by_phone[phone].uuid if phone in found_by_phone else None
            if phone not in self.desired:
                reason = "outcome unknown and no declaration to compare with; run apply again"
                entries.append(recorder.entry(action, phone, contact_id, "unresolved", reason))
                recorder.fail(action, phone, sources[phone], reason, unknown=True)
            elif phone in troubled:
                reason = troubled[phone]
                entries.append(recorder.entry(action, phone, contact_id, "failed", reason))
                recorder.fail(action, phone, sources[phone], reason)
            elif phone not in still_to_write:
                entries.append(
                    recorder.entry(action, phone, contact_id, "applied", "confirmed by a re-read")
                )
                recorder.count(action)
            elif rewrites := self._rewritten_on_read_back(found_by_phone.get(phone), titles):
                entries.extend(
                    self._inconsistent(action, self._last_sent[phone], contact_id, rewrites)
                )
                recorder.count(action)
        recorder.journal_lines(entries)
        return [
            change
            for change in redo.changes
            if isinstance(change, Create | Update) and change.phone not in self._rewritten_phones
        ]

    def _rewritten_on_read_back(
        self, live: LiveContact | None, field_titles: Mapping[str, str]
    ) -> list[Rewrite]:
        """The values a re-read shows the account rewrote, when it shows that the last
        change sent for the contact was written at all (the contact now exists, or its
        revision moved); without that proof a difference is only a write still to make."""
        sent = self._last_sent.get(live.phone) if live is not None else None
        if live is None or sent is None:
            return []
        written = isinstance(sent, Create) or (live.rev, live.updated) != (sent.rev, sent.updated)
        return unpredicted_rewrites(sent, read_back_values(live, field_titles)) if written else []
