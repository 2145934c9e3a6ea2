"""Progress through the console: in a log (stderr not a terminal) a line every interval and
none for a fast operation; on a terminal a counter redrawn in place, never the same twice.
Time is a test's own clock: nothing sleeps."""

from __future__ import annotations

from reconciler.core.progress import PROGRESS_INTERVAL_SECONDS
from reconciler.report.console import Console, OutputFilter


class StepClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def console(
    *, tty: bool, clock: StepClock, screen: OutputFilter | None = None
) -> tuple[Console, list[str]]:
    printed: list[str] = []
    made = Console(
        out=printed.append,
        err=printed.append,
        ask=lambda _question: "",
        stderr_is_tty=tty,
        clock=clock,
        screen=screen or OutputFilter(),
    )
    return made, printed


def test_a_log_gets_one_line_per_interval_with_the_elapsed_time() -> None:
    clock = StepClock()
    log, printed = console(tty=False, clock=clock)
    log.begin_progress()
    for done in range(1, 101):
        clock.now += 0.25  # a batch every 0.25 s: 25 s in all
        log.progress("Writing", done * 100, 10_000, unit="changes")
    log.end_progress()
    interval = int(PROGRESS_INTERVAL_SECONDS)
    assert printed == [
        f"Writing: {n:,} of 10,000 changes ({s} s)\n"
        for n, s in [(4000, interval), (8000, 2 * interval)]
    ]


def test_a_fast_operation_prints_nothing_in_a_log() -> None:
    clock = StepClock()
    log, printed = console(tty=False, clock=clock)
    log.begin_progress()
    for done in range(1, 1001):
        clock.now += PROGRESS_INTERVAL_SECONDS / 1001
        log.progress("Writing", done, 1000, unit="changes")
    log.end_progress()
    assert printed == []


def test_the_estimate_is_asked_for_only_when_a_line_is_printed() -> None:
    clock = StepClock()
    log, printed = console(tty=False, clock=clock)
    asked: list[int] = []

    def estimate() -> int:
        asked.append(1)
        return 100_000

    log.begin_progress()
    for page in range(1, 251):
        clock.now += 0.125
        log.progress("Listing contacts", page * 100, estimate=estimate)
    assert printed == [
        "Listing contacts: 8,000 of ~100,000 (10 s)\n",
        "Listing contacts: 16,000 of ~100,000 (20 s)\n",
        "Listing contacts: 24,000 of ~100,000 (30 s)\n",
    ]
    assert len(asked) == 3
    log.end_progress()
    unknown, printed_unknown = console(tty=False, clock=clock)
    unknown.begin_progress()
    clock.now += PROGRESS_INTERVAL_SECONDS
    unknown.progress("Listing contacts", 40_000, estimate=lambda: None)
    assert printed_unknown == ["Listing contacts: 40,000 so far (10 s)\n"]


def test_a_new_operation_starts_its_own_interval() -> None:
    clock = StepClock()
    log, printed = console(tty=False, clock=clock)
    log.begin_progress()
    clock.now += 9
    log.progress("Writing", 1, 2, unit="changes")
    log.begin_progress()
    clock.now += 9
    log.progress("Deleting", 1, 2, unit="contacts")
    assert printed == []


def test_a_terminal_gets_a_counter_in_place_never_redrawn_unchanged() -> None:
    clock = StepClock()
    terminal, printed = console(tty=True, clock=clock)
    terminal.begin_progress()
    terminal.progress("Writing", 100, 200, unit="changes")
    terminal.progress("Writing", 200, 200, unit="changes")
    # Re-sent batches after an unknown outcome count nothing new: no new line each.
    terminal.progress("Writing", 200, 200, unit="changes")
    terminal.progress("Writing", 200, 200, unit="changes")
    terminal.end_progress()
    assert printed == [
        "\rWriting: 100 of 200 changes",
        "\rWriting: 200 of 200 changes",
        "\n",
    ]


def test_progress_lines_go_through_the_output_filter() -> None:
    clock = StepClock()
    screen = OutputFilter(["s3cr3t-label"])
    log, printed = console(tty=False, clock=clock, screen=screen)
    log.begin_progress()
    clock.now += PROGRESS_INTERVAL_SECONDS
    log.progress("s3cr3t-label", 1, 2)
    assert printed and all("s3cr3t-label" not in line for line in printed)


def test_a_terminal_gets_a_listing_without_a_total_as_paced_lines() -> None:
    clock = StepClock()
    terminal, printed = console(tty=True, clock=clock)
    terminal.begin_progress()
    for page in range(1, 121):
        clock.now += 0.125
        terminal.progress("Listing contacts", page * 100, estimate=lambda: 50_000)
    terminal.end_progress()
    assert printed == ["Listing contacts: 8,000 of ~50,000 (10 s)\n"]
