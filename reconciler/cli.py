"""Command-line interface: click parses the arguments, each command is dispatched to its
module in ``reconciler/commands/`` as ``run(request, env) -> int``, and ``main`` maps every
outcome to an exit code (expected errors as one line)."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

import click

from reconciler import __version__
from reconciler.cli_options import (
    api_url_option,
    color_option,
    config_option,
    contacts_option,
    insecure_option,
    lock_timeout_option,
    mask_pii_option,
    refresh_option,
    sandbox_options,
    target_option,
)
from reconciler.core.errors import EXIT_ERROR, EXIT_INTERRUPTED, DesiredStateError, ReconcilerError
from reconciler.report.console import OutputFilter

if TYPE_CHECKING:
    from reconciler.commands.environment import Environment

Request = TypeVar("Request")


@dataclass
class Invocation:
    """What ``main`` shares with the command it runs (click's context object): the output
    filter its error handler prints through, and ``--debug``."""

    screen: OutputFilter = field(default_factory=lambda: OutputFilter.for_environment(os.environ))
    debug: bool = False


def dispatch(command: Callable[[Request, Environment], int], request: Request) -> int:
    """Run ``command`` in this process's environment, printing through the invocation's
    filter (so an error it raises is printed as masked as its output)."""
    from reconciler.commands.environment import Environment

    invocation = click.get_current_context().ensure_object(Invocation)
    return command(request, Environment.standard(invocation.screen))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconciler")
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error.")
@click.pass_context
def cli(context: click.Context, debug: bool) -> None:
    """GitOps for the contacts of a Heymarket account."""
    context.ensure_object(Invocation).debug = debug


@cli.command()
@sandbox_options
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
    from reconciler.commands import sandbox as sandbox_command

    request = sandbox_command.SandboxRequest(
        host=host,
        port=port,
        db=db,
        seed_file=seed_file,
        rate_limit=rate_limit,
        latency_ms=latency_ms,
        fail_rate=fail_rate,
    )
    return dispatch(sandbox_command.run, request)


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
    from reconciler.commands import init as init_command

    return dispatch(init_command.run, init_command.InitRequest(directory=directory, force=force))


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
    from reconciler.commands import validate as validate_command

    request = validate_command.ValidateRequest(
        config_file=config_file, contacts_dir=contacts_dir, output_format=output_format
    )
    return dispatch(validate_command.run, request)


@cli.command()
@config_option
@contacts_option
@click.option("--check", is_flag=True, help="Change nothing; list the files that would change.")
def fmt(config_file: Path | None, contacts_dir: Path | None, check: bool) -> int:
    """Rewrite the contacts files in canonical form, keeping every comment."""
    from reconciler.commands import fmt as fmt_command

    request = fmt_command.FmtRequest(
        config_file=config_file, contacts_dir=contacts_dir, check=check
    )
    return dispatch(fmt_command.run, request)


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
@target_option
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
    targets: tuple[str, ...],
    mask_pii: bool,
    insecure: bool,
    refresh: Literal["auto", "full"],
) -> int:
    """Show what apply would change in the live account (plan only reads it)."""
    from reconciler.commands import plan as plan_command

    request = plan_command.PlanRequest(
        config_file=config_file,
        contacts_dir=contacts_dir,
        api_url=api_url,
        output_format=output_format,
        out=out,
        detailed_exitcode=detailed_exitcode,
        prune=prune,
        targets=targets,
        mask_pii=mask_pii,
        no_color=no_color,
        insecure=insecure,
        refresh=refresh,
    )
    return dispatch(plan_command.run, request)


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
    from reconciler.commands import export as export_command

    request = export_command.ExportRequest(
        out_dir=out_dir,
        config_file=config_file,
        api_url=api_url,
        insecure=insecure,
        split_by=export_command.SplitBy(split_by),
        owned_only=owned_only,
        force=force,
    )
    return dispatch(export_command.run, request)


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
@target_option
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
    targets: tuple[str, ...],
    mask_pii: bool,
    insecure: bool,
    lock_timeout: float,
    refresh: Literal["auto", "full"],
) -> int:
    """Make the live account match the desired state (or apply a saved PLAN_FILE)."""
    from reconciler.commands import apply as apply_command

    request = apply_command.ApplyRequest(
        plan_file=plan_file,
        config_file=config_file,
        contacts_dir=contacts_dir,
        api_url=api_url,
        auto_approve=auto_approve,
        prune=prune,
        max_deletes=max_deletes,
        targets=targets,
        mask_pii=mask_pii,
        no_color=no_color,
        insecure=insecure,
        lock_timeout=lock_timeout,
        refresh=refresh,
    )
    return dispatch(apply_command.run, request)


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
    from reconciler.commands import restore as restore_command

    request = restore_command.RestoreRequest(
        backup_file=backup_file,
        config_file=config_file,
        api_url=api_url,
        auto_approve=auto_approve,
        mask_pii=mask_pii,
        insecure=insecure,
        lock_timeout=lock_timeout,
    )
    return dispatch(restore_command.run, request)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and map every outcome to an exit code; expected errors are one line."""
    args = list(sys.argv[1:] if argv is None else argv)
    # Shared with the command run: it turns masking on when asked to, so an error raised
    # deep inside is printed as masked as everything else.
    invocation = Invocation()

    def error(text: str) -> None:
        click.echo(invocation.screen(text), err=True)

    try:
        result = cli.main(args=args, prog_name="reconciler", standalone_mode=False, obj=invocation)
    except (click.exceptions.Abort, KeyboardInterrupt):
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
        if invocation.debug or os.environ.get("RECONCILER_DEBUG") == "1":
            error(traceback.format_exc().rstrip("\n"))
        else:
            error(
                f"Error: unexpected {type(unexpected).__name__}: {unexpected}. "
                "Run again with --debug for the traceback, and report it."
            )
        return EXIT_ERROR
    return result if isinstance(result, int) else 0
