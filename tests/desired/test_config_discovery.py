"""Which reconciler.yaml a run uses without --config: the nearest one from the working
directory up to the git root, and never one outside the repository."""

from __future__ import annotations

from pathlib import Path

from reconciler.desired.config import load_config
from reconciler.desired.config_discovery import find_config, state_root


def test_the_nearest_config_up_to_the_git_root_is_found(tmp_path: Path) -> None:
    repository = tmp_path / "repository"
    deep = repository / "contacts" / "sales"
    deep.mkdir(parents=True)
    (repository / ".git").mkdir()
    assert find_config(deep) is None
    (repository / "reconciler.yaml").write_text("ownership:\n  owner: sales\n", encoding="utf-8")
    assert find_config(deep) == Path("../../reconciler.yaml")
    assert find_config(repository) == Path("reconciler.yaml")
    (deep / "reconciler.yaml").write_text("{}\n", encoding="utf-8")
    assert find_config(deep) == Path("reconciler.yaml")


def test_the_search_stops_at_the_git_root(tmp_path: Path) -> None:
    # A configuration above the repository belongs to something else.
    (tmp_path / "reconciler.yaml").write_text("ownership:\n  owner: outside\n", encoding="utf-8")
    repository = tmp_path / "repository"
    (repository / "contacts").mkdir(parents=True)
    # A worktree's .git is a file.
    (repository / ".git").write_text("gitdir: /elsewhere\n", encoding="utf-8")
    assert find_config(repository / "contacts") is None
    config = load_config(None, repository / "contacts")
    assert (config.source, config.ownership.owner) == (None, "contacts")
    assert state_root(None, repository / "contacts") == repository / "contacts"


def test_paths_and_the_owner_come_from_the_found_file(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "reconciler.yaml").write_text(
        "contacts: people\nprune:\n  backup_dir: backups\n", encoding="utf-8"
    )
    below = tmp_path / "people" / "team"
    below.mkdir(parents=True)
    config = load_config(None, below)
    assert config.source == below / "../../reconciler.yaml"
    assert config.contacts.resolve() == (tmp_path / "people").resolve()
    assert config.prune.backup_dir.resolve() == (tmp_path / "backups").resolve()
    # ownership.owner defaults to the name of the directory holding the file, not "..".
    assert config.ownership.owner == tmp_path.name
    assert state_root(None, below).resolve() == tmp_path.resolve()
