"""The command-line options several commands share, each spelled and documented once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def config_option(function: F) -> F:
    return click.option(
        "--config",
        "config_file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Configuration file (default: reconciler.yaml in the working directory, if any).",
    )(function)


def contacts_option(function: F) -> F:
    return click.option(
        "--contacts",
        "contacts_dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        metavar="DIR",
        help="Desired-state directory (default: the config's `contacts`, else contacts/).",
    )(function)


def api_url_option(function: F) -> F:
    return click.option(
        "--api-url",
        default=None,
        metavar="URL",
        help="Heymarket API base URL (default: HEYMARKET_API_URL, then the config's api.url).",
    )(function)


def color_option(function: F) -> F:
    return click.option(
        "--no-color",
        is_flag=True,
        default=False,
        help="Plain output without colour (also: the NO_COLOR environment variable).",
    )(function)


def insecure_option(function: F) -> F:
    return click.option(
        "--insecure",
        is_flag=True,
        help="Allow plain http to an API host that is not this machine.",
    )(function)


def mask_pii_option(function: F) -> F:
    return click.option(
        "--mask-pii", is_flag=True, help="Mask phones, emails and names in the output."
    )(function)


def target_option(function: F) -> F:
    return click.option(
        "--target",
        "targets",
        multiple=True,
        metavar="T",
        help="Only the changes for T (repeatable): a phone, or a contacts file, directory or "
        "glob (from the working directory, else the contacts directory). Only a phone "
        "selects a delete.",
    )(function)


def refresh_option(function: F) -> F:
    return click.option(
        "--refresh",
        type=click.Choice(["auto", "full"]),
        default="auto",
        show_default=True,
        help="auto: read only what changed since the last run when that is provably enough; "
        "full: list the whole account.",
    )(function)


def lock_timeout_option(function: F) -> F:
    return click.option(
        "--lock-timeout",
        type=click.FloatRange(min=0),
        default=10.0,
        metavar="SECONDS",
        show_default=True,
        help="Seconds to wait for another apply/restore in this directory to finish.",
    )(function)


_SANDBOX_OPTIONS: tuple[Callable[[Any], Any], ...] = (
    click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on."),
    click.option(
        "--port",
        type=click.IntRange(0, 65535),
        default=8080,
        show_default=True,
        help="Port to listen on; 0 picks a free one.",
    ),
    click.option(
        "--db",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="SQLite file that keeps the account across restarts (default: in memory).",
    ),
    click.option(
        "--seed",
        "seed_file",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        default=None,
        help="JSON or YAML list of contacts to preload.",
    ),
    click.option(
        "--rate-limit",
        type=click.IntRange(min=0),
        default=0,
        metavar="N",
        help="Answer 429 over N requests per minute (0: no limit).",
    ),
    click.option(
        "--latency",
        "latency_ms",
        type=click.IntRange(min=0),
        default=0,
        metavar="MS",
        help="Delay every API response by MS milliseconds.",
    ),
    click.option(
        "--fail-rate",
        type=click.FloatRange(0, 1),
        default=0.0,
        metavar="0..1",
        help="Answer this fraction of API requests with a random 500.",
    ),
)


def sandbox_options(function: F) -> F:
    """Where the sandbox listens, what it keeps and preloads, and the faults it starts with."""
    for option in reversed(_SANDBOX_OPTIONS):
        function = option(function)
    return function
