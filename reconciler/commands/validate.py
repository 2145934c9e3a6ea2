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

from reconciler.commands.context import Settings, open_account_settings, report_problem_lines
from reconciler.commands.environment import Environment
from reconciler.core.errors import EXIT_ERROR, EXIT_OK, DesiredStateError, Problem
from reconciler.desired.loader import DesiredState, load_desired_state
from reconciler.report.github import problem_count, wants_github_annotations

VALIDATE_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class ValidateRequest:
    """The flags of one ``validate`` run: ``output_format`` ``text``, ``github`` or ``json``;
    ``None`` lets the environment decide (GitHub Actions: annotations)."""

    config_file: Path | None = None
    contacts_dir: Path | None = None
    output_format: str | None = None
    # --account: the accounts to check when several are configured; empty: all of them.
    accounts: tuple[str, ...] = ()


def run(request: ValidateRequest, env: Environment) -> int:
    """The problems on stdout and their count on stderr (exit 1), or one line saying how
    many contacts in how many files are valid; the warnings on stdout after either."""
    console = env.console
    document = request.output_format == "json"
    github = not document and wants_github_annotations(request.output_format, env.environ)
    try:
        # Masking follows output.mask_pii here too: a problem can quote a phone or email.
        selected = open_account_settings(
            env,
            config_file=request.config_file,
            contacts_dir=request.contacts_dir,
            accounts=request.accounts,
        )
    except DesiredStateError as error:
        if not error.problems:
            raise
        return _invalid(env, error.problems, error.warnings, github=github, document=document)
    states: list[tuple[str | None, DesiredState]] = []
    problems: list[Problem] = []
    warnings: list[Problem] = []
    # Every account is checked, so one run names every problem of the repository.
    for settings in selected:
        try:
            state = load_desired_state(
                settings.contacts_dir,
                env.cwd,
                default_region=settings.config.phones.default_region,
            )
        except DesiredStateError as error:
            if not error.problems:
                raise
            problems += error.problems
            warnings += error.warnings
            continue
        states.append((settings.account, state))
    if problems:
        accounts = _accounts(selected, states, problems)
        return _invalid(
            env, problems, warnings, github=github, document=document, accounts=accounts
        )
    if document:
        # Several accounts: the counts are their totals.
        contacts = sum(len(state.contacts) for _, state in states)
        files = sum(len(state.files) for _, state in states)
        found = [warning.as_problem() for _, state in states for warning in state.warnings]
        console.out(_document(contacts, files, (), found, _accounts(selected, states, ())))
        return EXIT_OK
    for account, state in states:
        files = len(state.files)
        of_account = "" if account is None else f'Account "{account}": '
        console.out(
            f"{of_account}{_counted(len(state.contacts), 'contact')} in "
            f"{_counted(files, 'file')} {'is' if len(state.contacts) == 1 else 'are'} valid.\n"
        )
        for phone_warning in state.warnings:
            console.out(f"{phone_warning}\n")
    return EXIT_OK


def _invalid(
    env: Environment,
    problems: Sequence[Problem],
    warnings: Sequence[Problem],
    *,
    github: bool,
    document: bool,
    accounts: list[dict[str, Any]] | None = None,
) -> int:
    consequence = f"{problem_count(problems)}."
    if document:
        env.console.out(_document(None, None, problems, warnings, accounts))
        env.console.err(consequence + "\n")
        return EXIT_ERROR
    report_problem_lines(env, problems, github=github, consequence=consequence)
    for warning in warnings:
        env.console.out(warning.warning_line() + "\n")
    return EXIT_ERROR


def _document(
    contacts: int | None,
    files: int | None,
    problems: Sequence[Problem],
    warnings: Sequence[Problem],
    accounts: list[dict[str, Any]] | None = None,
) -> str:
    """The validate result; the counts are ``null`` when the desired state did not load.
    With accounts configured, ``accounts`` holds each one's own counts and problems."""
    result: dict[str, Any] = {
        "format_version": VALIDATE_FORMAT_VERSION,
        "valid": not problems,
        "contacts": contacts,
        "files": files,
        "problems": [problem.to_json_dict() for problem in problems],
        "warnings": [warning.to_json_dict() for warning in warnings],
    }
    if accounts is not None:
        result["accounts"] = accounts
    return json.dumps(result, indent=2, ensure_ascii=False) + "\n"


def _accounts(
    selected: Sequence[Settings],
    states: Sequence[tuple[str | None, DesiredState]],
    problems: Sequence[Problem],
) -> list[dict[str, Any]] | None:
    """Each configured account's entry (``None`` without ``accounts:``): its contacts and
    files when its desired state loaded (else ``null``), and its own problems, those of the
    files under its contacts directory."""
    if not selected or selected[0].account is None:
        return None
    loaded = dict(states)
    entries: list[dict[str, Any]] = []
    for settings in selected:
        state = loaded.get(settings.account)
        root = settings.contacts_dir.absolute()
        own = [
            problem
            for problem in problems
            if _absolute(problem.path, settings.cwd).is_relative_to(root)
        ]
        entries.append(
            {
                "name": settings.account,
                "valid": state is not None and not own,
                "contacts": None if state is None else len(state.contacts),
                "files": None if state is None else len(state.files),
                "problems": [problem.to_json_dict() for problem in own],
            }
        )
    return entries


def _absolute(path: str, cwd: Path) -> Path:
    return (cwd / path).absolute()


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
