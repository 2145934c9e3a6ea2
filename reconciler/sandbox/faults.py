"""Injected misbehaviour for the sandbox: rate limiting, latency, random 500s, writes that
commit and then fail, dropped connections, smaller page and batch caps, and text stored
otherwise than it was sent (``rewrite_spaces``, ``rewrite_truncate``, ``rewrite_case``).

Tests and demos use these to show that a client survives what a real service does on a
bad day. Every setting can be changed while the server runs (``/_sandbox/faults``)."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from reconciler.sandbox.stored_values import TEXT_CASES, TextRewrite

DEFAULT_PAGE_CAP = 100
DEFAULT_BULK_CAP = 100
RATE_WINDOW_SECONDS = 60.0


class FaultSettingError(ValueError):
    """A fault setting that does not exist or has the wrong type."""


@dataclass(frozen=True, slots=True)
class FaultSettings:
    """What to inject. Zero (or False) means "behave"."""

    rate_limit: int = 0
    retry_after: bool = False
    latency_ms: int = 0
    fail_rate: float = 0.0
    commit_then_fail: int = 0
    drop_connections: int = 0
    drop_after_commit: bool = False
    page_cap: int = DEFAULT_PAGE_CAP
    bulk_cap: int = DEFAULT_BULK_CAP
    # Text values of writes (standard fields and custom values) stored rewritten.
    rewrite_spaces: bool = False
    rewrite_truncate: int = 0
    rewrite_case: str = ""

    @property
    def text_rewrite(self) -> TextRewrite:
        return TextRewrite(self.rewrite_spaces, self.rewrite_truncate, self.rewrite_case)

    def updated_with(self, changes: Mapping[str, Any]) -> FaultSettings:
        """These settings with ``changes`` applied; raises FaultSettingError on a bad key."""
        known = {f.name: f.type for f in fields(self)}
        checked: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                raise FaultSettingError(
                    f"unknown fault {name!r}; known: {', '.join(sorted(known))}"
                )
            checked[name] = _checked_value(name, known[name], value)
        return replace(self, **checked)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _checked_value(name: str, type_name: object, value: object) -> object:
    if type_name == "bool":
        if not isinstance(value, bool):
            raise FaultSettingError(f"fault {name!r} takes true or false")
        return value
    if type_name == "str":
        if value not in TEXT_CASES:
            raise FaultSettingError(
                f"fault {name!r} takes one of {', '.join(repr(case) for case in TEXT_CASES)}"
            )
        return value
    if type_name == "float":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise FaultSettingError(f"fault {name!r} takes a number between 0 and 1")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FaultSettingError(f"fault {name!r} takes a whole number >= 0")
    if name in ("page_cap", "bulk_cap") and value < 1:
        raise FaultSettingError(f"fault {name!r} must be at least 1")
    return value


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after_seconds: int


class Faults:
    """The live fault state, shared by every request thread."""

    def __init__(self, initial: FaultSettings) -> None:
        self._initial = initial
        self._settings = initial
        self._lock = threading.Lock()
        self._accepted_at: deque[float] = deque()
        self._random = random.Random()

    @property
    def settings(self) -> FaultSettings:
        with self._lock:
            return self._settings

    def update(self, changes: Mapping[str, Any]) -> FaultSettings:
        with self._lock:
            self._settings = self._settings.updated_with(changes)
            if "rate_limit" in changes:
                self._accepted_at.clear()
            return self._settings

    def reset(self) -> None:
        """Back to what the server was started with, with a fresh rate-limit window."""
        with self._lock:
            self._settings = self._initial
            self._accepted_at.clear()

    def admit(self) -> RateDecision:
        """Count one request against the per-minute limit (a sliding 60-second window)."""
        with self._lock:
            limit = self._settings.rate_limit
            if limit <= 0:
                return RateDecision(allowed=True, retry_after_seconds=0)
            now = time.monotonic()
            while self._accepted_at and now - self._accepted_at[0] >= RATE_WINDOW_SECONDS:
                self._accepted_at.popleft()
            if len(self._accepted_at) < limit:
                self._accepted_at.append(now)
                return RateDecision(allowed=True, retry_after_seconds=0)
            wait = RATE_WINDOW_SECONDS - (now - self._accepted_at[0])
            return RateDecision(allowed=False, retry_after_seconds=max(1, int(wait + 0.999)))

    def should_fail_randomly(self) -> bool:
        with self._lock:
            rate = self._settings.fail_rate
            return rate > 0 and self._random.random() < rate

    def take_drop(self) -> bool:
        """True (once per count) when this request's connection is to be dropped."""
        with self._lock:
            if self._settings.drop_connections <= 0:
                return False
            self._settings = replace(
                self._settings, drop_connections=self._settings.drop_connections - 1
            )
            return True

    def take_commit_then_fail(self) -> bool:
        """True (once per count) when a committed bulk write is to be answered with a 500."""
        with self._lock:
            if self._settings.commit_then_fail <= 0:
                return False
            self._settings = replace(
                self._settings, commit_then_fail=self._settings.commit_then_fail - 1
            )
            return True


class RequestStats:
    """How many requests each route received; the control endpoints are not counted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_route: dict[str, int] = {}

    def count(self, route: str) -> None:
        with self._lock:
            self._by_route[route] = self._by_route.get(route, 0) + 1

    def reset(self) -> None:
        with self._lock:
            self._by_route.clear()

    def as_json(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": sum(self._by_route.values()), "by_route": dict(self._by_route)}
