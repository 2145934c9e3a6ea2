"""``reconciler apply`` with several accounts: which accounts a saved plan file is applied
to, and the run over them, in which one account's failure is reported and never stops the
next; the exit code is the worst of theirs."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

from reconciler.commands.context import Inputs
from reconciler.core.errors import (
    EXIT_OK,
    EXIT_REFUSED,
    ApplyInterruptedError,
    ReconcilerError,
    StalePlanError,
    worst_exit_code,
)
from reconciler.core.proof import SavedPlan
from reconciler.render.accounts import account_heading
from reconciler.report.console import Console


def single_plan(file: Path | None, saved: Mapping[str | None, SavedPlan]) -> SavedPlan | None:
    """The saved plan of a repository with one account; a file of several accounts' plans
    was made for another repository."""
    if file is None:
        return None
    if len(saved) == 1:
        # A plan made for one account of several is refused by its proof (another account).
        return next(iter(saved.values()))
    raise StalePlanError(
        f"{file} holds the plans of several accounts ({', '.join(map(str, saved))}), and this "
        "configuration has no accounts, so nothing was written. Make a new plan "
        "(`reconciler plan --out FILE`), review it, and apply that."
    )


def accounts_planned(
    file: Path,
    saved: Mapping[str | None, SavedPlan],
    selected: Sequence[Inputs],
    *,
    named: Sequence[str],
) -> tuple[Inputs, ...]:
    """The accounts a saved plan file is applied to: those it holds a plan for (or those of
    them that --account names, ``named``). Any doubt about which plan is for which account:
    nothing is written."""
    again = "Make a new plan (`reconciler plan --out FILE`), review it, and apply that."
    configured = {str(inputs.settings.account) for inputs in selected}
    planned = [name for name in saved if name is not None]
    if None in saved:
        raise StalePlanError(
            f"{file} was made for a repository without accounts, so nothing was written. {again}"
        )
    if named:
        missing = [name for name in named if name not in planned]
        if missing:
            raise StalePlanError(
                f'{file} holds no plan for account "{missing[0]}" (it holds {", ".join(planned)}), '
                f"so nothing was written. {again}"
            )
    else:
        unknown = [name for name in planned if name not in configured]
        if unknown:
            raise StalePlanError(
                f'{file} holds a plan for account "{unknown[0]}", which is not configured, so '
                f"nothing was written. {again}"
            )
    return tuple(inputs for inputs in selected if inputs.settings.account in planned)


def apply_accounts(
    selected: Sequence[Inputs],
    saved: Mapping[str | None, SavedPlan],
    console: Console,
    apply_one: Callable[[Inputs, SavedPlan | None], int],
    *,
    left_out: Collection[str] = (),
) -> int:
    """Each selected account in turn, each with its own plan (proven against its own saved
    plan, with a file), caps, backups and journal lines. One account's failure (refused
    credentials, a server fault, a guard) is reported and the next account is still
    applied; the exit code is the worst of them. ``left_out``: the accounts the targets
    select nothing in, once each has run (said so in the closing line)."""
    outcomes: list[tuple[str, int]] = []
    for inputs in selected:
        name = str(inputs.settings.account)
        console.out(f"{account_heading(name)}\n")
        try:
            code = apply_one(inputs, saved.get(name))
        except ApplyInterruptedError:
            # Ctrl-C stops the run: the accounts after this one are not started.
            done = ", ".join(f"{account} {_outcome(code)}" for account, code in outcomes)
            console.out(f"Accounts: {done + ', ' if done else ''}{name} interrupted.\n")
            raise
        except ReconcilerError as error:
            console.err(f"Error: account {name}: {error}\n")
            code = error.exit_code
        outcomes.append((name, code))
        console.out("\n")
    results = ", ".join(
        f"{name} {LEFT_OUT if name in left_out else _outcome(code)}" for name, code in outcomes
    )
    console.out(f"Accounts: {results}.\n")
    return worst_exit_code(code for _, code in outcomes)


LEFT_OUT = "left out (the targets select nothing in it)"


def _outcome(code: int) -> str:
    if code == EXIT_OK:
        return "applied"
    if code == EXIT_REFUSED:
        return f"refused (exit {code})"
    return f"failed (exit {code})"
