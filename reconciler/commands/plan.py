"""``reconciler plan``: the desired state against the live account, rendered for a person,
a pull request or a script, and optionally saved for ``apply``.

The order is part of the contract: the configuration and the desired state are loaded
before any request, so a broken YAML file costs no API call and is reported in full. Plan
only reads the account."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.commands.context import (
    cache_directory,
    fetch_live_state,
    load_inputs,
    make_plan,
    render_options,
    resolve_targets,
)
from reconciler.commands.environment import Environment
from reconciler.core.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK
from reconciler.core.masking import contact_names
from reconciler.core.plan import Plan
from reconciler.execute.journal import JOURNAL_FILE
from reconciler.files.saved_plans import (
    current_provenance,
    write_saved_plan,
)
from reconciler.live.snapshot import Refresh
from reconciler.render import FORMATS, render_plan
from reconciler.report.github import STEP_SUMMARY_VARIABLE, append_step_summary


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
    # --target, as typed (empty: everything).
    targets: tuple[str, ...] = ()
    mask_pii: bool = False
    no_color: bool = False
    insecure: bool = False
    # "full" lists the whole account instead of what changed since the last snapshot.
    refresh: Refresh = "auto"


def plan_exit_code(plan: Plan, *, detailed: bool) -> int:
    """1 when the plan left contacts untouched for a human to sort out (so CI stops), else
    with ``--detailed-exitcode`` 2 for changes and 0 for none."""
    if plan.has_errors:
        return EXIT_ERROR
    if detailed and plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def run(request: PlanRequest, env: Environment) -> int:
    """One ``plan`` run: the rendered plan on stdout (its warnings on stderr), the job
    summary when GitHub asks for one; returns the exit code."""
    if request.output_format not in FORMATS:
        raise ValueError(f"unknown plan format {request.output_format!r}")
    console = env.console
    inputs = load_inputs(
        env,
        config_file=request.config_file,
        contacts_dir=request.contacts_dir,
        api_url=request.api_url,
        mask_pii=request.mask_pii,
    )
    if inputs is None:
        return EXIT_ERROR
    settings, desired = inputs.settings, inputs.desired
    targets = resolve_targets(settings, desired, request.targets)

    with env.connect_client(settings, env.environ, request.insecure) as client:
        live = fetch_live_state(
            client, refresh=request.refresh, cache_dir=cache_directory(settings)
        )
    console.screen.add_names(contact_names(live.contacts))
    plan = make_plan(
        desired,
        live,
        settings.config,
        prune=request.prune,
        journal=env.cwd / JOURNAL_FILE,
        targets=targets,
    ).plan

    options = render_options(
        env, mask=inputs.masks(mask_pii=request.mask_pii), no_color=request.no_color
    )
    rendered = render_plan(plan, request.output_format, options)
    note = ""
    if request.out is not None:
        # Saved before anything is shown: a plan that cannot be saved is only an error.
        out = request.out if request.out.is_absolute() else env.cwd / request.out
        provenance = current_provenance(desired.contacts, settings.api_url, plan.marker, env.cwd)
        write_saved_plan(out, plan, provenance)
        note = f"Saved the plan to {request.out}; apply it with `reconciler apply {request.out}`.\n"
    console.out(rendered.stdout)
    console.err(rendered.stderr)
    # In text mode stdout is for people; otherwise it is a document being piped.
    if note and request.output_format == "text":
        console.out("\n" + note)
    elif note:
        console.err(note)

    if env.environ.get(STEP_SUMMARY_VARIABLE, "").strip():
        summary = (
            rendered.stdout
            if request.output_format == "markdown"
            else render_plan(plan, "markdown", options).stdout
        )
        console.err(append_step_summary(summary, env.environ, screen=console.screen))

    return plan_exit_code(plan, detailed=request.detailed_exitcode)
