"""When to try a request again, and how long to wait first."""

from __future__ import annotations

import email.utils
import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Exponential backoff with full jitter: wait a random time in [0, min(cap, base * 2^n)).

    ``max_attempts_on_failure`` bounds retries of 5xx and connection errors, which a longer
    wait rarely cures (429s are bounded by the wait budget alone)."""

    base: float = 0.5
    cap: float = 30.0
    max_attempts_on_failure: int = 8

    def delay(self, retry_number: int, uniform: Callable[[float, float], float]) -> float:
        ceiling = min(self.cap, self.base * (2**retry_number))
        return uniform(0.0, ceiling)


def default_uniform(low: float, high: float) -> float:
    return random.uniform(low, high)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date).

    ``now`` is the current time in Unix seconds, best taken from the response's ``Date``
    header so a skewed local clock does not distort an HTTP-date. ``None`` when absent or
    unreadable; never negative."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def http_date_seconds(value: str | None) -> float | None:
    """Unix seconds of an HTTP ``Date`` header, or ``None``."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return when.timestamp()
