"""Where a command talks to its user: output streams (all text through one filter), the
yes/no question, progress (a counter on a terminal, a line every few seconds in a log), and
Ctrl-C that lets the batch in flight finish."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import click

from reconciler.core.errors import ApprovalRequiredError
from reconciler.core.masking import KnownNames, mask_text
from reconciler.core.progress import Estimate, Pacer, progress_text
from reconciler.core.redaction import SecretScrubber, credential_values_in

NO_COLOR_VARIABLE = "NO_COLOR"
CONFIRM_QUESTION = "Do you want to apply these changes? Only 'yes' will be accepted:"


class OutputFilter:
    """The last step of every text a command prints, writes into the job summary or shows
    as an error: credential values never pass (whatever put them in the text), and with
    masking on neither do phones, emails and the names the run knows.

    One per command run, shared by its console and the CLI's error handler; the run turns
    masking on as soon as it knows it is wanted (flag or configuration), and adds names as
    it reads them."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._scrubber = SecretScrubber(secrets)
        self.masking = False
        self._names = KnownNames()

    @classmethod
    def for_environment(cls, environ: Mapping[str, str]) -> OutputFilter:
        return cls(credential_values_in(environ))

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Also keep these credential values out of everything printed."""
        self._scrubber.remember(*secrets)

    def mask_personal_data(self, names: Iterable[object] = ()) -> None:
        """Mask phones, emails and these names (and any added later) from now on."""
        self.masking = True
        self.add_names(names)

    def add_names(self, names: Iterable[object]) -> None:
        if self.masking:
            self._names = self._names.adding(names)

    def __call__(self, text: str) -> str:
        text = self._scrubber.scrub(text)
        return mask_text(text, self._names) if self.masking else text


@dataclass
class Console:
    """Where a run talks to its user. ``ask`` is only called when ``stdin_is_tty``.

    Whatever is given as ``out`` and ``err``, every text goes through ``screen`` first."""

    out: Callable[[str], None]
    err: Callable[[str], None]
    ask: Callable[[str], str]
    stdin_is_tty: bool = False
    stdout_is_tty: bool = False
    stderr_is_tty: bool = False
    screen: OutputFilter = field(default_factory=OutputFilter)
    # Monotonic seconds, for the pace of progress lines in a log.
    clock: Callable[[], float] = time.monotonic
    _progress_shown: bool = field(default=False, repr=False)
    _unfiltered: tuple[Callable[[str], None], Callable[[str], None]] = field(init=False, repr=False)
    _last_counter: str | None = field(default=None, repr=False)
    _pacer: Pacer | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        write_out, write_err = self.out, self.err
        self._unfiltered = (write_out, write_err)
        self.out = lambda text: write_out(self.screen(text))
        self.err = lambda text: write_err(self.screen(text))

    def for_people_on_stderr(self) -> Console:
        """This console with what it would print on stdout sent to stderr, for a run whose
        stdout carries one document for a script (``--format json``). Same filter, same
        questions; colour follows stderr."""
        write_err = self._unfiltered[1]
        return Console(
            out=write_err,
            err=write_err,
            ask=self.ask,
            stdin_is_tty=self.stdin_is_tty,
            stdout_is_tty=self.stderr_is_tty,
            stderr_is_tty=self.stderr_is_tty,
            screen=self.screen,
            clock=self.clock,
        )

    @classmethod
    def standard(cls, screen: OutputFilter | None = None) -> Console:
        def write(stream: Any) -> Callable[[str], None]:
            def emit(text: str) -> None:
                # click's echo: flushed, and colour codes dropped where the stream is not a
                # terminal (stdout on one, stderr piped).
                click.echo(text, file=stream, nl=False)

            return emit

        def ask(question: str) -> str:
            sys.stderr.write(question + " ")
            sys.stderr.flush()
            return sys.stdin.readline()

        return cls(
            out=write(sys.stdout),
            err=write(sys.stderr),
            ask=ask,
            stdin_is_tty=sys.stdin.isatty(),
            stdout_is_tty=sys.stdout.isatty(),
            stderr_is_tty=sys.stderr.isatty(),
            screen=screen or OutputFilter.for_environment(os.environ),
        )

    def begin_progress(self) -> None:
        """A long operation starts now (``core/progress.py``)."""
        self.end_progress()
        self._last_counter = None
        self._pacer = Pacer(self.clock())

    def progress(
        self,
        label: str,
        done: int,
        total: int | None = None,
        *,
        unit: str = "",
        estimate: Estimate | None = None,
    ) -> None:
        """On a terminal's stderr, a counter of a known total redrawn in place. Otherwise (a CI
        log, a pipe, or a listing whose total is only estimated), a line once a progress
        interval has passed, so a fast operation prints none."""
        if self.stderr_is_tty and total is not None:
            counter = progress_text(label, done, total, unit=unit)
            if counter == self._last_counter:
                return
            self._last_counter = counter
            self.err(f"\r{counter}")
            self._progress_shown = True
            if done >= total:
                self.end_progress()
            return
        now = self.clock()
        if self._pacer is None:
            self._pacer = Pacer(now)
        if not self._pacer.due(now):
            return
        approximate = False
        if total is None and estimate is not None:
            total = estimate()
            approximate = total is not None
        text = progress_text(label, done, total, unit=unit, approximate=approximate)
        self.err(f"{text} ({self._pacer.elapsed(now):,} s)\n")

    def end_progress(self) -> None:
        self._pacer = None
        if self._progress_shown:
            self.err("\n")
            self._progress_shown = False


class ConsoleStream(io.TextIOBase):
    """The console's stdout as a text stream, for code that prints to a file (the sandbox's
    banner): what it writes goes through the console's filter like everything else."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self._console = console

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._console.out(text)
        return len(text)


def confirm(console: Console, *, auto_approve: bool, what: str = "apply") -> None:
    """Raise ``ApprovalRequiredError`` (exit 3) unless approved."""
    if auto_approve:
        return
    if not console.stdin_is_tty:
        raise ApprovalRequiredError(
            f"{what} needs approval, and stdin is not a terminal to ask on: review the plan "
            "above and pass --auto-approve to proceed without asking. Nothing was written."
        )
    answer = console.ask(CONFIRM_QUESTION)
    if answer.strip() != "yes":
        raise ApprovalRequiredError(f"{what.capitalize()} cancelled.")


class GracefulInterrupt:
    """Ctrl-C while writing: note it and let the batch in flight finish; a second Ctrl-C
    aborts at once. Only the main thread can own signal handlers; elsewhere this is inert."""

    def __init__(self, console: Console) -> None:
        self.requested = False
        self._console = console

    def _handle(self, _signal: int, _frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self._console.end_progress()
        self._console.err(
            "Interrupt: stopping after the batch in flight (Ctrl-C again to abort).\n"
        )

    @contextlib.contextmanager
    def installed(self) -> Iterator[GracefulInterrupt]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self._handle)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


def wants_color(*, no_color: bool, environ: Mapping[str, str], is_tty: bool) -> bool:
    """Colour only on a terminal, and never with ``--no-color`` or a non-empty ``NO_COLOR``
    (no-color.org): escape codes in a CI log or a piped file are noise."""
    return is_tty and not no_color and not environ.get(NO_COLOR_VARIABLE)
