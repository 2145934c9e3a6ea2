"""``reconciler plan``: the desired state against the live account, rendered for a person,
a pull request or a script, and optionally saved for ``apply``.

The order is part of the contract: the configuration and the desired state are loaded
before any request, so a broken YAML file costs no API call and is reported in full. Plan
only reads the account. The outcome is returned as text; the CLI prints it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reconciler.annotations import problem_lines
from reconciler.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, DesiredStateError
from reconciler.live_snapshot import Refresh
from reconciler.pipeline import (
    PlanRun,
    Settings,
    cache_directory,
    connect,
    fetch_live_state,
    load_desired,
    make_plan,
    resolve_settings,
)
from reconciler.plan import Plan
from reconciler.render import FORMATS, RenderOptions, render_plan
from reconciler.saved_plan import SavedPlan, desired_state_digest, write_saved_plan

STEP_SUMMARY_VARIABLE = "GITHUB_STEP_SUMMARY"
NO_COLOR_VARIABLE = "NO_COLOR"


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """The flags of one ``plan`` run."""

    config_file: Path | None = None
    contacts_dir: Path | None = None
    api_url: str | None = None
    output_format: str = "text"
    out: Path | None = None
    detailed_exitcode: bool = False
    prune: bool = False
    mask_pii: bool = False
    no_color: bool = False
    insecure: bool = False
    # "full" lists the whole account instead of what changed since the last snapshot.
    refresh: Refresh = "auto"


@dataclass(frozen=True, slots=True)
class PlanOutcome:
    """What to print and the exit code. ``run`` is ``None`` when no plan could be made
    (the desired state is invalid)."""

    stdout: str
    stderr: str
    exit_code: int
    run: PlanRun | None = None
    saved: SavedPlan | None = None


def wants_color(*, no_color: bool, environ: Mapping[str, str], is_tty: bool) -> bool:
    """Colour only on a terminal, and never with ``--no-color`` or a non-empty ``NO_COLOR``
    (no-color.org): escape codes in a CI log or a piped file are noise."""
    return is_tty and not no_color and not environ.get(NO_COLOR_VARIABLE)


def render_options(
    request: PlanRequest, settings: Settings, environ: Mapping[str, str], *, is_tty: bool
) -> RenderOptions:
    return RenderOptions(
        mask_pii=request.mask_pii or settings.config.output.mask_pii,
        color=wants_color(no_color=request.no_color, environ=environ, is_tty=is_tty),
    )


def plan_exit_code(plan: Plan, *, detailed: bool) -> int:
    """1 when the plan left contacts untouched for a human to sort out (so CI stops), else
    with ``--detailed-exitcode`` 2 for changes and 0 for none."""
    if plan.has_errors:
        return EXIT_ERROR
    if detailed and plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def desired_state_report(error: DesiredStateError) -> str:
    """Every problem as ``FILE:LINE:COL: message``, then a count; for stderr."""
    files = len({problem.path for problem in error.problems})
    count = len(error.problems)
    lines = problem_lines(error.problems, github=False)
    lines.append(
        f"Found {count} problem{'s' if count != 1 else ''} in {files} "
        f"file{'s' if files != 1 else ''}; nothing was planned and no request was made."
    )
    return "".join(f"{line}\n" for line in lines)


def append_step_summary(markdown: str, environ: Mapping[str, str]) -> str:
    """Append ``markdown`` to the GitHub job summary when ``GITHUB_STEP_SUMMARY`` names a
    file. Returns a warning line for stderr when that fails: a summary is a convenience and
    must not fail a plan that was made."""
    target = environ.get(STEP_SUMMARY_VARIABLE, "").strip()
    if not target:
        return ""
    try:
        with Path(target).open("a", encoding="utf-8") as summary:
            summary.write(markdown if markdown.endswith("\n") else markdown + "\n")
    except OSError as error:
        return (
            f"Warning: could not append the plan to {STEP_SUMMARY_VARIABLE} ({target}): "
            f"{error.strerror or error}.\n"
        )
    return ""


def run_plan(
    request: PlanRequest, *, environ: Mapping[str, str], cwd: Path, stdout_is_tty: bool
) -> PlanOutcome:
    if request.output_format not in FORMATS:
        raise ValueError(f"unknown plan format {request.output_format!r}")
    try:
        settings = resolve_settings(
            config_file=request.config_file,
            contacts_dir=request.contacts_dir,
            api_url=request.api_url,
            environ=environ,
            cwd=cwd,
        )
        desired = load_desired(settings)
    except DesiredStateError as error:
        if not error.problems:
            raise
        return PlanOutcome(stdout="", stderr=desired_state_report(error), exit_code=EXIT_ERROR)

    with connect(settings, environ, insecure=request.insecure) as client:
        live = fetch_live_state(
            client, refresh=request.refresh, cache_dir=cache_directory(settings)
        )
    run = make_plan(desired, live, settings.config, prune=request.prune)

    options = render_options(request, settings, environ, is_tty=stdout_is_tty)
    rendered = render_plan(run.plan, request.output_format, options)
    stdout, stderr = rendered.stdout, rendered.stderr

    saved = None
    if request.out is not None:
        out = request.out if request.out.is_absolute() else cwd / request.out
        saved = write_saved_plan(
            out,
            run.plan,
            desired_digest=desired_state_digest(desired.contacts),
            repository=cwd,
        )
        note = f"Saved the plan to {request.out}; apply it with `reconciler apply {request.out}`.\n"
        # In text mode stdout is for people; otherwise it is a document being piped.
        if request.output_format == "text":
            stdout += "\n" + note
        else:
            stderr += note

    if environ.get(STEP_SUMMARY_VARIABLE, "").strip():
        summary = (
            rendered.stdout
            if request.output_format == "markdown"
            else render_plan(run.plan, "markdown", options).stdout
        )
        stderr += append_step_summary(summary, environ)

    return PlanOutcome(
        stdout=stdout,
        stderr=stderr,
        exit_code=plan_exit_code(run.plan, detailed=request.detailed_exitcode),
        run=run,
        saved=saved,
    )
