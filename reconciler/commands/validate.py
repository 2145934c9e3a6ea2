"""``reconciler validate``: check the desired state without the network, and name every
problem as ``FILE:LINE:COL: message`` (also as a GitHub annotation on a pull request), then
every warning as ``FILE:LINE:COL: warning: message`` (which does not change the exit code).
With ``--format json``, the same as one document (``schemas/validate-result.schema.json``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.commands.context import open_settings, report_problem_lines
from reconciler.commands.environment import Environment
from reconciler.core.errors import EXIT_ERROR, EXIT_OK, DesiredStateError, Problem
from reconciler.desired.loader import load_desired_state
from reconciler.report.github import problem_count, wants_github_annotations

VALIDATE_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class ValidateRequest:
    """The flags of one ``validate`` run: ``output_format`` ``text``, ``github`` or ``json``;
    ``None`` lets the environment decide (GitHub Actions: annotations)."""

    config_file: Path | None = None
    contacts_dir: Path | None = None
    output_format: str | None = None


def run(request: ValidateRequest, env: Environment) -> int:
    """The problems on stdout and their count on stderr (exit 1), or one line saying how
    many contacts in how many files are valid; the warnings on stdout after either."""
    console = env.console
    document = request.output_format == "json"
    github = not document and wants_github_annotations(request.output_format, env.environ)
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
        if document:
            console.out(_document(None, None, error.problems, error.warnings))
            console.err(consequence + "\n")
            return EXIT_ERROR
        report_problem_lines(env, error.problems, github=github, consequence=consequence)
        for warning in error.warnings:
            console.out(warning.warning_line() + "\n")
        return EXIT_ERROR
    files = len(state.files)
    if document:
        warnings = [warning.as_problem() for warning in state.warnings]
        console.out(_document(len(state.contacts), files, (), warnings))
        return EXIT_OK
    console.out(
        f"{_counted(len(state.contacts), 'contact')} in {_counted(files, 'file')} "
        f"{'is' if len(state.contacts) == 1 else 'are'} valid.\n"
    )
    for phone_warning in state.warnings:
        console.out(f"{phone_warning}\n")
    return EXIT_OK


def _document(
    contacts: int | None,
    files: int | None,
    problems: Sequence[Problem],
    warnings: Sequence[Problem],
) -> str:
    """The validate result; the counts are ``null`` when the desired state did not load."""
    result: dict[str, Any] = {
        "format_version": VALIDATE_FORMAT_VERSION,
        "valid": not problems,
        "contacts": contacts,
        "files": files,
        "problems": [problem.to_json_dict() for problem in problems],
        "warnings": [warning.to_json_dict() for warning in warnings],
    }
    return json.dumps(result, indent=2, ensure_ascii=False) + "\n"


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
