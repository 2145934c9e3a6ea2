"""Command-line interface: argument handling and output only; the work lives in the modules
each command calls."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import click

from reconciler import __version__
from reconciler.core.errors import EXIT_ERROR, EXIT_INTERRUPTED, DesiredStateError, ReconcilerError
from reconciler.report.console import OutputFilter

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


def refresh_option(function: F) -> F:
    return click.option(
        "--refresh",
        type=click.Choice(["auto", "full"]),
        default="auto",
        show_default=True,
        help="auto: read only what changed since the last run when that is provably enough; "
        "full: list the whole account.",
    )(function)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconciler")
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error.")
@click.pass_context
def cli(context: click.Context, debug: bool) -> None:
    """GitOps for the contacts of a Heymarket account."""
    context.ensure_object(dict)
    context.obj["debug"] = debug
    context.obj.setdefault("screen", OutputFilter.for_environment(os.environ))


def output_filter() -> OutputFilter:
    """The filter every text of this run passes (the one ``main`` prints errors through)."""
    screen = click.get_current_context().obj["screen"]
    assert isinstance(screen, OutputFilter)
    return screen


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
    metavar="N",
    help="Answer 429 over N requests per minute (0: no limit).",
)
@click.option(
    "--latency",
    "latency_ms",
    type=click.IntRange(min=0),
    default=0,
    metavar="MS",
    help="Delay every API response by MS milliseconds.",
)
@click.option(
    "--fail-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    metavar="0..1",
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
    from reconciler.commands.init import NEXT_STEPS, init_repository

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
    from reconciler.core.errors import DesiredStateError
    from reconciler.desired.config import load_config
    from reconciler.desired.loader import load_desired_state
    from reconciler.report.github import problem_count, problem_lines, wants_github_annotations

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
        click.echo(f"{problem_count(error.problems)}.", err=True)
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
    from reconciler.core.errors import DesiredStateError
    from reconciler.desired.canonical import format_directory
    from reconciler.desired.config import load_config
    from reconciler.report.github import problem_lines

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
    for path in result.rebuilt:
        verb = "would be" if check else "was"
        click.echo(
            f"Warning: {path} {verb} written from its values, without its comments: the "
            "comment-keeping writer cannot rewrite it without changing a value.",
            err=True,
        )
    changed = len(result.changed)
    if check:
        click.echo(f"{changed} file(s) would be reformatted, {result.unchanged} already canonical.")
        return EXIT_ERROR if changed else 0
    click.echo(f"{changed} file(s) reformatted, {result.unchanged} already canonical.")
    return 0


@cli.command()
@config_option
@contacts_option
@api_url_option
@color_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="text for a terminal, markdown for a pull-request comment, json for scripts.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also save the plan to FILE, for `reconciler apply FILE`.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 with no changes, 2 with changes, 1 on error.",
)
@click.option("--prune", is_flag=True, help="Show the deletes `apply --prune` would do.")
@mask_pii_option
@insecure_option
@refresh_option
def plan(
    config_file: Path | None,
    contacts_dir: Path | None,
    api_url: str | None,
    no_color: bool,
    output_format: str,
    out: Path | None,
    detailed_exitcode: bool,
    prune: bool,
    mask_pii: bool,
    insecure: bool,
    refresh: Literal["auto", "full"],
) -> int:
    """Show what apply would change in the live account (plan only reads it)."""
    from reconciler.commands.plan import PlanRequest, run_plan

    request = PlanRequest(
        config_file=config_file,
        contacts_dir=contacts_dir,
        api_url=api_url,
        output_format=output_format,
        out=out,
        detailed_exitcode=detailed_exitcode,
        prune=prune,
        mask_pii=mask_pii,
        no_color=no_color,
        insecure=insecure,
        refresh=refresh,
    )
    outcome = run_plan(
        request,
        environ=os.environ,
        cwd=Path.cwd(),
        stdout_is_tty=sys.stdout.isatty(),
        screen=output_filter(),
    )
    click.echo(outcome.stdout, nl=False)
    click.echo(outcome.stderr, nl=False, err=True)
    return outcome.exit_code


@cli.command()
@config_option
@api_url_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    metavar="DIR",
    help="Directory to write into (default: the config's `contacts`, else contacts/).",
)
@click.option(
    "--owned-only",
    is_flag=True,
    help="Only the contacts that carry this repository's ownership marker.",
)
@click.option(
    "--split-by",
    type=click.Choice(["none", "tag", "initial"]),
    default="none",
    show_default=True,
    help="none: one contacts.yaml; tag: one file per first tag (untagged.yaml); "
    "initial: one file per first letter of the last or display name (other.yaml).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Write into a non-empty directory, replacing the contacts files in it.",
)
@insecure_option
def export(
    config_file: Path | None,
    api_url: str | None,
    out_dir: Path | None,
    owned_only: bool,
    split_by: str,
    force: bool,
    insecure: bool,
) -> int:
    """Write the live account as contacts files in canonical form, to adopt it."""
    from reconciler.commands.export import SplitBy, run_export

    screen = output_filter()
    result, written = run_export(
        out_dir=out_dir,
        config_file=config_file,
        api_url=api_url,
        insecure=insecure,
        split_by=SplitBy(split_by),
        owned_only=owned_only,
        force=force,
        environ=os.environ,
        cwd=Path.cwd(),
        screen=screen,
    )
    for warning in result.warnings:
        click.echo(screen(f"Warning: {warning}"), err=True)
    for path in written.removed:
        click.echo(screen(f"Removed {path}"))
    for path, file in zip(written.written, result.files, strict=True):
        click.echo(
            screen(f"Wrote {path} ({file.contacts} contact{'s' if file.contacts != 1 else ''})")
        )
    click.echo(
        f"Exported {result.contacts} contact{'s' if result.contacts != 1 else ''} into "
        f"{len(result.files)} file{'s' if len(result.files) != 1 else ''}; "
        f"the next plan adopts the {result.unmarked} without an ownership marker."
    )
    return 0


def lock_timeout_option(function: F) -> F:
    return click.option(
        "--lock-timeout",
        type=click.FloatRange(min=0),
        default=10.0,
        metavar="SECONDS",
        show_default=True,
        help="Seconds to wait for another apply/restore in this directory to finish.",
    )(function)


@cli.command()
@click.argument(
    "plan_file",
    type=click.Path(path_type=Path, dir_okay=False),
    required=False,
    default=None,
)
@config_option
@contacts_option
@api_url_option
@color_option
@click.option("--auto-approve", is_flag=True, help="Apply without asking for 'yes'.")
@click.option("--prune", is_flag=True, help="Also delete owned contacts no longer declared.")
@click.option(
    "--max-deletes",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Allow up to N deletes in this run (replaces both prune caps).",
)
@mask_pii_option
@insecure_option
@lock_timeout_option
@refresh_option
def apply(
    plan_file: Path | None,
    config_file: Path | None,
    contacts_dir: Path | None,
    api_url: str | None,
    no_color: bool,
    auto_approve: bool,
    prune: bool,
    max_deletes: int | None,
    mask_pii: bool,
    insecure: bool,
    lock_timeout: float,
    refresh: Literal["auto", "full"],
) -> int:
    """Make the live account match the desired state (or apply a saved PLAN_FILE)."""
    from reconciler.commands.apply import ApplyRequest, run_apply
    from reconciler.report.console import Console

    request = ApplyRequest(
        plan_file=plan_file,
        config_file=config_file,
        contacts_dir=contacts_dir,
        api_url=api_url,
        auto_approve=auto_approve,
        prune=prune,
        max_deletes=max_deletes,
        mask_pii=mask_pii,
        no_color=no_color,
        insecure=insecure,
        lock_timeout=lock_timeout,
        refresh=refresh,
    )
    return run_apply(
        request, environ=os.environ, cwd=Path.cwd(), console=Console.standard(output_filter())
    )


@cli.command()
@click.argument("backup_file", type=click.Path(path_type=Path, dir_okay=False))
@config_option
@api_url_option
@click.option("--auto-approve", is_flag=True, help="Restore without asking for 'yes'.")
@mask_pii_option
@insecure_option
@lock_timeout_option
def restore(
    backup_file: Path,
    config_file: Path | None,
    api_url: str | None,
    auto_approve: bool,
    mask_pii: bool,
    insecure: bool,
    lock_timeout: float,
) -> int:
    """Re-create the contacts of a prune backup (not their conversation history)."""
    from reconciler.commands.restore import RestoreRequest, run_restore
    from reconciler.report.console import Console

    request = RestoreRequest(
        backup_file=backup_file,
        config_file=config_file,
        api_url=api_url,
        auto_approve=auto_approve,
        mask_pii=mask_pii,
        insecure=insecure,
        lock_timeout=lock_timeout,
    )
    return run_restore(
        request, environ=os.environ, cwd=Path.cwd(), console=Console.standard(output_filter())
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and map every outcome to an exit code; expected errors are one line."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("RECONCILER_DEBUG") == "1"
    # Shared with the command run: it turns masking on when asked to, so an error raised
    # deep inside is printed as masked as everything else.
    screen = OutputFilter.for_environment(os.environ)

    def error(text: str) -> None:
        click.echo(screen(text), err=True)

    try:
        result = cli.main(
            args=args, prog_name="reconciler", standalone_mode=False, obj={"screen": screen}
        )
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
    except DesiredStateError as problems:
        # Every problem, not just the first: fixing a file should take one round trip.
        for problem in problems.problems:
            error(str(problem))
        if not problems.problems:
            error(f"Error: {problems}")
        return problems.exit_code
    except ReconcilerError as failure:
        error(f"Error: {failure}")
        return failure.exit_code
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as unexpected:  # the last line of defence
        if debug:
            error(traceback.format_exc().rstrip("\n"))
        else:
            error(
                f"Error: unexpected {type(unexpected).__name__}: {unexpected}. "
                "Run again with --debug for the traceback, and report it."
            )
        return EXIT_ERROR
    return result if isinstance(result, int) else 0
