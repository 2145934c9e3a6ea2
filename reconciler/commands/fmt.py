"""``reconciler fmt``: rewrite the contacts files in canonical form, keeping every comment;
with ``--check``, change nothing and name the files that would change (exit 1 if any)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.commands.context import open_account_settings, report_problem_lines
from reconciler.commands.environment import Environment
from reconciler.core.errors import EXIT_ERROR, EXIT_OK, DesiredStateError, Problem
from reconciler.desired.canonical import FmtResult, format_directory

NOTHING_FORMATTED = "Nothing was formatted: fix the problems above first."
NOT_ALL_FORMATTED = (
    "The files of the accounts with problems were not formatted: fix the problems above first."
)


@dataclass(frozen=True, slots=True)
class FmtRequest:
    """The flags of one ``fmt`` run."""

    config_file: Path | None = None
    contacts_dir: Path | None = None
    check: bool = False
    # --account: the accounts whose files to format when several are configured; empty: all.
    accounts: tuple[str, ...] = ()


def run(request: FmtRequest, env: Environment) -> int:
    console = env.console
    check = request.check
    try:
        selected = open_account_settings(
            env,
            config_file=request.config_file,
            contacts_dir=request.contacts_dir,
            accounts=request.accounts,
        )
    except DesiredStateError as error:
        if not error.problems:
            raise
        report_problem_lines(env, error.problems, github=False, consequence=NOTHING_FORMATTED)
        return EXIT_ERROR
    results: list[FmtResult] = []
    problems: list[Problem] = []
    for settings in selected:
        try:
            results.append(
                format_directory(
                    settings.contacts_dir,
                    env.cwd,
                    check=check,
                    default_region=settings.config.phones.default_region,
                )
            )
        except DesiredStateError as error:
            if not error.problems:
                raise
            # Each account's files are formatted on their own: one account's problems leave
            # the others' files formatted, and are all named below.
            problems += error.problems
    result = FmtResult(
        changed=tuple(path for result in results for path in result.changed),
        unchanged=sum(result.unchanged for result in results),
        rebuilt=tuple(path for result in results for path in result.rebuilt),
    )
    if problems:
        consequence = NOTHING_FORMATTED if len(selected) == 1 else NOT_ALL_FORMATTED
        report_problem_lines(env, problems, github=False, consequence=consequence)
        return EXIT_ERROR
    for path in result.changed:
        console.out(f"would reformat {path}\n" if check else f"reformatted {path}\n")
    for path in result.rebuilt:
        verb = "would be" if check else "was"
        console.err(
            f"Warning: {path} {verb} written from its values, without its comments: the "
            "comment-keeping writer cannot rewrite it without changing a value.\n"
        )
    changed = len(result.changed)
    if check:
        console.out(
            f"{changed} file(s) would be reformatted, {result.unchanged} already canonical.\n"
        )
        return EXIT_ERROR if changed else EXIT_OK
    console.out(f"{changed} file(s) reformatted, {result.unchanged} already canonical.\n")
    return EXIT_OK
