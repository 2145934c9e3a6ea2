"""How problems are reported: one `FILE:LINE:COL: message` line each, also as GitHub
workflow commands so they show inline on the pull request's diff; and the GitHub job
summary that plan and apply append to."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from reconciler.core.errors import Problem

STEP_SUMMARY_VARIABLE = "GITHUB_STEP_SUMMARY"
# What an invalid desired state means for plan and apply.
NOTHING_PLANNED = "nothing was planned and no request was made"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(problem: Problem) -> str:
    return (
        f"::error file={_escape_property(problem.path)},line={problem.line},"
        f"col={problem.column}::{_escape_data(problem.message)}"
    )


def wants_github_annotations(output_format: str | None, environ: Mapping[str, str]) -> bool:
    """``--format`` decides when given; otherwise GitHub Actions (GITHUB_ACTIONS=true) does."""
    if output_format is not None:
        return output_format == "github"
    return environ.get("GITHUB_ACTIONS") == "true"


def problem_lines(problems: Iterable[Problem], *, github: bool) -> list[str]:
    lines: list[str] = []
    for problem in problems:
        lines.append(str(problem))
        if github:
            lines.append(github_annotation(problem))
    return lines


def problem_count(problems: Sequence[Problem]) -> str:
    """``Found 3 problems in 2 files``."""
    files = len({problem.path for problem in problems})
    count = len(problems)
    return (
        f"Found {count} problem{'s' if count != 1 else ''} in {files} "
        f"file{'s' if files != 1 else ''}"
    )


def problem_report(problems: Sequence[Problem], consequence: str) -> str:
    """Every problem as ``FILE:LINE:COL: message``, then the count and what it meant; for
    stderr."""
    lines = problem_lines(problems, github=False)
    lines.append(f"{problem_count(problems)}; {consequence}.")
    return "".join(f"{line}\n" for line in lines)


def append_step_summary(
    markdown: str, environ: Mapping[str, str], *, screen: Callable[[str], str]
) -> str:
    """Append ``markdown``, passed through ``screen`` (the run's output filter: the summary
    is an output stream like stdout), to the GitHub job summary when ``GITHUB_STEP_SUMMARY``
    names a file. Returns a warning line for stderr when that fails: a summary is a
    convenience and must not fail a run that did its work."""
    target = environ.get(STEP_SUMMARY_VARIABLE, "").strip()
    if not target:
        return ""
    markdown = screen(markdown)
    try:
        with Path(target).open("a", encoding="utf-8") as summary:
            summary.write(markdown if markdown.endswith("\n") else markdown + "\n")
    except OSError as error:
        return (
            f"Warning: could not append the plan to {STEP_SUMMARY_VARIABLE} ({target}): "
            f"{error.strerror or error}.\n"
        )
    return ""
