"""How a long listing or write says how far it is, where nobody watches a terminal (a CI log):
the text of a progress line and when the next one is due.

A line is due one interval after the operation began, then one interval after the last line:
never more than one line per interval, and none at all for an operation shorter than one
interval, so a fast run prints exactly what it printed before."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

# Seconds between two progress lines in a log: the one place this interval is set.
PROGRESS_INTERVAL_SECONDS: Final = 10.0

# A total worked out only when a line is printed (a listing asks the server for its count
# then, so a fast listing costs no extra request); ``None`` when it cannot be known.
Estimate = Callable[[], int | None]


class ProgressSink(Protocol):
    """Where an operation reports how far it is (the console, for a command run)."""

    def begin_progress(self) -> None:
        """A new operation starts now: the clock of its progress lines starts here."""

    def progress(
        self,
        label: str,
        done: int,
        total: int | None = None,
        *,
        unit: str = "",
        estimate: Estimate | None = None,
    ) -> None:
        """``done`` of ``total`` (or of ``estimate()``, approximately) so far."""

    def end_progress(self) -> None:
        """The operation is over, however it ended."""


def progress_text(
    label: str, done: int, total: int | None, *, unit: str = "", approximate: bool = False
) -> str:
    """``Writing: 3,000 of 10,000 changes``, ``Listing contacts: 40,000 of ~100,000``, or
    ``Listing contacts: 40,000 so far`` when the total is not known."""
    if total is None:
        words = [f"{done:,}", unit, "so far"]
    else:
        words = [f"{done:,} of {'~' if approximate else ''}{total:,}", unit]
    return f"{label}: {' '.join(word for word in words if word)}"


class Pacer:
    """When the next progress line of one operation is due, on a monotonic clock read by
    the caller (so tests move time themselves)."""

    def __init__(self, began: float, interval: float = PROGRESS_INTERVAL_SECONDS) -> None:
        self._began = began
        self._interval = interval
        self._next = began + interval

    def due(self, now: float) -> bool:
        """Whether a line is due at ``now``; if so, the next one is due an interval later."""
        if now < self._next:
            return False
        self._next = now + self._interval
        return True

    def elapsed(self, now: float) -> int:
        """Whole seconds since the operation began."""
        return int(now - self._began)
