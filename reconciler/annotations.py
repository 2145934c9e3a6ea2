"""Problems as GitHub workflow commands, so they show inline on the pull request's diff."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from reconciler.errors import Problem


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


def default_environ() -> Mapping[str, str]:
    return os.environ
