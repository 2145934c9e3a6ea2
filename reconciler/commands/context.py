"""The steps every networked command shares, in the order they must run: resolve settings,
load the desired state (no network), connect, read the live account, diff.

Commands compose these; none of them prints anything."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from reconciler.core.diff import DiffSettings, diff
from reconciler.core.errors import ReconcilerError
from reconciler.core.model import CustomField, LiveContact
from reconciler.core.plan import Plan
from reconciler.desired.config import Config, load_config
from reconciler.desired.loader import DesiredState, load_desired_state
from reconciler.heymarket import HeymarketClient, credentials_from_env
from reconciler.live.snapshot import Refresh, read_live_state

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


@dataclass(frozen=True, slots=True)
class LiveState:
    contacts: tuple[LiveContact, ...]
    fields: tuple[CustomField, ...]


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
    defaults (DESIGN.md: HEYMARKET_API_URL overrides the config's api.url)."""
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


def check_api_url(url: str, *, insecure: bool) -> None:
    """HTTPS everywhere, except plain http to this machine (the sandbox) or with --insecure:
    credentials must never cross a network in clear text by accident."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InsecureUrlError(
            f'API URL "{url}" is not an http(s) URL; '
            f"check --api-url, {API_URL_VARIABLE} or api.url in reconciler.yaml"
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
    check_api_url(settings.api_url, insecure=insecure)
    return HeymarketClient(
        settings.api_url,
        credentials_from_env(environ),
        requests_per_minute=settings.config.api.requests_per_minute,
    )


def cache_directory(settings: Settings) -> Path:
    source = settings.config.source
    return (source.parent if source is not None else settings.cwd) / CACHE_DIRECTORY


def fetch_live_state(
    client: HeymarketClient, *, refresh: Refresh = "auto", cache_dir: Path | None = None
) -> LiveState:
    """Custom fields and contacts; only what changed since the last run's snapshot (in
    ``cache_dir``, default ``.reconciler/cache`` here) when it is provably current."""
    directory = cache_dir if cache_dir is not None else Path.cwd() / CACHE_DIRECTORY
    listing = read_live_state(client, directory, refresh)
    return LiveState(contacts=tuple(listing.contacts), fields=tuple(listing.fields))


def load_desired(settings: Settings) -> DesiredState:
    return load_desired_state(
        settings.contacts_dir, settings.cwd, cache_dir=cache_directory(settings) / "desired"
    )


def make_plan(
    desired: DesiredState,
    live: LiveState,
    config: Config,
    *,
    prune: bool,
    run_max_deletes: int | None = None,
) -> PlanRun:
    diff_settings = DiffSettings.from_config(config, run_max_deletes=run_max_deletes)
    plan = diff(desired.contacts, live.contacts, live.fields, diff_settings, prune=prune)
    return PlanRun(desired=desired, live=live, settings=diff_settings, plan=plan)
