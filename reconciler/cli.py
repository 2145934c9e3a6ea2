"""Command-line interface: argument handling and output only; the work lives in the modules
each command calls."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler import __version__
from reconciler.errors import EXIT_ERROR, EXIT_INTERRUPTED, DesiredStateError, ReconcilerError

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
        help="Desired-state directory (default: the config's `contacts`, else contacts/).",
    )(function)


def api_url_option(function: F) -> F:
    return click.option(
        "--api-url",
        default=None,
        help="Heymarket API base URL (default: HEYMARKET_API_URL, then the config's api.url).",
    )(function)


def color_option(function: F) -> F:
    return click.option(
        "--no-color",
        is_flag=True,
        default=False,
        help="Plain output without colour (also: the NO_COLOR environment variable).",
    )(function)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconciler")
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error.")
@click.pass_context
def cli(context: click.Context, debug: bool) -> None:
    """GitOps for the contacts of a Heymarket account."""
    context.ensure_object(dict)
    context.obj["debug"] = debug


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "--db",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="SQLite file that keeps the account across restarts (default: in memory).",
)
@click.option(
    "--seed",
    "seed_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="JSON or YAML list of contacts to preload.",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(min=0),
    default=0,
    help="Answer 429 over N requests per minute (0: no limit).",
)
@click.option(
    "--latency",
    "latency_ms",
    type=click.IntRange(min=0),
    default=0,
    help="Delay every API response by MS milliseconds.",
)
@click.option(
    "--fail-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Answer this fraction of API requests with a random 500.",
)
def sandbox(
    host: str,
    port: int,
    db: Path | None,
    seed_file: Path | None,
    rate_limit: int,
    latency_ms: int,
    fail_rate: float,
) -> int:
    """Run a local Heymarket-compatible API server (SQLite-backed) until Ctrl-C."""
    from reconciler.sandbox.faults import FaultSettings
    from reconciler.sandbox.server import run_sandbox

    return run_sandbox(
        host=host,
        port=port,
        db=db,
        seed_file=seed_file,
        initial_faults=FaultSettings(
            rate_limit=rate_limit, latency_ms=latency_ms, fail_rate=fail_rate
        ),
        environ=os.environ,
        out=sys.stdout,
    )


@cli.command()
@click.argument(
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=".",
    required=False,
)
@click.option("--force", is_flag=True, help="Overwrite files that exist already.")
def init(directory: Path, force: bool) -> int:
    """Scaffold a contacts repository in DIRECTORY (default: here): reconciler.yaml, an
    example contacts/ file, the GitHub workflows, .gitignore, Makefile and README.md."""
    from reconciler.scaffold import NEXT_STEPS, init_repository

    for path in init_repository(directory, force=force):
        click.echo(f"Wrote {path}")
    click.echo(NEXT_STEPS)
    return 0


@cli.command()
@config_option
@contacts_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "github"]),
    default=None,
    help="github: also print each problem as a workflow annotation "
    "(default when GITHUB_ACTIONS=true).",
)
def validate(config_file: Path | None, contacts_dir: Path | None, output_format: str | None) -> int:
    """Check the desired state (no network): every problem, each as FILE:LINE:COL: message."""
    from reconciler.annotations import problem_lines, wants_github_annotations
    from reconciler.config import load_config
    from reconciler.desired_state import load_desired_state
    from reconciler.errors import DesiredStateError

    cwd = Path.cwd()
    github = wants_github_annotations(output_format, os.environ)
    try:
        config = load_config(config_file, cwd)
        state = load_desired_state(contacts_dir or config.contacts, cwd)
    except DesiredStateError as error:
        if not error.problems:
            raise
        for line in problem_lines(error.problems, github=github):
            click.echo(line)
        files = len({problem.path for problem in error.problems})
        count = len(error.problems)
        click.echo(
            f"Found {count} problem{'s' if count != 1 else ''} "
            f"in {files} file{'s' if files != 1 else ''}.",
            err=True,
        )
        return EXIT_ERROR
    files_count = len(state.files)
    click.echo(
        f"{len(state.contacts)} contacts in {files_count} file{'s' if files_count != 1 else ''} "
        "are valid."
    )
    return 0


@cli.command()
@config_option
@contacts_option
@click.option("--check", is_flag=True, help="Change nothing; list the files that would change.")
def fmt(config_file: Path | None, contacts_dir: Path | None, check: bool) -> int:
    """Rewrite the contacts files in canonical form, keeping every comment."""
    from reconciler.annotations import problem_lines
    from reconciler.config import load_config
    from reconciler.errors import DesiredStateError
    from reconciler.fmt import format_directory

    cwd = Path.cwd()
    try:
        config = load_config(config_file, cwd)
        result = format_directory(contacts_dir or config.contacts, cwd, check=check)
    except DesiredStateError as error:
        if not error.problems:
            raise
        for line in problem_lines(error.problems, github=False):
            click.echo(line)
        click.echo("Nothing was formatted: fix the problems above first.", err=True)
        return EXIT_ERROR
    for path in result.changed:
        click.echo(f"would reformat {path}" if check else f"reformatted {path}")
    changed = len(result.changed)
    if check:
        click.echo(f"{changed} file(s) would be reformatted, {result.unchanged} already canonical.")
        return EXIT_ERROR if changed else 0
    click.echo(f"{changed} file(s) reformatted, {result.unchanged} already canonical.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and map every outcome to an exit code; expected errors are one line."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("RECONCILER_DEBUG") == "1"
    try:
        result = cli.main(args=args, prog_name="reconciler", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    except click.exceptions.Exit as exit_request:
        return exit_request.exit_code
    except click.ClickException as usage_error:
        usage_error.show()
        # Exit 2 means "changes present" for plan --detailed-exitcode; usage errors are 1.
        return EXIT_ERROR
    except DesiredStateError as error:
        # Every problem, not just the first: fixing a file should take one round trip.
        for problem in error.problems:
            click.echo(str(problem), err=True)
        if not error.problems:
            click.echo(f"Error: {error}", err=True)
        return error.exit_code
    except ReconcilerError as error:
        click.echo(f"Error: {error}", err=True)
        return error.exit_code
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as error:  # the last line of defence
        if debug:
            traceback.print_exc()
        else:
            click.echo(
                f"Error: unexpected {type(error).__name__}: {error}. "
                "Run again with --debug for the traceback, and report it.",
                err=True,
            )
        return EXIT_ERROR
    return result if isinstance(result, int) else 0
