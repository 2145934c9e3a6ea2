"""Settings from ``reconciler.yaml`` (or ``--config FILE``). Every key has a safe default.

The file goes through the same safe YAML gate and the same ``file:line:col`` messages as the
contacts files; relative paths in it are relative to the directory holding it."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from reconciler.core.diff import DiffSettings
from reconciler.core.errors import ConfigError, InputNotFoundError, Problem
from reconciler.desired.config_discovery import config_path
from reconciler.desired.phone_spellings import canonical_protect_pattern, is_known_region
from reconciler.desired.schemas import CONFIG_SCHEMA, schema_problems
from reconciler.desired.yaml_safety import LoadedYaml, load_yaml, locate, position, read_capped
from reconciler.files.paths import display_path

DEFAULT_API_URL = "https://api.heymarket.com"
_REGION_CODE = re.compile("[A-Z]{2}")
# An account's name names its directories (caches, backups): a lowercase identifier.
ACCOUNT_NAME = re.compile("[a-z][a-z0-9_-]{0,39}")
# The sections an account may override; an account's own keys win, key by key, over the
# top-level ones (a deep merge of each section).
ACCOUNT_SECTIONS = ("api", "ownership", "prune", "output", "phones")


@dataclass(frozen=True, slots=True)
class ApiSettings:
    url: str = DEFAULT_API_URL
    requests_per_minute: int = 500


@dataclass(frozen=True, slots=True)
class OwnershipSettings:
    marker_field: str = "Managed by"
    # load_config defaults it to the name of the directory holding the config (or the cwd).
    owner: str = "reconciler"


@dataclass(frozen=True, slots=True)
class PruneSettings:
    max_deletes: int = 25
    max_delete_percent: float = 5.0
    protect: tuple[str, ...] = ()
    backup_dir: Path = Path(".reconciler/backups")


@dataclass(frozen=True, slots=True)
class PhoneSettings:
    # The region of numbers written without "+" and a country code; None refuses them.
    default_region: str | None = None


@dataclass(frozen=True, slots=True)
class OutputSettings:
    mask_pii: bool = False


@dataclass(frozen=True, slots=True)
class Config:
    contacts: Path = Path("contacts")
    api: ApiSettings = field(default_factory=ApiSettings)
    ownership: OwnershipSettings = field(default_factory=OwnershipSettings)
    prune: PruneSettings = field(default_factory=PruneSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    phones: PhoneSettings = field(default_factory=PhoneSettings)
    # The file it was read from, or None when defaults were used.
    source: Path | None = None
    # With ``accounts:``, each account's own configuration; empty for the single account.
    accounts: tuple[Account, ...] = ()

    def diff_settings(self, *, run_max_deletes: int | None = None) -> DiffSettings:
        """What the diff needs of this configuration."""
        return DiffSettings(
            marker_field=self.ownership.marker_field,
            owner=self.ownership.owner,
            protect=tuple(self.prune.protect),
            max_deletes=self.prune.max_deletes,
            max_delete_percent=self.prune.max_delete_percent,
            run_max_deletes=run_max_deletes,
        )


@dataclass(frozen=True, slots=True)
class Account:
    """One of several accounts: its name, the prefix of its credential variables, and its
    configuration (the top-level defaults with its own keys merged over them)."""

    name: str
    credentials_env: str
    config: Config


def load_config(path: Path | None, cwd: Path) -> Config:
    """The configuration from ``path``, else from the ``reconciler.yaml`` found from ``cwd``
    (``config_discovery``), else the defaults. Raises ``ConfigError`` with every problem in
    the file."""
    if path is None:
        found = config_path(None, cwd)
        if found is None:
            return Config(ownership=OwnershipSettings(owner=cwd.absolute().name))
        path = found
    elif not path.is_absolute():
        path = cwd / path
    shown_as = display_path(path, cwd)
    if not path.is_file():
        raise InputNotFoundError(f'config file "{shown_as}" does not exist')
    data = read_capped(path, shown_as)
    if isinstance(data, Problem):
        raise ConfigError([data])
    loaded = load_yaml(data, shown_as)
    if isinstance(loaded, Problem):
        raise ConfigError([loaded])
    values: dict[str, Any] = {}
    if loaded is not None:
        problems, _ = schema_problems(CONFIG_SCHEMA, loaded, shown_as, "a mapping of settings")
        problems += _not_a_number_problems(loaded, shown_as)
        problems += _unknown_region_problems(loaded, shown_as)
        problems += _account_problems(loaded, shown_as)
        if problems:
            raise ConfigError(sorted(problems, key=lambda p: (p.line, p.column)))
        assert isinstance(loaded.value, dict)
        values = loaded.value
    return _from_values(values, path, cwd)


def _not_a_number_problems(loaded: LoadedYaml, shown_as: str) -> list[Problem]:
    """Every ``.nan`` among the settings. The schema's bounds let NaN through (each comparison
    with it is false), and a NaN prune.max_delete_percent would switch that cap off."""
    problems: list[Problem] = []

    def visit(value: object, path: tuple[str, ...]) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                visit(item, (*path, str(key)))
        elif isinstance(value, float) and math.isnan(value):
            problems.append(
                _problem_at(loaded, shown_as, path, f'"{path[-1]}" must be a number, not .nan')
            )

    visit(loaded.value, ())
    return problems


def _problem_at(loaded: LoadedYaml, shown_as: str, path: tuple[str, ...], message: str) -> Problem:
    """A problem at the place ``path`` names in the configuration file."""
    key_node, value_node = locate(loaded.root, path)
    line, column = position(key_node or value_node)
    return Problem(shown_as, line, column, message)


def _account_mappings(values: object) -> dict[str, dict[str, Any]]:
    """The ``accounts:`` entries that are mappings, by name."""
    accounts = values.get("accounts") if isinstance(values, dict) else None
    if not isinstance(accounts, dict):
        return {}
    return {str(name): entry for name, entry in accounts.items() if isinstance(entry, dict)}


def _unknown_region_problems(loaded: LoadedYaml, shown_as: str) -> list[Problem]:
    """A default region the schema lets through (two capitals) that no numbering plan is
    known for: national numbers could not be read in it. Top level and every account."""
    places: list[tuple[tuple[str, ...], object]] = [((), loaded.value)]
    places += [
        (("accounts", name), entry) for name, entry in _account_mappings(loaded.value).items()
    ]
    problems: list[Problem] = []
    for prefix, values in places:
        settings = values.get("phones") if isinstance(values, dict) else None
        region = settings.get("default_region") if isinstance(settings, dict) else None
        # A region of another shape already has its problem from the schema.
        if not isinstance(region, str) or not _REGION_CODE.fullmatch(region):
            continue
        if is_known_region(region):
            continue
        path = (*prefix, "phones", "default_region")
        message = (
            f'{".".join(path)} "{region}" is not a region with a known numbering plan; '
            'write an ISO 3166-1 code, e.g. "US" or "GB"'
        )
        problems.append(_problem_at(loaded, shown_as, path, message))
    return problems


def _nested_contacts_problems(loaded: LoadedYaml, shown_as: str) -> list[Problem]:
    """An account's contacts directory inside another's: the outer account would declare
    the inner one's contacts too, and create them in its own account."""
    directories = {
        name: PurePosixPath(entry["contacts"])
        for name, entry in _account_mappings(loaded.value).items()
        if isinstance(entry.get("contacts"), str)
    }
    problems: list[Problem] = []
    for name, directory in directories.items():
        for other, other_directory in directories.items():
            if other != name and directory in other_directory.parents:
                message = (
                    f'accounts.{name}.contacts "{directory}" holds accounts.{other}.contacts '
                    f'"{other_directory}": give each account a directory of its own'
                )
                path = ("accounts", name, "contacts")
                problems.append(_problem_at(loaded, shown_as, path, message))
    return problems


def _account_problems(loaded: LoadedYaml, shown_as: str) -> list[Problem]:
    """What the schema cannot say well: an account name that is not a safe identifier (it
    names directories), and a top-level ``contacts`` beside ``accounts``."""
    values = loaded.value
    accounts = values.get("accounts") if isinstance(values, dict) else None
    if not isinstance(values, dict) or not isinstance(accounts, dict):
        return []
    problems: list[Problem] = []
    for name in accounts:
        if ACCOUNT_NAME.fullmatch(name):
            continue
        message = (
            f'account name "{name}" is not allowed: use a lowercase letter, then up to 39 '
            "lowercase letters, digits, - or _ (it names the account's directories)"
        )
        problems.append(_problem_at(loaded, shown_as, ("accounts", name), message))
    problems += _nested_contacts_problems(loaded, shown_as)
    if "contacts" in values:
        message = (
            'top-level "contacts" is not allowed with "accounts": give each account its '
            "own accounts.NAME.contacts"
        )
        problems.append(_problem_at(loaded, shown_as, ("contacts",), message))
    return problems


def _from_values(values: dict[str, Any], source: Path, cwd: Path) -> Config:
    config = _config_from(values, source, cwd)
    accounts = _account_mappings(values)
    if not accounts:
        return config
    return replace(
        config,
        accounts=tuple(
            _account(name, entry, values, source, cwd) for name, entry in accounts.items()
        ),
    )


def _account(
    name: str, entry: dict[str, Any], defaults: dict[str, Any], source: Path, cwd: Path
) -> Account:
    """An account's configuration: each section of ``defaults`` with the account's own keys
    merged over it. Its prune backups go to a directory of its own unless it names one."""
    merged: dict[str, Any] = {"contacts": entry["contacts"]}
    for section in ACCOUNT_SECTIONS:
        merged[section] = {**defaults.get(section, {}), **entry.get(section, {})}
    own_prune = entry.get("prune", {})
    if "backup_dir" not in own_prune:
        shared = merged["prune"].get("backup_dir", str(PruneSettings().backup_dir))
        merged["prune"]["backup_dir"] = str(Path(shared) / name)
    return Account(
        name=name,
        credentials_env=entry["credentials_env"],
        config=_config_from(merged, source, cwd),
    )


def _config_from(values: dict[str, Any], source: Path, cwd: Path) -> Config:
    # Normalised: a configuration found above the working directory is ``cwd/../...``.
    directory_name = Path(os.path.normpath(source.absolute())).parent.name
    base = source.parent
    # Keep paths relative when the config sits in the working directory: they read better in
    # messages and plans, and mean the same.
    if base.absolute() == cwd.absolute():
        base = Path()
    api = values.get("api", {})
    ownership = values.get("ownership", {})
    prune = values.get("prune", {})
    output = values.get("output", {})
    phones = values.get("phones", {})
    defaults = Config()
    return Config(
        contacts=base / values.get("contacts", defaults.contacts),
        api=ApiSettings(
            url=api.get("url", defaults.api.url),
            requests_per_minute=api.get("requests_per_minute", defaults.api.requests_per_minute),
        ),
        ownership=OwnershipSettings(
            marker_field=ownership.get("marker_field", defaults.ownership.marker_field),
            owner=ownership.get("owner", directory_name),
        ),
        prune=PruneSettings(
            max_deletes=prune.get("max_deletes", defaults.prune.max_deletes),
            max_delete_percent=float(
                prune.get("max_delete_percent", defaults.prune.max_delete_percent)
            ),
            protect=tuple(canonical_protect_pattern(item) for item in prune.get("protect", ())),
            backup_dir=base / prune.get("backup_dir", defaults.prune.backup_dir),
        ),
        output=OutputSettings(mask_pii=output.get("mask_pii", defaults.output.mask_pii)),
        phones=PhoneSettings(default_region=phones.get("default_region")),
        source=source,
    )
