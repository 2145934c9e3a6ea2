"""`reconciler init`: a scaffold that validates, whose workflows lint clean, and that never
overwrites a file without --force."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from reconciler import __version__
from reconciler.cli import main
from reconciler.commands.init import WORKFLOW_NAMES, workflow_template
from tests.workflow_lint import ROOT, actionlint, check_jsonschema

SCAFFOLD = [
    "reconciler.yaml",
    "contacts/example.yaml",
    ".gitignore",
    "Makefile",
    "README.md",
    *(f".github/workflows/{name}" for name in WORKFLOW_NAMES),
]


def scaffolded_files(directory: Path) -> list[str]:
    return sorted(
        path.relative_to(directory).as_posix() for path in directory.rglob("*") if path.is_file()
    )


def schema_leaf_keys(schema: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, subschema in schema["properties"].items():
        if subschema.get("type") == "object" and "properties" in subschema:
            yield from schema_leaf_keys(subschema, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def yaml_leaf_keys(mapping: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in mapping.items():
        if isinstance(value, dict):
            yield from yaml_leaf_keys(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


@pytest.fixture
def repository(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    directory = tmp_path / "acme-contacts"
    assert main(["init", str(directory)]) == 0
    capsys.readouterr()
    return directory


def test_init_writes_the_whole_scaffold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "acme-contacts"
    assert main(["init", str(directory)]) == 0
    assert scaffolded_files(directory) == sorted(SCAFFOLD)
    out = capsys.readouterr().out
    for name in SCAFFOLD:
        assert f"Wrote {directory / name}\n" in out
    assert "Next steps:" in out


def test_init_without_a_directory_scaffolds_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    assert scaffolded_files(tmp_path) == sorted(SCAFFOLD)


def test_the_scaffold_validates(repository: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repository)
    assert main(["validate"]) == 0


def test_the_scaffold_contacts_are_in_canonical_form(
    repository: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scaffold's CI runs `fmt --check`: a fresh repository must pass its own CI.
    monkeypatch.chdir(repository)
    assert main(["fmt", "--check"]) == 0


def test_the_scaffold_workflows_pass_actionlint_and_the_schema(repository: Path) -> None:
    workflows = [repository / ".github" / "workflows" / name for name in WORKFLOW_NAMES]
    problems = actionlint(workflows)
    assert problems == [], "\n".join(map(str, problems))
    result = check_jsonschema(workflows)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_scaffold_workflows_are_the_templates(repository: Path) -> None:
    # That they run the same steps as this repository's: tests/e2e/test_workflows.py.
    for name in WORKFLOW_NAMES:
        written = (repository / ".github" / "workflows" / name).read_text(encoding="utf-8")
        assert written == workflow_template(name)


def test_the_config_sets_and_explains_every_key(repository: Path) -> None:
    schema = json.loads((ROOT / "schemas" / "config.schema.json").read_text(encoding="utf-8"))
    text = (repository / "reconciler.yaml").read_text(encoding="utf-8")
    config = YAML(typ="safe").load(text)
    jsonschema.validate(config, schema)
    # `accounts` replaces top-level `contacts`: `init --accounts` scaffolds that form.
    assert set(yaml_leaf_keys(config)) == set(schema_leaf_keys(schema)) - {"accounts"}
    lines = text.splitlines()
    for key in yaml_leaf_keys(config):
        leaf = key.rsplit(".", 1)[-1]
        (index,) = [i for i, line in enumerate(lines) if line.strip().startswith(f"{leaf}:")]
        assert lines[index - 1].strip().startswith("#"), f"{key} has no comment above it"


def test_the_owner_is_written_out_as_the_directory_name(tmp_path: Path) -> None:
    # Quoting matters: a directory name may hold YAML's special characters.
    directory = tmp_path / "acme: #1 'contacts'"
    assert main(["init", str(directory)]) == 0
    config = YAML(typ="safe").load(directory / "reconciler.yaml")
    assert config["ownership"]["owner"] == "acme: #1 'contacts'"


def test_the_example_contacts_show_each_kind_of_field(repository: Path) -> None:
    contacts = YAML(typ="safe").load(repository / "contacts" / "example.yaml")["contacts"]
    assert 2 <= len(contacts) <= 3
    assert any("custom" in contact for contact in contacts)
    assert any("is_opted_out" in contact for contact in contacts)
    assert any(set(contact) == {"phone", "first", "last"} for contact in contacts)
    text = (repository / "contacts" / "example.yaml").read_text(encoding="utf-8")
    assert "is not managed" in text
    assert "null" in text


def test_gitignore_keeps_local_state_out_of_git(repository: Path) -> None:
    assert ".reconciler/" in (repository / ".gitignore").read_text().splitlines()


def test_readme_names_the_secrets_and_the_variables_to_set(repository: Path) -> None:
    readme = (repository / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# acme-contacts\n")
    for name in (
        "HEYMARKET_SECRET_ID",
        "HEYMARKET_SECRET_KEY",
        "HEYMARKET_API_KEY",
        "RECONCILER_PRUNE",
        "RECONCILER_PIP_SPEC",
    ):
        assert f"`{name}`" in readme
    assert "$" not in readme.replace("$version", "")


def test_init_refuses_to_overwrite_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "existing"
    (directory / "contacts").mkdir(parents=True)
    (directory / "README.md").write_text("our own readme\n")
    (directory / "contacts" / "example.yaml").write_text("contacts: []\n")

    assert main(["init", str(directory)]) == 1

    err = capsys.readouterr().err
    assert err == (
        f"Error: Refusing to overwrite 2 existing files in {directory}: "
        "contacts/example.yaml, README.md. Move them away, or pass --force to overwrite them.\n"
    )
    assert scaffolded_files(directory) == ["README.md", "contacts/example.yaml"]
    assert (directory / "README.md").read_text() == "our own readme\n"


def test_init_force_overwrites(tmp_path: Path) -> None:
    directory = tmp_path / "existing"
    directory.mkdir()
    (directory / "README.md").write_text("our own readme\n")
    assert main(["init", "--force", str(directory)]) == 0
    assert (directory / "README.md").read_text().startswith("# existing\n")
    assert scaffolded_files(directory) == sorted(SCAFFOLD)


def test_init_into_a_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "a-file"
    target.write_text("")
    assert main(["init", str(target)]) == 1
    assert "is a file" in capsys.readouterr().err


# --- init --accounts ---------------------------------------------------------------------

CREDENTIAL_SECRETS = ("SECRET_ID", "SECRET_KEY", "API_KEY")


@pytest.fixture
def accounts_repository(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    directory = tmp_path / "acme-contacts"
    assert main(["init", str(directory), "--accounts", "us,uk-east"]) == 0
    capsys.readouterr()
    return directory


def test_init_accounts_scaffolds_a_contacts_directory_per_account(
    accounts_repository: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = [name for name in SCAFFOLD if name != "contacts/example.yaml"]
    expected += ["contacts/us/example.yaml", "contacts/uk-east/example.yaml"]
    assert scaffolded_files(accounts_repository) == sorted(expected)
    monkeypatch.chdir(accounts_repository)
    assert main(["validate"]) == 0
    assert capsys.readouterr().out == (
        'Account "us": 3 contacts in 1 file are valid.\n'
        'Account "uk-east": 3 contacts in 1 file are valid.\n'
    )
    assert main(["fmt", "--check"]) == 0


def test_init_accounts_config_declares_each_account_with_its_own_credentials(
    accounts_repository: Path,
) -> None:
    schema = json.loads((ROOT / "schemas" / "config.schema.json").read_text(encoding="utf-8"))
    config = YAML(typ="safe").load(accounts_repository / "reconciler.yaml")
    jsonschema.validate(config, schema)
    assert "contacts" not in config
    assert config["accounts"] == {
        "us": {"contacts": "contacts/us/", "credentials_env": "HEYMARKET_US"},
        "uk-east": {"contacts": "contacts/uk-east/", "credentials_env": "HEYMARKET_UK_EAST"},
    }
    # Every other section stays, as the defaults of every account.
    assert set(yaml_leaf_keys(config)) - {"accounts.us.contacts", "accounts.us.credentials_env"} - {
        "accounts.uk-east.contacts",
        "accounts.uk-east.credentials_env",
    } == set(schema_leaf_keys(schema)) - {"accounts", "contacts"}


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_init_accounts_workflows_pass_each_accounts_credentials(
    accounts_repository: Path, name: str
) -> None:
    template = workflow_template(name)
    written = (accounts_repository / ".github" / "workflows" / name).read_text(encoding="utf-8")
    for suffix in CREDENTIAL_SECRETS:
        plain = f"HEYMARKET_{suffix}: ${{{{ secrets.HEYMARKET_{suffix} }}}}"
        assert plain not in written
        for prefix in ("HEYMARKET_US", "HEYMARKET_UK_EAST"):
            line = f"{prefix}_{suffix}: ${{{{ secrets.{prefix}_{suffix} }}}}"
            # One line per account wherever the template had the plain one, indented alike.
            template_indents = [
                each[: each.index("HEYMARKET")] for each in template.splitlines() if plain in each
            ]
            written_indents = [
                each[: each.index(prefix)] for each in written.splitlines() if each.strip() == line
            ]
            assert written_indents == template_indents
            # Every workflow that talks to Heymarket passes the credentials this way.
            assert template_indents or name == "ci.yml"
    # Nothing else changes, and no plain credential secret is left anywhere.
    plain_lines = sum(
        1
        for each in template.splitlines()
        for suffix in CREDENTIAL_SECRETS
        if each.strip() == f"HEYMARKET_{suffix}: ${{{{ secrets.HEYMARKET_{suffix} }}}}"
    )
    assert len(written.splitlines()) == len(template.splitlines()) + plain_lines
    assert not re.search(r"secrets\.HEYMARKET_(SECRET_ID|SECRET_KEY|API_KEY)\b", written)


def test_init_accounts_workflows_pass_actionlint(accounts_repository: Path) -> None:
    workflows = [accounts_repository / ".github" / "workflows" / name for name in WORKFLOW_NAMES]
    problems = actionlint(workflows)
    assert problems == [], "\n".join(map(str, problems))


@pytest.mark.parametrize(
    ("accounts", "message"),
    [
        ("us,US", 'Error: Account name "US" is not allowed'),
        ("a-b,a_b", "Error: Accounts a-b, a_b must be different names"),
        ("us,", 'Error: Account name "" is not allowed'),
    ],
)
def test_init_accounts_refuses_names_it_cannot_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], accounts: str, message: str
) -> None:
    assert main(["init", str(tmp_path / "repo"), "--accounts", accounts]) == 1
    assert capsys.readouterr().err.startswith(message)
    assert not (tmp_path / "repo").exists()


def test_readme_installs_this_version_by_the_distributions_own_name(repository: Path) -> None:
    readme = (repository / "README.md").read_text(encoding="utf-8")
    assert f"heymarket-reconciler=={__version__}" in readme
    assert "pip install reconciler" not in readme
