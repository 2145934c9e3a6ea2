"""What a user meets when something is wrong: one line saying what happened and what to do,
the right exit code, and no file left half-written."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import httpx
import pytest

from reconciler.cli import cli, main
from reconciler.core.errors import TransportError
from tests.fake_clock import FakeClock, highest
from tests.mock_api import mock_client
from tests.sandbox_handle import SandboxHandle


def test_a_host_that_never_answers_is_given_up_on_within_seconds() -> None:
    # A blackholed or mistyped host: every connection attempt times out. Before, each of six
    # attempts waited the whole 30 s read timeout: over three minutes to learn the URL is wrong.
    clock = FakeClock()
    connect_timeouts: list[float] = []

    def unanswered(request: httpx.Request) -> httpx.Response:
        connect_timeouts.append(request.extensions["timeout"]["connect"])
        raise httpx.ConnectTimeout("timed out", request=request)

    client = mock_client(unanswered, clock, uniform=highest)
    with client, pytest.raises(TransportError, match="could not reach Heymarket"):
        client.list_custom_fields()
    worst_case_seconds = sum(connect_timeouts) + sum(clock.slept)
    assert worst_case_seconds <= 45
    assert len(connect_timeouts) >= 2  # one blip is still ridden out


@pytest.fixture
def project_files() -> dict[str, str]:
    return {"contacts/a.yaml": 'contacts:\n  - first: Alice\n    phone: "15105551234"\n'}


@pytest.fixture
def project_env() -> dict[str, str]:
    """No server: what goes wrong here goes wrong before a request."""
    return {}


def test_a_nan_prune_percentage_is_a_config_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # NaN passes every minimum/maximum check, and compared with it no prune is ever over
    # the percentage cap: the guard would be off while the file looks like it sets one.
    (project / "reconciler.yaml").write_text(
        "prune:\n  max_delete_percent: .nan\n", encoding="utf-8"
    )
    assert main(["validate"]) == 1
    assert 'reconciler.yaml:2:3: "max_delete_percent" must be a number, not .nan' in (
        capsys.readouterr().out
    )


@pytest.fixture
def unwritable(project: Path) -> Iterator[Path]:
    """The contacts directory, made impossible to write into (even for root, by chattr)."""
    directory = project / "contacts"
    if os.geteuid() != 0:
        directory.chmod(0o555)
        yield directory
        directory.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(directory)]).returncode != 0:
        pytest.skip("cannot make a directory read-only for root here")
    try:
        yield directory
    finally:
        subprocess.run([chattr, "-i", str(directory)], check=True)


def test_fmt_into_a_read_only_directory_is_one_line_and_leaves_the_file(
    unwritable: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (unwritable / "a.yaml").read_text(encoding="utf-8")
    assert main(["fmt"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: cannot rewrite contacts/a.yaml:")
    assert "make the file and its directory writable" in err
    assert "unexpected" not in err and err.count("\n") == 1
    assert (unwritable / "a.yaml").read_text(encoding="utf-8") == before


def test_a_seed_file_that_does_not_parse_is_reported_on_one_line(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text('- phone: "15105551234"\n  first: [Alice\n', encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "reconciler", "sandbox", "--port", "0", "--seed", str(seed)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1
    assert run.stderr.startswith(f"Error: seed file {seed} is not valid JSON or YAML: line ")
    assert run.stderr.count("\n") == 1


def _reference_rows() -> dict[str, str]:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Reference", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        match = re.match(r"\| `(\w+)[^`]*` \| (.*?) \| ", line)
        if match and match.group(1) != "command":
            rows[match.group(1)] = match.group(2)
    return rows


@pytest.mark.parametrize(
    "name", ["validate", "fmt", "plan", "apply", "export", "restore", "sandbox", "init"]
)
def test_the_reference_table_names_each_flag_as_help_does(name: str) -> None:
    command = cli.commands[name]
    row = _reference_rows()[name]
    documented = dict(re.findall(r"`(--[\w-]+) ?([^`]*)`", row))
    shown: dict[str, str] = {}
    context = click.Context(command)
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            flag = max(param.opts, key=len)
            if param.is_flag:
                shown[flag] = ""
            elif isinstance(param.type, click.Choice):
                shown[flag] = "\\|".join(map(str, param.type.choices))
            else:
                shown[flag] = param.make_metavar(context)
    assert documented.keys() == shown.keys()
    # --host and --port are documented by their defaults; every other value as --help names it.
    for flag in documented.keys() - {"--host", "--port"}:
        assert documented[flag] == shown[flag], flag


def test_every_config_key_of_the_schema_is_in_the_reference() -> None:
    root = Path(__file__).parents[2]
    schema = json.loads((root / "schemas" / "config.schema.json").read_text(encoding="utf-8"))
    readme = (root / "README.md").read_text(encoding="utf-8")

    def keys(properties: dict[str, Any], prefix: str) -> Iterator[str]:
        for name, value in properties.items():
            if value.get("type") == "object" and "properties" in value:
                yield from keys(value["properties"], f"{prefix}{name}.")
            elif isinstance(value.get("additionalProperties"), dict):
                # A mapping by name (accounts): the mapping, then each key of an entry.
                yield f"{prefix}{name}"
                entry = value["additionalProperties"]["properties"]
                yield from keys(entry, f"{prefix}{name}.<name>.")
            else:
                yield f"{prefix}{name}"

    missing = [key for key in keys(schema["properties"], "") if f"| `{key}` |" not in readme]
    assert not missing


def test_applying_the_json_printed_by_plan_says_to_save_it_with_out(
    sandbox: SandboxHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "contacts").mkdir()
    (tmp_path / "contacts" / "a.yaml").write_text(
        'contacts:\n  - phone: "15105551234"\n    first: Alice\n', encoding="utf-8"
    )
    env = {**os.environ, **sandbox.env()}
    printed = subprocess.run(
        [sys.executable, "-m", "reconciler", "plan", "--format", "json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (tmp_path / "plan.json").write_text(printed.stdout, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "reconciler", "apply", "plan.json", "--auto-approve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1
    saved = tmp_path / "plan.json"
    assert run.stderr == (
        f"Error: {saved} is the output of `reconciler plan --format json`, which cannot be "
        f"applied; save a plan with `reconciler plan --out {saved}` instead\n"
    )
    assert sandbox.contacts() == []


def test_an_api_url_without_its_scheme_says_how_to_write_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "reconciler.yaml").write_text("api:\n  url: api.heymarket.com\n", encoding="utf-8")
    assert main(["validate"]) == 1
    assert capsys.readouterr().out == (
        "reconciler.yaml:2:3: \"url\" 'api.heymarket.com' is not an http(s) URL; write it with "
        'its scheme, e.g. "https://api.heymarket.com"\n'
    )
