"""``reconciler validate``: check the desired state without the network, and name every
problem as ``FILE:LINE:COL: message`` (also as a GitHub annotation on a pull request), then
every warning as ``FILE:LINE:COL: warning: message`` (which does not change the exit code)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.commands.context import open_settings, report_problem_lines
from reconciler.commands.environment import Environment
from reconciler.core.errors import EXIT_ERROR, EXIT_OK, DesiredStateError
from reconciler.desired.loader import load_desired_state
from reconciler.report.github import problem_count, wants_github_annotations


@dataclass(frozen=True, slots=True)
class ValidateRequest:
    """The flags of one ``validate`` run; ``output_format`` ``None`` lets the environment
    decide (GitHub Actions: annotations)."""

    config_file: Path | None = None
    contacts_dir: Path | None = None
    output_format: str | None = None


def run(request: ValidateRequest, env: Environment) -> int:
    """The problems on stdout and their count on stderr (exit 1), or one line saying how
    many contacts in how many files are valid; the warnings on stdout after either."""
    console = env.console
    github = wants_github_annotations(request.output_format, env.environ)
    try:
        # Masking follows output.mask_pii here too: a problem can quote a phone or email.
        settings = open_settings(
            env, config_file=request.config_file, contacts_dir=request.contacts_dir
        )
        state = load_desired_state(
            settings.contacts_dir, env.cwd, default_region=settings.config.phones.default_region
        )
    except DesiredStateError as error:
        if not error.problems:
            raise
        consequence = f"{problem_count(error.problems)}."
        report_problem_lines(env, error.problems, github=github, consequence=consequence)
        for warning in error.warnings:
            console.out(warning + "\n")
        return EXIT_ERROR
    files = len(state.files)
    console.out(
        f"{_counted(len(state.contacts), 'contact')} in {_counted(files, 'file')} "
        f"{'is' if len(state.contacts) == 1 else 'are'} valid.\n"
    )
    for phone_warning in state.warnings:
        console.out(f"{phone_warning}\n")
    return EXIT_OK


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
