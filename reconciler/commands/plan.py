"""``reconciler plan``: the desired state against the live account, rendered for a person,
a pull request or a script, and optionally saved for ``apply``.

The order is part of the contract: the configuration and the desired state are loaded
before any request, so a broken YAML file costs no API call and is reported in full. Plan
only reads the account."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.commands.accounts import check_targets_select, read_targets_of_accounts
from reconciler.commands.context import (
    Inputs,
    cache_directory,
    fetch_live_state,
    journal_file,
    load_account_inputs,
    make_plan,
    render_options,
    resolve_targets,
)
from reconciler.commands.environment import Environment
from reconciler.core.accounts import AccountPlan
from reconciler.core.errors import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    ReconcilerError,
    worst_exit_code,
)
from reconciler.core.masking import contact_names
from reconciler.core.plan import Plan
from reconciler.core.targets import Targets
from reconciler.desired.targets import AccountTargets
from reconciler.files.saved_plans import (
    current_provenance,
    write_saved_plan,
    write_saved_plans,
)
from reconciler.live.snapshot import Refresh
from reconciler.render import FORMATS, Rendered, render_plan
from reconciler.render.accounts import render_account_plans
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
    # --account: the accounts to plan when several are configured; empty: all of them.
    accounts: tuple[str, ...] = ()


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
    summary when GitHub asks for one; returns the exit code. With several accounts, a
    section per account, and the worst of their exit codes."""
    if request.output_format not in FORMATS:
        raise ValueError(f"unknown plan format {request.output_format!r}")
    selected = load_account_inputs(
        env,
        config_file=request.config_file,
        contacts_dir=request.contacts_dir,
        api_url=request.api_url,
        mask_pii=request.mask_pii,
        accounts=request.accounts,
        document=request.output_format == "json",
        announce=True,
    )
    if selected is None:
        return EXIT_ERROR
    if len(selected) == 1 and selected[0].settings.account is None:
        return _plan_one(request, env, selected[0])
    return _plan_accounts(request, env, selected)


def _derive(
    request: PlanRequest, env: Environment, inputs: Inputs, targets: Targets | None = None
) -> Plan:
    """One account's plan; ``targets``: those of an account of several, read already."""
    settings = inputs.settings
    of_several = targets is not None
    if targets is None:
        # Read against the desired state before any request: a target that names nothing
        # costs no API call.
        targets = resolve_targets(settings, inputs.desired, request.targets)
    with env.connect_client(settings, env.environ, request.insecure) as client:
        live = fetch_live_state(
            client,
            refresh=request.refresh,
            cache_dir=cache_directory(settings),
            progress=env.console,
        )
    env.console.screen.add_names(contact_names(live.contacts))
    return make_plan(
        inputs.desired,
        live,
        settings.config,
        prune=request.prune,
        journal=journal_file(settings),
        account=settings.account,
        targets=targets,
        of_several=of_several,
    ).plan


def _save(request: PlanRequest, env: Environment, inputs: Inputs, plan: Plan) -> str:
    """With ``--out``, the plan written with its provenance, and the note that says so."""
    if request.out is None:
        return ""
    settings = inputs.settings
    out = request.out if request.out.is_absolute() else env.cwd / request.out
    provenance = current_provenance(
        inputs.desired.contacts, settings.api_url, plan.marker, env.cwd, settings.account
    )
    write_saved_plan(out, plan, provenance)
    again = f"reconciler apply {request.out}"
    if settings.account is not None:
        again = f"reconciler apply --account {settings.account} {request.out}"
    return f"Saved the plan to {request.out}; apply it with `{again}`.\n"


def _save_accounts(
    request: PlanRequest,
    env: Environment,
    selected: Sequence[Inputs],
    plans: list[AccountPlan],
    failed: Sequence[str],
) -> str:
    """With ``--out``, every account's plan in one file, each with its own provenance (and
    targets); no file unless every selected account was planned (apply proves each
    account's plan). An account the targets select nothing in has no plan in it."""
    if request.out is None:
        return ""
    planned = {name for name, _ in plans}
    selected = [inputs for inputs in selected if inputs.settings.account in planned]
    if failed:
        env.console.err(
            f"Error: the plan was not saved to {request.out}: account {', '.join(failed)} "
            "could not be planned.\n"
        )
        return ""
    if len(plans) == 1:
        return _save(request, env, selected[0], plans[0][1])
    out = request.out if request.out.is_absolute() else env.cwd / request.out
    write_saved_plans(
        out,
        [
            (
                name,
                plan,
                current_provenance(
                    inputs.desired.contacts, inputs.settings.api_url, plan.marker, env.cwd, name
                ),
            )
            for inputs, (name, plan) in zip(selected, plans, strict=True)
        ],
    )
    return (
        f"Saved the plans of {len(plans)} accounts to {request.out}; apply them with "
        f"`reconciler apply {request.out}`.\n"
    )


def _show(
    request: PlanRequest,
    env: Environment,
    rendered: Rendered,
    note: str,
    as_markdown: Callable[[], str],
) -> None:
    """The rendered plan on stdout and stderr, where it was saved, and, when GitHub asks for
    a job summary, the plan as markdown appended to it."""
    console = env.console
    console.out(rendered.stdout)
    console.err(rendered.stderr)
    _say_saved(request, env, note)
    if env.environ.get(STEP_SUMMARY_VARIABLE, "").strip():
        summary = rendered.stdout if request.output_format == "markdown" else as_markdown()
        console.err(append_step_summary(summary, env.environ, screen=console.screen))


def _say_saved(request: PlanRequest, env: Environment, note: str) -> None:
    # In text mode stdout is for people; otherwise it is a document being piped.
    if note and request.output_format == "text":
        env.console.out("\n" + note)
    elif note:
        env.console.err(note)


def _plan_one(request: PlanRequest, env: Environment, inputs: Inputs) -> int:
    plan = _derive(request, env, inputs)

    options = render_options(
        env, mask=inputs.masks(mask_pii=request.mask_pii), no_color=request.no_color
    )
    rendered = render_plan(plan, request.output_format, options)
    # Saved before anything is shown: a plan that cannot be saved is only an error.
    note = _save(request, env, inputs, plan)
    _show(request, env, rendered, note, lambda: render_plan(plan, "markdown", options).stdout)
    return plan_exit_code(plan, detailed=request.detailed_exitcode)


def _plan_accounts(request: PlanRequest, env: Environment, selected: Sequence[Inputs]) -> int:
    """Every selected account is planned, and reported, even when another one fails (its
    credentials refused, its server down): that account's error is said on stderr and
    counts in the exit code."""
    console = env.console
    # Each target read in each account before any request: one that reads in none is an error.
    readings = read_targets_of_accounts(request.targets, selected) if request.targets else {}
    plans: list[AccountPlan] = []
    failed: list[str] = []
    codes: list[int] = []
    for inputs in selected:
        name = str(inputs.settings.account)
        targets = readings[name].targets if readings else None
        if targets is not None and not targets.shown:
            # No request to an account the targets select nothing in.
            console.err(_nothing_selected(name))
            continue
        try:
            plan = _derive(request, env, inputs, targets)
        except ReconcilerError as error:
            console.err(f"Error: account {name}: {error}\n")
            codes.append(error.exit_code)
            failed.append(name)
            continue
        plans.append((name, plan))
        codes.append(plan_exit_code(plan, detailed=request.detailed_exitcode))
    if readings:
        plans = _selected_plans(request, env, readings, plans, failed=failed)

    mask = any(inputs.masks(mask_pii=request.mask_pii) for inputs in selected)
    options = render_options(env, mask=mask, no_color=request.no_color)
    if plans:
        rendered = render_account_plans(plans, request.output_format, options)
        note = _save_accounts(request, env, selected, plans, failed)
        _show(
            request,
            env,
            rendered,
            note,
            lambda: render_account_plans(plans, "markdown", options).stdout,
        )
    if failed:
        # Said last, so a reader of the plans above does not take them for every account's.
        console.err(f"Not planned: account {', '.join(failed)} (see the error above).\n")
    return worst_exit_code(codes)


def _selected_plans(
    request: PlanRequest,
    env: Environment,
    readings: Mapping[str, AccountTargets],
    plans: list[AccountPlan],
    *,
    failed: Sequence[str],
) -> list[AccountPlan]:
    """The plans of the accounts the targets select something in (the others are said on
    stderr and left out); a target that selects nothing in any account is an error, as for
    one account (unless an account could not be planned: the run fails already)."""
    if not failed:
        check_targets_select(
            request.targets, readings, {name: plan.targets for name, plan in plans}
        )
    kept: list[AccountPlan] = []
    for name, plan in plans:
        if plan.targets:
            kept.append((name, plan))
        else:
            env.console.err(_nothing_selected(name))
    return kept


def _nothing_selected(name: str) -> str:
    return f"Note: account {name}: the targets select nothing in it; it is left out.\n"
