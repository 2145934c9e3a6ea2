"""Where the next page of ``POST /v2/contacts/list`` starts. Pure: no I/O.

The listing walks the account in ascending (``updated``, ``id``) order. A request names an
inclusive lower bound ``date`` and a ``page`` (offset ``page * limit`` inside the contacts at
or after ``date``). The server may cap ``limit`` silently, many contacts can share one
``updated`` second, and contacts written during the listing move to its end.

The cursor keeps a *window*: the contacts read since ``date``, at their offsets. After each
page it moves ``date`` forward to a timestamp boundary inside the window (a contact whose
``updated`` is strictly later than the one before it), so the part of the account already read
and still inside the window stays small: a contact written meanwhile leaves the window without
shifting the offsets of what is left to read. Among the boundaries it takes the one whose
distance to the end of the window is a whole number of pages, so the next page starts exactly
at the first unread contact and no request is spent re-reading (static account: pages + 1
requests). When no such boundary exists (a run of contacts sharing one second, not aligned to a
page), it restarts at the start of that run and steps ``page`` past it; the few contacts read
twice are de-duplicated by the caller.

Page sizes: a page shorter than ``limit`` means either the server's cap or the end of the data.
Either way asking for exactly that many from then on makes the server's page size known, which
the offset arithmetic needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from reconciler.heymarket.parse import format_timestamp, parse_timestamp


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
        # The `updated` of the contact at each offset of the current window, as last read.
        self._window: list[datetime] = []
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
        offset = self._page * self._limit
        window = self._window
        # What the server says now replaces whatever the window held at those offsets.
        del window[offset:]
        window.extend(updated)
        if len(updated) < self._limit:
            self._limit = len(updated)
        self._advance()

    def _advance(self) -> None:
        window = self._window
        consumed = len(window)
        run_start = consumed - 1
        while run_start > 0 and window[run_start - 1] == window[run_start]:
            run_start -= 1
        # The last page boundary at or before the run, counted back from the end of the window.
        pages_back = -(-(consumed - run_start) // self._limit)
        aligned = consumed - pages_back * self._limit
        start = aligned if aligned >= 0 and self._is_boundary(aligned) else run_start
        self._page = (consumed - start) // self._limit
        if start > 0:
            self._date_moment = window[start]
            self._date = format_timestamp(window[start])
            del window[:start]

    def _is_boundary(self, offset: int) -> bool:
        """True when no contact before ``offset`` in the window shares its ``updated``: then
        the window can restart at that timestamp and keep the same offsets after it."""
        return offset == 0 or self._window[offset - 1] < self._window[offset]
