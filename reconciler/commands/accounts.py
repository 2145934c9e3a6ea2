"""Which accounts a run works on: the one account of a repository without ``accounts:``, or
those ``--account`` selects (all by default), each with its own settings; and the flags
that only make sense for one of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.core.errors import ReconcilerError, TargetError
from reconciler.desired.config import Account
from reconciler.desired.targets import AccountTargets, read_account_targets

if TYPE_CHECKING:
    from reconciler.commands.context import Inputs, Settings


class AccountSelectionError(ReconcilerError):
    """``--account`` names no configured account, or a flag that sets one account's
    settings is given for several."""


def select_accounts(
    settings: Settings,
    names: Sequence[str],
    *,
    contacts_dir: Path | None,
    api_url: str | None,
    environ: Mapping[str, str],
) -> tuple[Settings, ...]:
    """The settings of each account ``names`` selects (every configured one when empty, in
    the configuration's order), or ``settings`` alone without ``accounts:``. An account's API
    URL: ``--api-url``, else ``<PREFIX>_API_URL``, else its ``api.url``."""
    config = settings.config
    if not config.accounts:
        if names:
            raise AccountSelectionError(
                "--account selects one of several accounts, and this configuration has none: "
                'declare them under "accounts:" in reconciler.yaml, or leave --account out'
            )
        return (settings,)
    known = [account.name for account in config.accounts]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise AccountSelectionError(
            f'no account named "{unknown[0]}"; the configured accounts are: {", ".join(known)}'
        )
    chosen = [account for account in config.accounts if not names or account.name in names]
    if len(chosen) > 1 and (contacts_dir is not None or api_url is not None):
        flag = "--contacts" if contacts_dir is not None else "--api-url"
        raise AccountSelectionError(
            f"{flag} sets one account's settings, and {len(chosen)} accounts are selected: "
            "choose one with --account NAME"
        )
    return tuple(
        _account_settings(settings, account, contacts_dir, api_url, environ) for account in chosen
    )


def _account_settings(
    base: Settings,
    account: Account,
    contacts_dir: Path | None,
    api_url: str | None,
    environ: Mapping[str, str],
) -> Settings:
    cwd = base.cwd
    chosen_dir = contacts_dir if contacts_dir is not None else account.config.contacts
    settings = replace(
        base,
        config=account.config,
        contacts_dir=chosen_dir if chosen_dir.is_absolute() else cwd / chosen_dir,
        api_url=account.config.api.url,
        account=account.name,
        credentials_env=account.credentials_env,
    )
    url = api_url or environ.get(settings.url_variable, "").strip() or account.config.api.url
    return replace(settings, api_url=url)


def read_targets_of_accounts(
    written: Sequence[str], selected: Sequence[Inputs]
) -> dict[str, AccountTargets]:
    """``--target`` values read in each selected account (its contacts directory, its
    ``phones.default_region``), before any request; a value that reads in none of them (a
    file in no account's directory, a phone no account can read) is an error."""
    readings = {
        str(inputs.settings.account): read_account_targets(
            written,
            contacts_dir=inputs.settings.contacts_dir,
            cwd=inputs.settings.cwd,
            files=inputs.desired.files,
            default_region=inputs.settings.config.phones.default_region,
        )
        for inputs in selected
    }
    for target in written:
        problems = [r.problems[target] for r in readings.values() if target in r.problems]
        if len(problems) == len(readings):
            raise TargetError(
                f"{problems[0]} (in none of the selected accounts: {_names(readings)})"
            )
    return readings


def check_targets_select(
    written: Sequence[str],
    readings: Mapping[str, AccountTargets],
    kept: Mapping[str, Sequence[str]],
) -> None:
    """After the live states are read: every ``--target`` value selects in some account,
    where ``kept`` holds what each account's plan is targeted at (a phone neither declared
    nor live in an account is not kept there)."""
    for target in written:
        if not any(
            target in reading.labels and reading.labels[target] in kept.get(name, ())
            for name, reading in readings.items()
        ):
            label = next(
                (r.labels[target] for r in readings.values() if target in r.labels), target
            )
            raise TargetError(
                f"--target {label} is neither declared nor in the account, in any of the "
                f"selected accounts ({_names(readings)}); check the number"
            )


def _names(readings: Mapping[str, AccountTargets]) -> str:
    return ", ".join(readings)


def the_one_account(selected: Sequence[Settings]) -> Settings:
    """The settings of a command that works on one account (export, restore): the selected
    one, where selecting none or several is an error."""
    if len(selected) != 1:
        known = ", ".join(str(settings.account) for settings in selected)
        raise AccountSelectionError(
            f"this command works on one account at a time, and {len(selected)} are "
            f"selected ({known}): choose one with --account NAME"
        )
    return selected[0]


def backed_up_in(selected: Sequence[Settings], backup: Path) -> tuple[Settings, ...]:
    """The accounts whose prune backup directory holds ``backup`` (an absolute path): where
    the backup was written, and so the account it came from."""
    folder = backup.resolve().parent
    return tuple(
        settings
        for settings in selected
        if _absolute(settings.config.prune.backup_dir, settings.cwd).resolve() == folder
    )


def _absolute(path: Path, cwd: Path) -> Path:
    return path if path.is_absolute() else cwd / path
