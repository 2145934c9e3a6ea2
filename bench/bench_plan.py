"""How long the local part of ``plan`` takes once the live state is fetched: diff, then each
renderer, for 10k and 100k contacts with 1% of them changed.

    .venv/bin/python bench/bench_plan.py [--sizes 10000 100000] [--repeat 3]

The diff must be linear: the last line prints the time ratio between the sizes, which should
stay close to the size ratio (10x)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TypeVar

from reconciler.core.diff import DiffSettings, diff
from reconciler.core.model import CustomField, DesiredContact, LiveContact, SourceLocation
from reconciler.core.plan import Plan
from reconciler.render import RenderOptions, render_plan

T = TypeVar("T")
MARKER_ID, TIER_ID = "1", "2"
FIELDS = (CustomField(MARKER_ID, "Managed by"), CustomField(TIER_ID, "Account tier"))
SETTINGS = DiffSettings(marker_field="Managed by", owner="bench")


def build(size: int) -> tuple[list[DesiredContact], list[LiveContact]]:
    """``size`` declared contacts and their live twins; every 100th differs (half of them in
    a field, half missing live so they are creates)."""
    desired: list[DesiredContact] = []
    live: list[LiveContact] = []
    for number in range(size):
        phone = f"1{number:010d}"
        desired.append(
            DesiredContact(
                phone=phone,
                fields={"first": f"First{number}", "last": "Smith", "email": f"c{number}@x.io"},
                custom={"Account tier": "gold"},
                source=SourceLocation(f"contacts/part{number // 1000}.yaml", number % 1000 + 2),
            )
        )
        changed = number % 100 == 0
        if changed and number % 200 == 0:
            continue
        live.append(
            LiveContact(
                id=number + 1,
                uuid=f"00000000-0000-4000-8000-{number:012d}",
                phone=phone,
                first=f"First{number}",
                last="Smyth" if changed else "Smith",
                display_name=None,
                email=f"C{number}@X.io",
                is_opted_out=False,
                custom={MARKER_ID: "bench", TIER_ID: "gold"},
                rev=1,
                updated="2024-01-01T00:00:00Z",
            )
        )
    return desired, live


def best_of(repeat: int, work: Callable[[], T]) -> tuple[float, T]:
    best = float("inf")
    result: T | None = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    assert result is not None
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()

    diff_times: dict[int, float] = {}
    print(f"{'contacts':>9} {'changes':>8} {'diff':>9} {'text':>9} {'markdown':>9} {'json':>9}")
    for size in arguments.sizes:
        desired, live = build(size)

        def run_diff(d: list[DesiredContact] = desired, lv: list[LiveContact] = live) -> Plan:
            return diff(d, lv, FIELDS, SETTINGS, prune=False)

        diff_seconds, plan = best_of(arguments.repeat, run_diff)
        diff_times[size] = diff_seconds
        render_seconds: list[float] = []
        for output_format in ("text", "markdown", "json"):

            def run_render(fmt: str = output_format, shown: Plan = plan) -> str:
                return render_plan(shown, fmt, RenderOptions()).stdout

            render_seconds.append(best_of(arguments.repeat, run_render)[0])
        columns = " ".join(f"{seconds * 1000:7.1f}ms" for seconds in render_seconds)
        print(f"{size:>9} {len(plan.changes):>8} {diff_seconds * 1000:7.1f}ms {columns}")

    sizes = sorted(diff_times)
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        print(
            f"diff time ratio {large}/{small} contacts: "
            f"{diff_times[large] / diff_times[small]:.1f}x for {large / small:.0f}x the contacts"
        )


if __name__ == "__main__":
    main()
