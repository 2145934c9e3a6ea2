"""``reconciler plan``: the desired state against the live account, rendered for a person,
a pull request or a script, and optionally saved for ``apply``.

The order is part of the contract: the configuration and the desired state are loaded
before any request, so a broken YAML file costs no API call and is reported in full. Plan
only reads the account. The outcome is returned as text; the CLI prints it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reconciler.commands.context import (
    PlanRun,
    Settings,
    cache_directory,
    connect,
    fetch_live_state,
    load_desired,
    make_plan,
    resolve_settings,
)
from reconciler.core.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, DesiredStateError
from reconciler.core.masking import contact_names
from reconciler.core.plan import Plan
from reconciler.core.proof import (
    SavedPlan,
)
from reconciler.core.redaction import credential_values_in
from reconciler.files.saved_plans import (
    current_provenance,
    write_saved_plan,
)
from reconciler.live.snapshot import Refresh
from reconciler.render import FORMATS, RenderOptions, render_plan
from reconciler.report.console import OutputFilter, wants_color
from reconciler.report.github import (
    NOTHING_PLANNED,
    STEP_SUMMARY_VARIABLE,
    append_step_summary,
    problem_report,
)


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


def run_plan(
    request: PlanRequest,
    *,
    environ: Mapping[str, str],
    cwd: Path,
    stdout_is_tty: bool,
    screen: OutputFilter | None = None,
) -> PlanOutcome:
    """One ``plan`` run. Everything it returns to print, and the job summary, has passed
    ``screen`` (the CLI's, so that an error raised here is printed masked too)."""
    if request.output_format not in FORMATS:
        raise ValueError(f"unknown plan format {request.output_format!r}")
    if screen is None:
        screen = OutputFilter()
    screen.add_secrets(credential_values_in(environ))
    if request.mask_pii:
        screen.mask_personal_data()
    try:
        settings = resolve_settings(
            config_file=request.config_file,
            contacts_dir=request.contacts_dir,
            api_url=request.api_url,
            environ=environ,
            cwd=cwd,
        )
        if settings.config.output.mask_pii:
            screen.mask_personal_data()
        desired = load_desired(settings)
    except DesiredStateError as error:
        if not error.problems:
            raise
        return PlanOutcome(
            stdout="",
            stderr=screen(problem_report(error.problems, NOTHING_PLANNED)),
            exit_code=EXIT_ERROR,
        )
    screen.add_names(contact_names(desired.contacts))

    with connect(settings, environ, insecure=request.insecure) as client:
        live = fetch_live_state(
            client, refresh=request.refresh, cache_dir=cache_directory(settings)
        )
    screen.add_names(contact_names(live.contacts))
    run = make_plan(desired, live, settings.config, prune=request.prune)

    options = render_options(request, settings, environ, is_tty=stdout_is_tty)
    rendered = render_plan(run.plan, request.output_format, options)
    stdout, stderr = rendered.stdout, rendered.stderr

    saved = None
    if request.out is not None:
        out = request.out if request.out.is_absolute() else cwd / request.out
        provenance = current_provenance(desired.contacts, settings.api_url, run.plan.marker, cwd)
        saved = write_saved_plan(out, run.plan, provenance)
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
        stderr += append_step_summary(summary, environ, screen=screen)

    return PlanOutcome(
        stdout=screen(stdout),
        stderr=screen(stderr),
        exit_code=plan_exit_code(run.plan, detailed=request.detailed_exitcode),
        run=run,
        saved=saved,
    )
