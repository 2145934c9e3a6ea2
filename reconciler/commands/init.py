"""``reconciler init``: scaffold a new contacts repository from the templates in
``reconciler/templates/``.

Plan, Apply and Drift in ``templates/workflows/`` run the same steps as this repository's
``.github/workflows/`` (a test keeps them so); they differ in the Action they use: a release
of it there, this checkout (``uses: ./``) here. The scaffold's CI checks contacts
(validate, fmt --check, plan), not the tool's Python.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath
from string import Template

from reconciler import __version__
from reconciler.commands.environment import Environment
from reconciler.core.errors import EXIT_OK, ScaffoldError
from reconciler.core.redaction import DEFAULT_CREDENTIALS_PREFIX
from reconciler.desired.config import ACCOUNT_NAME

WORKFLOW_NAMES = ("ci.yml", "plan.yml", "apply.yml", "drift.yml")

# Where the Python code stops and the text starts: (template, path in the new repository,
# whether ``$owner``/``$name``/``$version`` are substituted).
_LAYOUT: tuple[tuple[str, str, bool], ...] = (
    ("reconciler.yaml", "reconciler.yaml", True),
    ("contacts/example.yaml", "contacts/example.yaml", False),
    ("gitignore", ".gitignore", False),
    ("Makefile", "Makefile", False),
    ("README.md", "README.md", True),
    *((f"workflows/{name}", f".github/workflows/{name}", False) for name in WORKFLOW_NAMES),
)

_FALLBACK_OWNER = "contacts"


@dataclass(frozen=True, slots=True)
class ScaffoldFile:
    """One file of the scaffold: where it goes (relative to the new repository) and its text."""

    path: PurePosixPath
    content: str


def templates_dir() -> Traversable:
    return files("reconciler").joinpath("templates")


def workflow_template(name: str) -> str:
    """The text of one workflow template, e.g. ``workflow_template("apply.yml")``."""
    return templates_dir().joinpath("workflows", name).read_text(encoding="utf-8")


def default_owner(directory: Path) -> str:
    """The ownership value for a repository in ``directory``: its name, as the contract's
    default for ``ownership.owner`` is."""
    return directory.resolve().name or _FALLBACK_OWNER


# One credential variable passed to a workflow step from the secret of the same name; with
# several accounts, it becomes one line per account's prefix.
_CREDENTIAL_LINE = re.compile(
    r"^(?P<indent>[ \t]*)HEYMARKET_(?P<suffix>SECRET_ID|SECRET_KEY|API_KEY): "
    r"\$\{\{ secrets\.HEYMARKET_(?P=suffix) \}\}[ \t]*$"
)


def account_prefix(name: str) -> str:
    """The credentials prefix the scaffold gives account ``name``: HEYMARKET_US for ``us``."""
    return f"{DEFAULT_CREDENTIALS_PREFIX}_{name.upper().replace('-', '_')}"


# A test of one credential secret in an expression (``secrets.HEYMARKET_X != ''``): with
# several accounts, true when any account's is set.
_CREDENTIAL_TEST = re.compile(r"secrets\.HEYMARKET_(SECRET_ID|SECRET_KEY|API_KEY) != ''")


def per_account_credentials(workflow: str, prefixes: Sequence[str]) -> str:
    """``workflow`` with each ``HEYMARKET_X: ${{ secrets.HEYMARKET_X }}`` env line replaced by
    one line per prefix (``HEYMARKET_US_X: ${{ secrets.HEYMARKET_US_X }}``), indented alike;
    a run of such lines becomes one run per prefix, so each account's lines stay together."""
    lines: list[str] = []
    run: list[tuple[str, str, str]] = []  # (indent, suffix, line ending) of the current run

    def end_run() -> None:
        lines.extend(
            f"{indent}{prefix}_{suffix}: ${{{{ secrets.{prefix}_{suffix} }}}}{ending}"
            for prefix in prefixes
            for indent, suffix, ending in run
        )
        run.clear()

    for line in workflow.splitlines(keepends=True):
        text = line.rstrip("\r\n")
        match = _CREDENTIAL_LINE.match(text)
        if match is None:
            end_run()
            lines.append(
                _CREDENTIAL_TEST.sub(
                    lambda test: " || ".join(
                        f"secrets.{prefix}_{test[1]} != ''" for prefix in prefixes
                    ),
                    line,
                )
            )
        else:
            run.append((match["indent"], match["suffix"], line[len(text) :]))
    end_run()
    return "".join(lines)


def _accounts_config(config: str, accounts: Sequence[str]) -> str:
    """The single-account ``reconciler.yaml`` turned into one with ``accounts:``: the
    top-level ``contacts`` goes, every other section stays as the accounts' defaults."""
    kept = config.replace(_CONTACTS_SETTING, "")
    if kept == config:
        raise ScaffoldError("The reconciler.yaml template has no top-level contacts to replace.")
    entries = "".join(
        f"  {name}:\n"
        "    # This account's desired-state directory.\n"
        f"    contacts: contacts/{name}/\n"
        f"    # Its credentials: {prefix}_SECRET_ID + {prefix}_SECRET_KEY, or\n"
        f"    # {prefix}_API_KEY; {prefix}_API_URL overrides its api.url.\n"
        f"    credentials_env: {prefix}\n"
        for name, prefix in ((name, account_prefix(name)) for name in accounts)
    )
    return kept.rstrip("\n") + "\n\n" + _ACCOUNTS_HEAD + entries


_CONTACTS_SETTING = """\
# The desired-state directory: every *.yaml / *.yml file under it, recursively.
contacts: contacts/

"""
_ACCOUNTS_HEAD = """\
# The Heymarket accounts this repository manages, by name. The sections above are every
# account's defaults; an account may override any of them key by key (e.g. `prune:
# {max_deletes: 10}`). Caps, prune backups and journal lines are per account.
accounts:
"""


def _accounts_readme(accounts: Sequence[str]) -> str:
    rows = "".join(
        f"| `{prefix}_SECRET_ID`, `{prefix}_SECRET_KEY` (or `{prefix}_API_KEY`) | `{name}` |\n"
        for name, prefix in ((name, account_prefix(name)) for name in accounts)
    )
    return (
        "\n## Several accounts\n\n"
        "This repository manages several Heymarket accounts (`accounts:` in\n"
        "`reconciler.yaml`), each with its own contacts directory under `contacts/`. Instead\n"
        "of the `HEYMARKET_*` secrets above, set each account's own:\n\n"
        "| secrets | account |\n|---|---|\n" + rows + "\n"
        "`reconciler plan --account NAME` and `reconciler apply --account NAME` work on one\n"
        "of them; without `--account`, on all. One pull-request comment shows every account.\n"
    )


def validate_account_names(accounts: Sequence[str]) -> None:
    """Names the scaffold can use: safe identifiers, each with its own credentials prefix."""
    bad = [name for name in accounts if not ACCOUNT_NAME.fullmatch(name)]
    if bad:
        raise ScaffoldError(
            f'Account name "{bad[0]}" is not allowed: use a lowercase letter, then up to 39 '
            "lowercase letters, digits, - or _."
        )
    prefixes = [account_prefix(name) for name in accounts]
    if len(set(prefixes)) != len(prefixes):
        raise ScaffoldError(
            f"Accounts {', '.join(accounts)} must be different names with different "
            "credentials prefixes (a-b and a_b would share one)."
        )


def scaffold_files(owner: str, accounts: Sequence[str] = ()) -> tuple[ScaffoldFile, ...]:
    """Every file of a new contacts repository whose contacts are owned by ``owner``; with
    ``accounts``, one that manages those accounts, each with its contacts and secrets."""
    if accounts:
        validate_account_names(accounts)
        return _with_accounts(scaffold_files(owner), accounts)
    if not owner.strip():
        raise ScaffoldError("The owner name is empty; name the directory, e.g. `init acme`.")
    values = {
        # A JSON string is a YAML scalar whatever the directory is called (":", "#", quotes).
        "owner": json.dumps(owner, ensure_ascii=False),
        "name": owner,
        "version": __version__,
    }
    scaffold = []
    for template_name, target, substitute in _LAYOUT:
        text = templates_dir().joinpath(*template_name.split("/")).read_text(encoding="utf-8")
        if substitute:
            text = Template(text).substitute(values)
        scaffold.append(ScaffoldFile(PurePosixPath(target), text))
    return tuple(scaffold)


def _with_accounts(
    scaffold: Sequence[ScaffoldFile], accounts: Sequence[str]
) -> tuple[ScaffoldFile, ...]:
    prefixes = [account_prefix(name) for name in accounts]
    changed: list[ScaffoldFile] = []
    for file in scaffold:
        path, text = file.path, file.content
        if path == PurePosixPath("reconciler.yaml"):
            changed.append(ScaffoldFile(path, _accounts_config(text, accounts)))
        elif path == PurePosixPath("contacts/example.yaml"):
            changed += [
                ScaffoldFile(PurePosixPath("contacts", name, path.name), text) for name in accounts
            ]
        elif path.parts[:2] == (".github", "workflows"):
            changed.append(ScaffoldFile(path, per_account_credentials(text, prefixes)))
        elif path == PurePosixPath("README.md"):
            changed.append(ScaffoldFile(path, text + _accounts_readme(accounts)))
        else:
            changed.append(file)
    return tuple(changed)


def init_repository(
    directory: Path, *, force: bool = False, accounts: Sequence[str] = ()
) -> tuple[Path, ...]:
    """Write the scaffold into ``directory`` (created if missing) and return the paths written.

    Existing files are never overwritten without ``force``: the error lists all of them, and
    nothing at all is written."""
    scaffold = scaffold_files(default_owner(directory), accounts)
    targets = [directory.joinpath(*file.path.parts) for file in scaffold]
    existing = [target for target in targets if target.exists() or target.is_symlink()]
    if existing and not force:
        names = ", ".join(path.relative_to(directory).as_posix() for path in existing)
        raise ScaffoldError(
            f"Refusing to overwrite {len(existing)} existing "
            f"{'file' if len(existing) == 1 else 'files'} in {directory}: {names}. "
            "Move them away, or pass --force to overwrite them."
        )
    for target in existing:
        if target.is_dir() and not target.is_symlink():
            raise ScaffoldError(f"{target} is a directory; the scaffold needs a file there.")
    written = []
    for file, target in zip(scaffold, targets, strict=True):
        try:
            if target.is_symlink():
                # Replace the link itself: writing through it could land outside the directory.
                target.unlink()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(file.content, encoding="utf-8")
        except OSError as error:
            raise ScaffoldError(f"Cannot write {target}: {error.strerror or error}.") from None
        written.append(target)
    return tuple(written)


NEXT_STEPS = """\
Next steps:
  1. Declare your contacts under contacts/ (or replace them with `reconciler export`).
  2. Push to GitHub and set the secrets and variables that README.md lists.
  3. Open a pull request: the Plan workflow comments what a merge would change."""


@dataclass(frozen=True, slots=True)
class InitRequest:
    """The arguments of one ``init`` run."""

    directory: Path = Path()
    force: bool = False
    # --accounts a,b: a repository managing these accounts.
    accounts: tuple[str, ...] = ()


def run(request: InitRequest, env: Environment) -> int:
    """Scaffold the repository, name each file written, then say what to do next. Paths are
    shown, and errors name them, as the user gave the directory."""
    for path in init_repository(request.directory, force=request.force, accounts=request.accounts):
        env.console.out(f"Wrote {path}\n")
    env.console.out(NEXT_STEPS + "\n")
    return EXIT_OK
