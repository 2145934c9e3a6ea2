"""The steps the commands share, in the order they must run: arm the output filter, resolve
settings, load the desired state (no network), connect, read the live account, diff; and the
lock that apply and restore run under.

Commands compose these; the only output here is through the run's console: the wait for the
lock, and the problems of a desired state that does not load."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from reconciler.commands.accounts import select_accounts, the_one_account
from reconciler.core.diff import DiffSettings, diff
from reconciler.core.errors import (
    DesiredStateError,
    Problem,
    ProblemsReportedError,
    ReconcilerError,
    TargetError,
)
from reconciler.core.masking import contact_names
from reconciler.core.model import CustomField, LiveContact, SourceLocation
from reconciler.core.plan import LiveRead, Notice, Plan
from reconciler.core.progress import ProgressSink
from reconciler.core.redaction import DEFAULT_CREDENTIALS_PREFIX, credential_values_in
from reconciler.core.rewrites import mark_seen_rewrites
from reconciler.core.targets import Targets, known_targets, targeted_plan
from reconciler.desired.config import Config, load_config
from reconciler.desired.config_discovery import DEFAULT_CONFIG_FILE, state_root
from reconciler.desired.loader import DesiredState, load_desired_state
from reconciler.desired.targets import read_targets
from reconciler.execute.journal import JOURNAL_FILE, seen_rewrites
from reconciler.files.lock import exclusive_lock
from reconciler.files.paths import display_path
from reconciler.heymarket import HeymarketClient, credentials_from_env
from reconciler.live.snapshot import Refresh, read_live_state
from reconciler.render import RenderOptions
from reconciler.report.console import wants_color
from reconciler.report.github import (
    NOTHING_PLANNED,
    problem_count,
    problem_lines,
    problem_report,
)

if TYPE_CHECKING:
    from reconciler.commands.environment import Environment

API_URL_VARIABLE = "HEYMARKET_API_URL"
# Parse cache and live snapshot, beside reconciler.yaml (or in the working directory).
CACHE_DIRECTORY = Path(".reconciler") / "cache"


class InsecureUrlError(ReconcilerError):
    """A plain-http API URL for a host that is not this machine."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What one command run works with, after flags, environment and config are merged."""

    config: Config
    contacts_dir: Path
    api_url: str
    cwd: Path
    # With ``accounts:``, the account these settings are for (its own configuration is
    # ``config``) and the prefix of its credential variables.
    account: str | None = None
    credentials_env: str = DEFAULT_CREDENTIALS_PREFIX

    @property
    def url_variable(self) -> str:
        """The environment variable that overrides the API URL of these settings' account."""
        return API_URL_VARIABLE if self.account is None else f"{self.credentials_env}_API_URL"


@dataclass(frozen=True, slots=True)
class LiveState:
    contacts: tuple[LiveContact, ...]
    fields: tuple[CustomField, ...]
    # How it was read, shown beside the plan (``None``: read some other way).
    read: LiveRead | None = None


@dataclass(frozen=True, slots=True)
class PlanRun:
    """A plan and everything it was made from (apply needs the inputs again)."""

    desired: DesiredState
    live: LiveState
    settings: DiffSettings
    plan: Plan


def resolve_settings(
    *,
    config_file: Path | None,
    contacts_dir: Path | None,
    api_url: str | None,
    environ: Mapping[str, str],
    cwd: Path,
) -> Settings:
    """Flags win over the environment, which wins over reconciler.yaml, which wins over the
    defaults (HEYMARKET_API_URL overrides the config's api.url)."""
    config = load_config(config_file, cwd)
    url = api_url or environ.get(API_URL_VARIABLE, "").strip() or config.api.url
    # --contacts is relative to the working directory the command was given, not the process's.
    chosen_dir = contacts_dir if contacts_dir is not None else config.contacts
    return Settings(
        config=config,
        contacts_dir=chosen_dir if chosen_dir.is_absolute() else cwd / chosen_dir,
        api_url=url,
        cwd=cwd,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_api_url(url: str, *, insecure: bool, url_variable: str = API_URL_VARIABLE) -> None:
    """HTTPS everywhere, except plain http to this machine (the sandbox) or with --insecure:
    credentials must never cross a network in clear text by accident."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InsecureUrlError(
            f'API URL "{url}" is not an http(s) URL; '
            f"check --api-url, {url_variable} or api.url in reconciler.yaml"
        )
    if parts.scheme == "http" and not insecure and not _is_loopback(parts.hostname):
        raise InsecureUrlError(
            f'refusing plain http to "{parts.hostname}": credentials would travel unencrypted; '
            "use https, or pass --insecure if you really mean it"
        )


def connect(
    settings: Settings, environ: Mapping[str, str], *, insecure: bool = False
) -> HeymarketClient:
    """A client for the configured account; the caller closes it."""
    check_api_url(settings.api_url, insecure=insecure, url_variable=settings.url_variable)
    return HeymarketClient(
        settings.api_url,
        credentials_from_env(environ, settings.credentials_env),
        requests_per_minute=settings.config.api.requests_per_minute,
    )


# The seam tests use to reach the API another way (a transport, a hook on each request).
ConnectClient = Callable[[Settings, Mapping[str, str], bool], HeymarketClient]


def connect_configured(
    settings: Settings, environ: Mapping[str, str], insecure: bool
) -> HeymarketClient:
    return connect(settings, environ, insecure=insecure)


def state_directory(settings: Settings) -> Path:
    """The directory holding ``.reconciler/``: the configuration file's, else the working
    directory (``desired.config_discovery``)."""
    source = settings.config.source
    return source.parent if source is not None else settings.cwd


def cache_directory(settings: Settings) -> Path:
    """The parse cache and live snapshot; each account of several has its own."""
    directory = state_directory(settings) / CACHE_DIRECTORY
    return directory if settings.account is None else directory / settings.account


def journal_file(settings: Settings) -> Path:
    return state_directory(settings) / JOURNAL_FILE


def fetch_live_state(
    client: HeymarketClient,
    *,
    refresh: Refresh = "auto",
    cache_dir: Path | None = None,
    progress: ProgressSink | None = None,
) -> LiveState:
    """Custom fields and contacts; only what changed since the last run's snapshot (in
    ``cache_dir``, default ``.reconciler/cache`` here) when it is provably current. A long
    listing reports how far it is to ``progress``."""
    client.progress = progress
    directory = cache_dir if cache_dir is not None else Path.cwd() / CACHE_DIRECTORY
    listing = read_live_state(client, directory, refresh)
    return LiveState(
        contacts=tuple(listing.contacts),
        fields=tuple(listing.fields),
        read=LiveRead(listing.how, listing.requests),
    )


def load_desired(settings: Settings) -> DesiredState:
    return load_desired_state(
        settings.contacts_dir,
        settings.cwd,
        cache_dir=cache_directory(settings) / "desired",
        default_region=settings.config.phones.default_region,
    )


# A plan names this many phone warnings one by one; past it, one line counts the rest (a
# generated or imported list can hold thousands, which would bury the plan itself).
PHONE_WARNINGS_SHOWN = 20


def _phone_notices(desired: DesiredState) -> tuple[Notice, ...]:
    notices = [
        Notice(warning.message, warning.phone, SourceLocation(warning.path, warning.line))
        for warning in desired.warnings[:PHONE_WARNINGS_SHOWN]
    ]
    more = len(desired.warnings) - PHONE_WARNINGS_SHOWN
    if more > 0:
        notices.append(
            Notice(
                f"and {more:,} more phone{'s' if more != 1 else ''} not known to be assigned "
                "numbers; `reconciler validate` lists every one"
            )
        )
    return tuple(notices)


def make_plan(
    desired: DesiredState,
    live: LiveState,
    config: Config,
    *,
    prune: bool,
    run_max_deletes: int | None = None,
    journal: Path | None = None,
    account: str | None = None,
    targets: Targets | None = None,
    of_several: bool = False,
) -> PlanRun:
    """The plan; with ``journal``, its changes that send a value the account rewrote last
    time are marked (``core.rewrites``); with ``targets``, only their changes. With
    ``of_several`` (one account of several), a phone target neither declared nor live here
    selects nothing here, instead of being an error: the plan's ``targets`` are those that
    select here."""
    diff_settings = config.diff_settings(run_max_deletes=run_max_deletes)
    plan = diff(desired.contacts, live.contacts, live.fields, diff_settings, prune=prune)
    if targets is not None:
        plan = _targeted(plan, targets, desired, live, diff_settings, of_several=of_several)
    if desired.warnings:
        # The desired state's own warnings come first: they are about what the files say.
        plan = replace(plan, warnings=(*_phone_notices(desired), *plan.warnings))
    if journal is not None:
        plan = mark_seen_rewrites(plan, seen_rewrites(journal, account))
    if live.read is not None:
        plan = replace(plan, live_read=live.read)
    return PlanRun(desired=desired, live=live, settings=diff_settings, plan=plan)


def resolve_targets(
    settings: Settings, desired: DesiredState, written: Sequence[str]
) -> Targets | None:
    """``--target`` values read against the loaded desired state (no request made)."""
    return read_targets(
        written,
        contacts_dir=settings.contacts_dir,
        cwd=settings.cwd,
        files=desired.files,
        default_region=settings.config.phones.default_region,
    )


def _targeted(
    plan: Plan,
    targets: Targets,
    desired: DesiredState,
    live: LiveState,
    settings: DiffSettings,
    *,
    of_several: bool,
) -> Plan:
    known = {contact.phone for contact in desired.contacts}
    known.update(contact.phone for contact in live.contacts)
    if of_several:
        targets = known_targets(targets, known)
    unknown = sorted(targets.phones - known)
    if unknown:
        raise TargetError(
            f"--target {unknown[0]} is neither declared nor in the account; check the number"
        )
    candidates = 0
    if not plan.prune and targets.phones:
        # What --prune would add for the phones named, for the plan's hint.
        everything = diff(desired.contacts, live.contacts, live.fields, settings, prune=True)
        candidates = sum(1 for change in everything.deletes if change.phone in targets.phones)
    return targeted_plan(plan, targets, settings, prune_candidates=candidates)


# --- the opening of a run ----------------------------------------------------------------


def arm_output_filter(env: Environment, *, mask_pii: bool) -> None:
    """Before anything can be printed, errors included: no credential of the environment
    passes the console's filter, and with ``--mask-pii`` no phone, email or name does."""
    screen = env.console.screen
    screen.add_secrets(credential_values_in(env.environ))
    if mask_pii:
        screen.mask_personal_data()


def open_settings(
    env: Environment,
    *,
    config_file: Path | None,
    contacts_dir: Path | None = None,
    api_url: str | None = None,
    mask_pii: bool = False,
    accounts: Sequence[str] = (),
) -> Settings:
    """The settings of a run on one account: the one selected by ``accounts`` (``--account``)
    when several are configured, where selecting none or more than one is an error."""
    selected = open_account_settings(
        env,
        config_file=config_file,
        contacts_dir=contacts_dir,
        api_url=api_url,
        mask_pii=mask_pii,
        accounts=accounts,
    )
    return the_one_account(selected)


def open_account_settings(
    env: Environment,
    *,
    config_file: Path | None,
    contacts_dir: Path | None = None,
    api_url: str | None = None,
    mask_pii: bool = False,
    accounts: Sequence[str] = (),
) -> tuple[Settings, ...]:
    """The settings of each account a run works on, with the output filter armed first and
    masking turned on as soon as the configuration asks for it (``output.mask_pii``)."""
    arm_output_filter(env, mask_pii=mask_pii)
    settings = resolve_settings(
        config_file=config_file,
        contacts_dir=contacts_dir,
        api_url=api_url,
        environ=env.environ,
        cwd=env.cwd,
    )
    configured = settings.config.accounts
    # Every account's credentials are kept out of the output, whichever accounts run.
    env.console.screen.add_secrets(
        credential_values_in(env.environ, [account.credentials_env for account in configured])
    )
    if settings.config.output.mask_pii or any(a.config.output.mask_pii for a in configured):
        env.console.screen.mask_personal_data()
    return select_accounts(
        settings, accounts, contacts_dir=contacts_dir, api_url=api_url, environ=env.environ
    )


@dataclass(frozen=True, slots=True)
class Inputs:
    """What a plan is made from before any request: the settings and the desired state."""

    settings: Settings
    desired: DesiredState

    def masks(self, *, mask_pii: bool) -> bool:
        """Whether this run masks personal data: the flag, or the configuration."""
        return mask_pii or self.settings.config.output.mask_pii


def load_account_inputs(
    env: Environment,
    *,
    config_file: Path | None,
    contacts_dir: Path | None,
    api_url: str | None,
    mask_pii: bool,
    accounts: Sequence[str] = (),
    document: bool = False,
    announce: bool = False,
) -> tuple[Inputs, ...] | None:
    """Settings and desired state of each selected account (the one account without
    ``accounts:``), or ``None`` once every problem of any invalid desired state has been
    reported on stderr: nothing is planned and no request is made, for any account. With
    ``document`` (``--format json``) the error is raised instead, for the CLI to report as
    the one JSON document on stdout, after the same report on stderr. With ``announce``,
    which configuration file is used is said first (``announce_config``)."""
    problems: list[Problem] = []
    selected: tuple[Settings, ...] = ()
    try:
        selected = open_account_settings(
            env,
            config_file=config_file,
            contacts_dir=contacts_dir,
            api_url=api_url,
            mask_pii=mask_pii,
            accounts=accounts,
        )
        if announce:
            announce_config(env, selected[0], config_file=config_file)
    except DesiredStateError as error:
        if not error.problems:
            raise
        problems += error.problems
    inputs: list[Inputs] = []
    for account_settings in selected:
        try:
            desired = load_desired(account_settings)
        except DesiredStateError as error:
            if not error.problems:
                raise
            problems += error.problems
            continue
        env.console.screen.add_names(contact_names(desired.contacts))
        inputs.append(Inputs(settings=account_settings, desired=desired))
    if problems:
        env.console.err(problem_report(problems, NOTHING_PLANNED))
        if document:
            summary = f"{problem_count(problems)}; {NOTHING_PLANNED}"
            raise ProblemsReportedError(problems, summary) from None
        return None
    return tuple(inputs)


def announce_config(env: Environment, settings: Settings, *, config_file: Path | None) -> None:
    """On stderr: the configuration file found above the working directory (one line), or a
    warning when none was found and the owner is only the working directory's name. Said
    nothing when the file is in the working directory or named by ``--config``."""
    source = settings.config.source
    if source is None:
        env.console.err(
            f"Warning: no {DEFAULT_CONFIG_FILE} here or in a parent directory up to the git "
            "root, so the defaults apply and the ownership marker's owner is this directory's "
            f"name, '{settings.config.ownership.owner}'. Run the command where "
            f"{DEFAULT_CONFIG_FILE} is, pass --config FILE, or create one "
            "(`reconciler init`) that sets ownership.owner.\n"
        )
    elif config_file is None and source.parent.absolute() != env.cwd.absolute():
        env.console.err(f"Using config: {display_path(source, env.cwd)}\n")


def report_problem_lines(
    env: Environment, problems: Sequence[Problem], *, github: bool, consequence: str
) -> None:
    """validate's and fmt's report: each problem on stdout as ``FILE:LINE:COL: message``
    (and as a GitHub annotation with ``github``), then what it meant on stderr."""
    for line in problem_lines(problems, github=github):
        env.console.out(line + "\n")
    env.console.err(consequence + "\n")


def render_options(env: Environment, *, mask: bool, no_color: bool) -> RenderOptions:
    return RenderOptions(
        mask_pii=mask,
        color=wants_color(no_color=no_color, environ=env.environ, is_tty=env.console.stdout_is_tty),
    )


@contextlib.contextmanager
def locked(
    env: Environment, *, command: str, wait_seconds: float, config_file: Path | None
) -> Iterator[None]:
    """Run the body under ``.reconciler/lock`` beside the configuration file the run uses
    (else in the working directory): one apply or restore at a time writes to the account
    and the journal. Waiting is said on stderr."""
    with exclusive_lock(
        state_root(config_file, env.cwd),
        command=command,
        wait_seconds=wait_seconds,
        on_wait=lambda message: env.console.err(message + "\n"),
    ):
        yield
