"""Listing every contact exactly once while the account may be written to.

The cursor (``pagination.py``) keeps the part of the account that is both read and inside
the current window small, but not empty. A contact of that part written meanwhile moves to
the end of the order and shifts the unread contacts back by one, so one of them can slip
behind a page boundary unseen. The moved contact shows itself later (a newer ``rev``); the
listing then re-reads the stretch of the order where the hidden one must be: from the moved
contact's old ``updated`` to the first contact of the last page that could have missed it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from reconciler.core.errors import BadResponseError
from reconciler.core.model import LiveContact
from reconciler.core.timestamps import utc_text
from reconciler.heymarket.pagination import ListingCursor, PageRequest
from reconciler.heymarket.parse import parse_timestamp

# Re-reads after writes during the listing; more means the account is rewritten faster than
# it can be read, and the listing returns what it has.
MAX_REREADS: Final = 20

FetchPage = Callable[[PageRequest], list[LiveContact]]


@dataclass(frozen=True, slots=True)
class Stretch:
    """A part of the (``updated``, ``id``) order: from ``since`` to ``until`` inclusive
    (``None``: to the end)."""

    since: datetime
    until: datetime | None

    def joined(self, other: Stretch | None) -> Stretch:
        if other is None:
            return self
        until = None if self.until is None or other.until is None else max(self.until, other.until)
        return Stretch(min(self.since, other.since), until)


class _RequestLog:
    """Per request: where its window started and the ``updated`` of its first contact; per
    contact: the request that read the version held."""

    def __init__(self) -> None:
        self._window_starts: list[datetime] = []
        self._first_updated: list[datetime | None] = []
        self._read_in: dict[int, int] = {}

    def started(self, window_start: datetime) -> int:
        self._window_starts.append(window_start)
        self._first_updated.append(None)
        return len(self._window_starts) - 1

    def answered(self, request_index: int, page: list[LiveContact]) -> None:
        if page:
            self._first_updated[request_index] = parse_timestamp(page[0].updated)

    def read(self, contact_id: int, request_index: int) -> None:
        self._read_in[contact_id] = request_index

    def hidden_by_move(self, previous: LiveContact) -> Stretch | None:
        """Where a contact may hide after ``previous`` moved to the end of the order, or
        ``None`` when its old place was in no later request's window."""
        old_place = parse_timestamp(previous.updated)
        read_in = self._read_in.get(previous.id, -1)
        later = range(read_in + 1, len(self._window_starts))
        exposed = [q for q in later if self._window_starts[q] <= old_place]
        if not exposed:
            return None
        firsts = [self._first_updated[q] for q in exposed]
        until = None if any(first is None for first in firsts) else max(f for f in firsts if f)
        return Stretch(old_place, until)


def list_contacts(fetch_page: FetchPage, start: str, page_size: int) -> list[LiveContact]:
    """Every contact at or after ``start`` once, in its newest version seen, ascending."""
    seen: dict[int, LiveContact] = {}
    log = _RequestLog()
    stretch: Stretch | None = Stretch(parse_timestamp(start, "date"), None)
    rereads = 0
    while stretch is not None and rereads <= MAX_REREADS:
        stretch = _read_stretch(fetch_page, stretch, page_size, seen, log)
        rereads += 1
    return sorted(seen.values(), key=lambda contact: (contact.updated, contact.id))


def _read_stretch(
    fetch_page: FetchPage,
    stretch: Stretch,
    page_size: int,
    seen: dict[int, LiveContact],
    log: _RequestLog,
) -> Stretch | None:
    """Read ``stretch`` into ``seen``; returns the stretch to read again, if any."""
    cursor = ListingCursor(utc_text(stretch.since), page_size)
    again: Stretch | None = None
    previous_answer: tuple[str, list[int]] | None = None
    while not cursor.done:
        request = cursor.next_request()
        request_index = log.started(cursor.date)
        page = fetch_page(request)
        log.answered(request_index, page)
        ids = [contact.id for contact in page]
        if ids and (request.date, ids) == previous_answer:
            raise BadResponseError(
                "the contact listing answered two different pages with the same contacts: "
                "the server seems to ignore `page`"
            )
        previous_answer = (request.date, ids)
        for contact in page:
            previous = seen.get(contact.id)
            if previous is not None and not _is_newer(contact, previous):
                continue
            if previous is not None:
                hidden = log.hidden_by_move(previous)
                if hidden is not None:
                    again = hidden.joined(again)
            seen[contact.id] = contact
            log.read(contact.id, request_index)
        updated = [parse_timestamp(contact.updated) for contact in page]
        cursor.record(updated)
        if stretch.until is not None and updated and updated[-1] > stretch.until:
            break
    return again


def _is_newer(contact: LiveContact, previous: LiveContact) -> bool:
    if contact.rev != previous.rev:
        return contact.rev > previous.rev
    return parse_timestamp(contact.updated) > parse_timestamp(previous.updated)


def keep_newest(found: dict[int, LiveContact], contact: LiveContact) -> None:
    """Put ``contact`` in ``found`` unless a newer version of it is there."""
    previous = found.get(contact.id)
    if previous is None or _is_newer(contact, previous):
        found[contact.id] = contact
