"""Client-side rate limiting, so a long listing stays under Heymarket's per-minute limit
instead of running into 429s."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

# A second more than the server's minute: the server counts arrivals, we count departures,
# and a request slowed in flight must not share a server window with one sent 60 s later.
WINDOW_SECONDS = 61.0


class SlidingWindowLimiter:
    """At most ``requests_per_minute`` requests in any window of a minute (plus a margin).

    A log of send times rather than a token bucket: a small run goes at full speed (no
    smoothing delay), and a long one waits exactly until the oldest request leaves the window.
    ``clock`` and ``sleep`` are injectable so tests can run minutes of traffic instantly."""

    def __init__(
        self,
        requests_per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        window: float = WINDOW_SECONDS,
    ) -> None:
        if requests_per_minute < 1:
            raise ValueError("requests_per_minute must be at least 1")
        self.requests_per_minute = requests_per_minute
        self._clock = clock
        self._sleep = sleep
        self._window = window
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self.waited = 0.0

    def acquire(self) -> None:
        """Block until one more request fits in the window, and record it."""
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and self._sent[0] <= now - self._window:
                    self._sent.popleft()
                if len(self._sent) < self.requests_per_minute:
                    self._sent.append(now)
                    return
                wait = self._sent[0] + self._window - now
                self.waited += wait
            # Sleep outside the lock so other threads can re-check when the window moves.
            self._sleep(wait)
