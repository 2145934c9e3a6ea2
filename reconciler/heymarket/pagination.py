"""Where the next page of ``POST /v2/contacts/list`` starts. Pure: no I/O.

The listing walks the account in ascending (``updated``, ``id``) order. A request names an
inclusive lower bound ``date`` and a ``page``: offset ``page * limit`` among the contacts at
or after ``date``. The server may cap ``limit`` silently, many contacts can share one
``updated`` second, and a contact written during the listing moves to its end.

The cursor keeps a *window*: the ``updated`` of the contacts read since ``date``, at their
offsets. After each page it moves ``date`` forward to a *boundary* of the window (a contact
whose ``updated`` is later than the one before it, so no contact of that second was read
before it), which keeps the part of the account both read and inside the window small: a
contact written meanwhile then leaves from outside the window and shifts nothing left to read.

Among the boundaries it takes the latest whose distance to the end of the window is a whole
number of pages, so the next page starts exactly at the first unread contact and nothing is
read twice: a quiet account costs ceil(N / page) + 1 requests. A smaller page can make the
distance whole; that is worth it when the previous page was short (the next one is probably
the empty page that ends the listing) or when it beats the alternative, restarting at the start
of the trailing run of one second and stepping ``page`` past it, which re-reads a few contacts
(de-duplicated by the caller).

Page size: the first page is asked for ``limit`` contacts; whatever it brings (fewer when the
server caps it, or when the account is that small) is asked for from then on, which the server
serves in full, so offsets are exact."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from reconciler.core.timestamps import utc_text
from reconciler.heymarket.parse import parse_timestamp


@dataclass(frozen=True, slots=True)
class PageRequest:
    date: str
    page: int
    limit: int

    def body(self) -> dict[str, object]:
        return {"limit": self.limit, "page": self.page, "date": self.date, "ascending": True}


class ListingCursor:
    """Decides each ``PageRequest`` from the ``updated`` values of the pages read so far."""

    def __init__(self, start: str, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._date = start
        self._date_moment = parse_timestamp(start, "date")
        self._page = 0
        self._limit = limit
        # The largest page the server is known to serve in full; None before the first page.
        self._page_size: int | None = None
        # The `updated` of the contact at each offset of the current window, as last read,
        # and the offsets where a strictly later second begins.
        self._window: list[datetime] = []
        self._boundaries: list[int] = []
        self.done = False

    @property
    def date(self) -> datetime:
        """The current inclusive lower bound of the window."""
        return self._date_moment

    def next_request(self) -> PageRequest:
        if self.done:
            raise RuntimeError("the listing is complete")
        return PageRequest(date=self._date, page=self._page, limit=self._limit)

    def record(self, updated: Sequence[datetime]) -> None:
        """Take the ``updated`` values of the page answering ``next_request()``, in order."""
        if not updated:
            self.done = True
            return
        if self._page_size is None:
            # Asking for at most this many from now on makes the server's page size exact.
            self._page_size = min(len(updated), self._limit)
        offset = self._page * self._limit
        window = self._window
        # What the server says now replaces whatever the window held at those offsets.
        del window[offset:]
        del self._boundaries[bisect.bisect_left(self._boundaries, offset) :]
        for index, moment in enumerate(updated, start=offset):
            if index == 0 or window[index - 1] < moment:
                self._boundaries.append(index)
            window.append(moment)
        self._advance(self._page_size, reached_end=len(updated) < self._limit)

    def _advance(self, page_size: int, *, reached_end: bool) -> None:
        consumed = len(self._window)
        run_start = self._boundaries[-1]
        overlap = (consumed - run_start) % page_size
        # Restarting at the trailing run re-reads `overlap` contacts; a boundary whose
        # distance to the end is a whole number of (possibly smaller) pages re-reads none.
        # After a short page the next one is probably empty and ends the listing, which only
        # a page that starts exactly past the end can be: then any smaller page will do.
        smallest_worth_it = 1 if reached_end else page_size - overlap + 1
        start, limit = run_start, page_size
        for candidate_limit in range(page_size, smallest_worth_it - 1, -1):
            aligned = next(
                (b for b in reversed(self._boundaries) if (consumed - b) % candidate_limit == 0),
                None,
            )
            if aligned is not None:
                start, limit = aligned, candidate_limit
                break
        self._limit = limit
        self._page = (consumed - start) // limit
        if start > 0:
            self._date_moment = self._window[start]
            self._date = utc_text(self._window[start])
            del self._window[:start]
            self._boundaries = [b - start for b in self._boundaries if b >= start]
