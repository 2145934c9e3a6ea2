"""``reconciler apply``: execute a plan against the live account, carefully.

The order of a run is the contract (ARCHITECTURE.md, "The safety model for deletes" and
"Apply semantics"):

1. take ``.reconciler/lock``; load the configuration and the desired state (an error there:
   exit 1, no request made);
2. read the live account and derive the plan; with a saved plan file, prove the file's
   changes equal the derived ones (``core.proof``): any difference -> exit 3, nothing
   written, and the derived plan is what runs;
3. with ``--prune``, check the caps: over one -> exit 3, nothing written at all;
4. show the plan; ask for ``yes`` unless ``--auto-approve`` (no terminal: exit 3);
5. create the missing custom fields, then creates and updates in full batches; a batch whose
   outcome is unknown is re-read and only what is still missing or different is sent again,
   so a contact is never created twice;
6. prune, only if every earlier step succeeded: re-read the contacts to delete (each must be
   unchanged and still owned), write and fsync the backup, delete, and verify by searching
   that they are gone;
7. journal every change after the server's answer; print the summary.

Ctrl-C during the writes stops after the batch in flight, with the journal written (exit
130); running apply again converges. Any doubt about a delete resolves to not deleting."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.commands.accounts import check_targets_select, read_targets_of_accounts
from reconciler.commands.apply_accounts import accounts_planned, apply_accounts, single_plan
from reconciler.commands.context import (
    Inputs,
    Settings,
    cache_directory,
    fetch_live_state,
    journal_file,
    load_account_inputs,
    locked,
    make_plan,
    render_options,
    resolve_targets,
)
from reconciler.commands.environment import Environment
from reconciler.commands.run_result import (
    Publish,
    account_entry,
    accounts_result,
    for_document,
    result_document,
)
from reconciler.core.errors import (
    EXIT_ERROR,
    EXIT_OK,
    ApplyInterruptedError,
    PruneMismatchError,
    ReconcilerError,
    StalePlanError,
    TargetError,
)
from reconciler.core.masking import contact_names
from reconciler.core.model import CustomField
from reconciler.core.plan import Create, Plan, Summary, Update, check_prune_caps
from reconciler.core.proof import (
    Provenance,
    SavedPlan,
    plan_differences,
    provenance_differences,
)
from reconciler.core.targets import Targets
from reconciler.desired.targets import AccountTargets
from reconciler.execute import Executor, Tally
from reconciler.execute.executor import executing
from reconciler.files.lock import DEFAULT_WAIT_SECONDS
from reconciler.files.saved_plans import (
    current_provenance,
    read_saved_plans,
)
from reconciler.live.snapshot import Refresh
from reconciler.render import RenderOptions, render_plan
from reconciler.report.console import Console, confirm
from reconciler.report.github import STEP_SUMMARY_VARIABLE, append_step_summary

# --- apply -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplyRequest:
    """The flags of one ``apply`` run."""

    plan_file: Path | None = None
    config_file: Path | None = None
    contacts_dir: Path | None = None
    api_url: str | None = None
    auto_approve: bool = False
    prune: bool = False
    max_deletes: int | None = None
    # --target, as typed (empty: everything; a saved plan carries its own).
    targets: tuple[str, ...] = ()
    mask_pii: bool = False
    no_color: bool = False
    insecure: bool = False
    lock_timeout: float = DEFAULT_WAIT_SECONDS
    # "full" lists the whole account instead of what changed since the last snapshot.
    refresh: Refresh = "auto"
    # "json": the plan and progress on stderr, one result document on stdout.
    output_format: str = "text"
    # --account: the accounts to apply when several are configured; empty: all of them.
    accounts: tuple[str, ...] = ()


def _check_prune_intent(request: ApplyRequest, saved: SavedPlan) -> None:
    """A saved plan is applied with the --prune it was reviewed with, or not at all."""
    if saved.prune == request.prune:
        return
    if saved.prune:
        raise PruneMismatchError(
            f"{request.plan_file} was planned with --prune (it may delete contacts) but "
            "apply was run without it. Pass --prune to apply it, or make a plan without "
            "--prune."
        )
    raise PruneMismatchError(
        f"apply --prune was asked for, but {request.plan_file} was planned without "
        "--prune, so the deletes were never reviewed. Make the plan with --prune, or "
        "apply without --prune."
    )


def _prove_saved_plan(
    request: ApplyRequest,
    saved: SavedPlan,
    derived: Plan,
    current: Provenance,
    console: Console,
    *,
    mask: bool,
) -> None:
    """Raise ``StalePlanError`` unless the saved changes are exactly the derived ones, for
    the same account and owner. The derived plan is made with today's config, so caps,
    protect and ownership are today's; the file is only compared, never executed."""
    again = "Make a new plan (`reconciler plan --out FILE`), review it, and apply that."
    since = provenance_differences(saved.provenance, current)
    what_changed = f" Since it was saved: {'; '.join(since)}." if since else ""
    if saved.provenance.target != current.target:
        raise StalePlanError(
            f"{request.plan_file} was made for another account or owner, so nothing was "
            f"written.{what_changed} {again}"
        )
    differences = plan_differences(saved, derived, mask=mask)
    if not differences:
        return
    for difference in differences:
        console.err(f"  ~ {difference}\n")
    count = len(differences)
    raise StalePlanError(
        f"{request.plan_file} is not the plan apply derives now ({count} "
        f"difference{'' if count == 1 else 's'} above), so nothing was written."
        f"{what_changed} {again}"
    )


@contextlib.contextmanager
def _saved_targets_proven(request: ApplyRequest, saved: SavedPlan | None) -> Iterator[None]:
    """A saved plan's target that selects nothing today makes the file stale (exit 3), as
    any other difference from the plan derived now does."""
    try:
        yield
    except TargetError as error:
        if saved is None:
            raise
        raise StalePlanError(
            f"{request.plan_file} was planned for targets that no longer hold ({error}), so "
            "nothing was written. Make a new plan (`reconciler plan --target T --out FILE`), "
            "review it, and apply that."
        ) from None


def _show_plan(plan: Plan, console: Console, options: RenderOptions) -> None:
    rendered = render_plan(plan, "text", options)
    console.out(rendered.stdout)
    if rendered.stderr:
        console.err(rendered.stderr)


def _report(
    tally: Tally, console: Console, *, mask: bool, verb: str, state: str = "complete"
) -> None:
    report_failures(tally, console, mask=mask)
    console.out(tally.summary(verb, state) + "\n")


def _step_summary(
    tally: Tally,
    environ: Mapping[str, str],
    screen: Callable[[str], str],
    *,
    mask: bool,
    verb: str,
    account: str | None = None,
) -> str:
    if not environ.get(STEP_SUMMARY_VARIABLE, "").strip():
        return ""
    of_account = "" if account is None else f": account `{account}`"
    lines = [
        f"### reconciler {verb.lower()}{of_account}",
        "",
        "| created | updated | deleted | failed |",
        "|---:|---:|---:|---:|",
        f"| {tally.created} | {tally.updated} | {tally.deleted} | {len(tally.failures)} |",
    ]
    if tally.backup is not None:
        lines += ["", f"Prune backup: `{tally.backup}`"]
    if tally.failures:
        lines += ["", "Failed:", ""]
        lines += [f"- {failure.line(mask=mask)}" for failure in tally.failures]
    return append_step_summary("\n".join(lines) + "\n", environ, screen=screen)


def report_failures(tally: Tally, console: Console, *, mask: bool) -> None:
    """The notes and failed changes of a run, one line each on stderr (apply and restore)."""
    for note in tally.notes:
        console.err(f"Note: {note}\n")
    for failure in tally.failures:
        console.err(f"Failed: {failure.line(mask=mask)}\n")


def run(request: ApplyRequest, env: Environment) -> int:
    """One ``apply`` run; returns the exit code (guards and errors raise)."""
    document, env = for_document(env, request.output_format)
    with locked(
        env, command="apply", wait_seconds=request.lock_timeout, config_file=request.config_file
    ):
        return _apply_locked(request, env, env.now(), document)


def _apply_locked(
    request: ApplyRequest,
    env: Environment,
    started_at: datetime,
    document: Publish | None,
) -> int:
    selected = load_account_inputs(
        env,
        config_file=request.config_file,
        contacts_dir=request.contacts_dir,
        api_url=request.api_url,
        mask_pii=request.mask_pii,
        accounts=request.accounts,
        document=document is not None,
    )
    if selected is None:
        return EXIT_ERROR
    file = request.plan_file
    saved = read_saved_plans(_absolute(file, env.cwd)) if file is not None else {}
    if len(selected) == 1 and selected[0].settings.account is None:
        plan = single_plan(file, saved)
        return _apply_account(request, env, started_at, selected[0], plan, document)
    readings: dict[str, AccountTargets] = {}
    if file is not None:
        selected = accounts_planned(file, saved, selected, named=request.accounts)
    elif request.targets:
        # Each target read in each account; one that selects nothing in any of them is an
        # error before anything is written.
        readings = read_targets_of_accounts(request.targets, selected)
        _check_targets_select_live(request, env, selected, readings)
    entries: list[dict[str, Any]] = []
    # The accounts the targets select nothing in: said so in the closing line, not "applied".
    left_out: set[str] = set()

    def apply_one(inputs: Inputs, plan: SavedPlan | None) -> int:
        name = str(inputs.settings.account)
        targets = readings[name].targets if readings else None
        if targets is not None and not targets.shown:
            # No request to an account the targets select nothing in.
            left_out.add(name)
            env.console.out(_NOTHING_SELECTED)
            nothing = _result(request, env.cwd, inputs.settings, Tally(), Summary(0, 0, 0, 0), 0)
            entries.append(account_entry(name, EXIT_OK, nothing))
            return EXIT_OK

        def leave_out() -> None:
            left_out.add(name)

        if document is None:
            return _apply_account(request, env, started_at, inputs, plan, None, targets, leave_out)
        results: list[dict[str, Any]] = []
        try:
            code = _apply_account(
                request, env, started_at, inputs, plan, results.append, targets, leave_out
            )
        except ReconcilerError as error:
            entries.append(account_entry(name, error.exit_code, None, str(error)))
            raise
        entries.append(account_entry(name, code, results[0] if results else None))
        return code

    code = apply_accounts(selected, saved, env.console, apply_one, left_out=left_out)
    if document is not None:
        document(
            accounts_result(
                "apply",
                entries,
                cwd=env.cwd,
                journal=journal_file(selected[0].settings),
                saved_plan=None if file is None else str(file),
                prune=request.prune,
            )
        )
    return code


_NOTHING_SELECTED = "The targets select nothing in this account; nothing to apply.\n"


def _result(
    request: ApplyRequest,
    cwd: Path,
    settings: Settings,
    tally: Tally,
    summary: Summary,
    plan_errors: int,
    mask: bool = False,
) -> dict[str, Any]:
    """The result document of one account's apply (``run_result``)."""
    return result_document(
        "apply",
        tally,
        mask=mask,
        cwd=cwd,
        journal=journal_file(settings),
        backup=tally.backup,
        saved_plan=None if request.plan_file is None else str(request.plan_file),
        prune=request.prune,
        plan=summary.to_json_dict(),
        plan_errors=plan_errors,
    )


def _check_targets_select_live(
    request: ApplyRequest,
    env: Environment,
    selected: Sequence[Inputs],
    readings: Mapping[str, AccountTargets],
) -> None:
    """A phone target declared in none of the accounts it reads in must be live in one of
    them: those accounts are read (and their snapshots kept) before anything is written.
    An account that cannot be read is taken as selecting it: its own apply reports why."""
    kept: dict[str, set[str]] = {}
    for inputs in selected:
        name = str(inputs.settings.account)
        reading = readings[name]
        declared = {contact.phone for contact in inputs.desired.contacts}
        kept[name] = {
            label
            for label in reading.targets.shown
            if label not in reading.targets.phones or label in declared
        }
    pending = [
        target
        for target in request.targets
        if not any(r.labels.get(target) in kept[name] for name, r in readings.items())
    ]
    if not pending:
        return
    for inputs in selected:
        name = str(inputs.settings.account)
        reading = readings[name]
        wanted = {reading.labels[t] for t in pending if t in reading.labels}
        if not wanted:
            continue
        try:
            with env.connect_client(inputs.settings, env.environ, request.insecure) as client:
                live = fetch_live_state(
                    client,
                    refresh=request.refresh,
                    cache_dir=cache_directory(inputs.settings),
                    progress=env.console,
                )
        except ReconcilerError:
            kept[name] |= wanted
            continue
        kept[name] |= wanted & {contact.phone for contact in live.contacts}
    check_targets_select(request.targets, readings, {name: tuple(k) for name, k in kept.items()})


def _apply_account(
    request: ApplyRequest,
    env: Environment,
    started_at: datetime,
    inputs: Inputs,
    saved: SavedPlan | None = None,
    document: Publish | None = None,
    several_targets: Targets | None = None,
    leave_out: Callable[[], None] | None = None,
) -> int:
    """One account's apply; ``several_targets``: the targets of an account of several, read
    already (a phone target neither declared nor live here selects nothing here, and
    ``leave_out`` is called)."""
    console, cwd = env.console, env.cwd
    settings, desired = inputs.settings, inputs.desired
    # Masking asked for by any account of the run masks all of it.
    mask = inputs.masks(mask_pii=request.mask_pii) or console.screen.masking
    config = settings.config
    if saved is not None:
        _check_prune_intent(request, saved)
        if request.targets:
            raise TargetError(
                f"{request.plan_file} is applied with the targets it was planned with; "
                "drop --target, or make a new plan with the targets you want"
            )
    targets = several_targets
    if targets is None:
        with _saved_targets_proven(request, saved):
            targets = resolve_targets(
                settings, desired, saved.targets if saved is not None else request.targets
            )
    if request.max_deletes is not None and not request.prune:
        console.err("Note: --max-deletes has no effect without --prune.\n")

    options = render_options(env, mask=mask, no_color=request.no_color)
    diff_settings = config.diff_settings()

    with env.connect_client(settings, env.environ, request.insecure) as client:
        live = fetch_live_state(
            client,
            refresh=request.refresh,
            cache_dir=cache_directory(settings),
            progress=console,
        )
        console.screen.add_names(contact_names(live.contacts))
        with _saved_targets_proven(request, saved):
            plan = make_plan(
                desired,
                live,
                config,
                prune=request.prune,
                run_max_deletes=request.max_deletes,
                journal=journal_file(settings),
                account=settings.account,
                targets=targets,
                of_several=several_targets is not None,
            ).plan
        fields: Sequence[CustomField] = live.fields
        if saved is not None:
            current = current_provenance(
                desired.contacts, settings.api_url, plan.marker, cwd, settings.account
            )
            _prove_saved_plan(request, saved, plan, current, console, mask=mask)

        if request.prune:
            check_prune_caps(
                plan,
                plan.owned_live_count,
                config.prune.max_deletes,
                config.prune.max_delete_percent,
                run_max_deletes=request.max_deletes,
            )

        def publish(tally: Tally) -> None:
            if document is not None:
                document(
                    _result(request, cwd, settings, tally, plan.summary, len(plan.errors), mask)
                )

        if several_targets is not None and not plan.targets:
            if leave_out is not None:
                leave_out()
            console.out(_NOTHING_SELECTED)
            publish(Tally())
            return EXIT_OK
        _show_plan(plan, console, options)
        if not plan.has_changes:
            publish(Tally())
            return EXIT_ERROR if plan.has_errors else EXIT_OK
        if saved is None:
            confirm(console, auto_approve=request.auto_approve)

        with executing(
            client,
            console,
            command="apply",
            started_at=started_at,
            fields=fields,
            desired={contact.phone: contact for contact in desired.contacts},
            settings=diff_settings,
            cwd=cwd,
            account=settings.account,
            journal_file=journal_file(settings),
        ) as executor:
            try:
                _execute(executor, plan, settings, request)
            except ApplyInterruptedError:
                console.end_progress()
                _report(executor.tally, console, mask=mask, verb="Apply", state="interrupted")
                raise
    tally = executor.tally
    _report(tally, console, mask=mask, verb="Apply")
    warning = _step_summary(
        tally, env.environ, console.screen, mask=mask, verb="Apply", account=settings.account
    )
    if warning:
        console.err(warning)
    publish(tally)
    return EXIT_ERROR if tally.failures or plan.has_errors else EXIT_OK


def _execute(executor: Executor, plan: Plan, settings: Settings, request: ApplyRequest) -> None:
    upserts: list[Create | Update] = [*plan.creates, *plan.updates]
    if upserts:
        executor.ensure_fields(upserts, plan.marker)
        executor.write(upserts, plan.marker)
    deletes = plan.deletes
    if not (request.prune and deletes):
        return
    # Deletes are permanent: when anything before them went wrong, or the plan left
    # contacts for a human to sort out, nobody has seen this run end as reviewed.
    if executor.tally.failures or plan.has_errors:
        problems = len(executor.tally.failures) + len(plan.errors)
        executor.tally.notes.append(
            f"prune skipped: {problems} contacts failed or were left untouched above, so "
            f"none of the {len(deletes)} deletes was done. Fix them and run apply --prune again."
        )
        return
    backup_dir = _absolute(settings.config.prune.backup_dir, settings.cwd)
    executor.prune(deletes, backup_dir, plan.marker)


def _absolute(path: Path, cwd: Path) -> Path:
    return path if path.is_absolute() else cwd / path
