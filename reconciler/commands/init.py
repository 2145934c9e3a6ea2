"""``reconciler init``: scaffold a new contacts repository from the templates in
``reconciler/templates/``.

Plan, Apply and Drift in ``templates/workflows/`` run the same steps as this repository's
``.github/workflows/`` (a test keeps them so); they differ in the Action they use: a release
of it there, this checkout (``uses: ./``) here. The scaffold's CI checks contacts
(validate, fmt --check, plan), not the tool's Python.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath
from string import Template

from reconciler import __version__
from reconciler.commands.environment import Environment
from reconciler.core.errors import EXIT_OK, ScaffoldError

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


def scaffold_files(owner: str) -> tuple[ScaffoldFile, ...]:
    """Every file of a new contacts repository whose contacts are owned by ``owner``."""
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


def init_repository(directory: Path, *, force: bool = False) -> tuple[Path, ...]:
    """Write the scaffold into ``directory`` (created if missing) and return the paths written.

    Existing files are never overwritten without ``force``: the error lists all of them, and
    nothing at all is written."""
    scaffold = scaffold_files(default_owner(directory))
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


def run(request: InitRequest, env: Environment) -> int:
    """Scaffold the repository, name each file written, then say what to do next. Paths are
    shown, and errors name them, as the user gave the directory."""
    for path in init_repository(request.directory, force=request.force):
        env.console.out(f"Wrote {path}\n")
    env.console.out(NEXT_STEPS + "\n")
    return EXIT_OK
