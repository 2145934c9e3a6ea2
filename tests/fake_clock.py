"""Time a test controls: the client's clock and sleep, and the jitter of its backoff."""

from __future__ import annotations

from collections.abc import Callable


class FakeClock:
    """Monotonic time that only moves when the client sleeps: minutes of backoff in no time."""

    def __init__(self, on_sleep: Callable[[float], object] | None = None) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []
        self._on_sleep = on_sleep

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.slept.append(seconds)
        self.now += seconds
        if self._on_sleep is not None:
            self._on_sleep(seconds)


def highest(low: float, high: float) -> float:
    """Full jitter at its upper end, so backoff sums are predictable."""
    return high
