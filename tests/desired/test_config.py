"""Loading reconciler.yaml: defaults, values, relative paths, and located problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.core.errors import ConfigError, InputNotFoundError
from reconciler.desired.config import Config, load_config


def test_defaults_without_a_config_file_use_the_directory_name_as_owner(tmp_path: Path) -> None:
    project = tmp_path / "sales-team"
    project.mkdir()
    config = load_config(None, project)
    assert config.ownership.owner == "sales-team"
    assert config.contacts == Path("contacts")
    assert config.prune.max_deletes == 25
    assert config.source is None


def test_every_key_is_read(tmp_path: Path) -> None:
    (tmp_path / "reconciler.yaml").write_text(
        "contacts: people/\n"
        "api:\n  url: http://127.0.0.1:9000\n  requests_per_minute: 60\n"
        "ownership:\n  marker_field: Owner\n  owner: support\n"
        "prune:\n  max_deletes: 3\n  max_delete_percent: 1.5\n  protect: ['1510*']\n"
        "  backup_dir: backups\n"
        "output:\n  mask_pii: true\n",
        encoding="utf-8",
    )
    config = load_config(None, tmp_path)
    assert config.contacts == Path("people")
    assert config.api.url == "http://127.0.0.1:9000"
    assert config.api.requests_per_minute == 60
    assert (config.ownership.marker_field, config.ownership.owner) == ("Owner", "support")
    assert config.prune.max_deletes == 3
    assert config.prune.max_delete_percent == 1.5
    assert config.prune.protect == ("1510*",)
    assert config.prune.backup_dir == Path("backups")
    assert config.output.mask_pii is True
    assert config.source == tmp_path / "reconciler.yaml"


def test_paths_are_relative_to_the_config_file_elsewhere(tmp_path: Path) -> None:
    other = tmp_path / "repo"
    other.mkdir()
    (other / "custom.yaml").write_text("contacts: people\n", encoding="utf-8")
    config = load_config(Path("repo/custom.yaml"), tmp_path)
    assert config.contacts == tmp_path / "repo" / "people"
    assert config.ownership.owner == "repo"


def test_empty_config_file_means_defaults(tmp_path: Path) -> None:
    (tmp_path / "reconciler.yaml").write_text("# nothing yet\n", encoding="utf-8")
    assert load_config(None, tmp_path).prune == Config().prune


def test_every_problem_is_located(tmp_path: Path) -> None:
    (tmp_path / "reconciler.yaml").write_text(
        "prune:\n  max_deletes: -1\n  max_delet_percent: 5\napi:\n  url: ftp://x\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(None, tmp_path)
    assert [str(problem) for problem in caught.value.problems] == [
        'reconciler.yaml:2:3: "max_deletes": -1 is not allowed (-1 is less than the minimum of 0)',
        'reconciler.yaml:3:3: unknown key "max_delet_percent" '
        "(allowed: max_deletes, max_delete_percent, protect, backup_dir)",
        "reconciler.yaml:5:3: \"url\" 'ftp://x' is not an http(s) URL; write it with its "
        'scheme, e.g. "https://api.heymarket.com"',
    ]


def test_a_blank_owner_or_marker_field_is_refused(tmp_path: Path) -> None:
    # The server trims it to nothing: the repository would own no contact it writes, and every
    # plan would show the same adoptions again.
    (tmp_path / "reconciler.yaml").write_text(
        'ownership:\n  owner: "  "\n  marker_field: " "\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(None, tmp_path)
    assert [str(problem) for problem in caught.value.problems] == [
        'reconciler.yaml:2:3: "owner" must not be blank; write a name, e.g. "sales-team"',
        'reconciler.yaml:3:3: "marker_field" must not be blank; write a name, e.g. "Managed by"',
    ]


def test_unsafe_yaml_in_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "reconciler.yaml").write_text(
        "output:\n  mask_pii: true\n  mask_pii: false\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r'reconciler.yaml:3:3: key "mask_pii" appears twice'):
        load_config(None, tmp_path)


def test_named_config_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match=r'^config file "nope.yaml" does not exist$'):
        load_config(Path("nope.yaml"), tmp_path)


def test_phones_default_region_is_read_and_defaults_to_none(tmp_path: Path) -> None:
    assert Config().phones.default_region is None
    (tmp_path / "reconciler.yaml").write_text("phones:\n  default_region: GB\n", encoding="utf-8")
    assert load_config(None, tmp_path).phones.default_region == "GB"
    (tmp_path / "reconciler.yaml").write_text("phones:\n  default_region: null\n", encoding="utf-8")
    assert load_config(None, tmp_path).phones.default_region is None


@pytest.mark.parametrize(
    ("region", "message"),
    [
        (
            "XX",
            'phones.default_region "XX" is not a region with a known numbering plan; write an '
            'ISO 3166-1 code, e.g. "US" or "GB"',
        ),
        (
            "us",
            'phones.default_region "us" is not a region code; write its two upper-case letters '
            '(ISO 3166-1), e.g. "US" or "GB"',
        ),
        (
            "USA",
            'phones.default_region "USA" is not a region code; write its two upper-case letters '
            '(ISO 3166-1), e.g. "US" or "GB"',
        ),
    ],
)
def test_an_unknown_default_region_is_a_config_error(
    tmp_path: Path, region: str, message: str
) -> None:
    (tmp_path / "reconciler.yaml").write_text(
        f"phones:\n  default_region: {region}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(None, tmp_path)
    assert [str(problem) for problem in caught.value.problems] == [
        f"reconciler.yaml:2:3: {message}"
    ]


# --- several accounts --------------------------------------------------------------------

ACCOUNTS = """\
ownership: {marker_field: Managed by, owner: acme}
prune: {max_deletes: 25, protect: ["1510*"], backup_dir: backups}
phones: {default_region: US}
accounts:
  us:
    contacts: contacts/us
    credentials_env: HEYMARKET_US
  uk:
    contacts: contacts/uk
    credentials_env: HEYMARKET_UK
    api: {url: https://uk.example.com}
    prune: {max_deletes: 10}
    phones: {default_region: GB}
    output: {mask_pii: true}
"""


def test_an_account_overrides_the_defaults_key_by_key(tmp_path: Path) -> None:
    (tmp_path / "reconciler.yaml").write_text(ACCOUNTS, encoding="utf-8")
    config = load_config(None, tmp_path)
    us, uk = config.accounts
    assert (us.name, us.credentials_env, us.config.contacts) == (
        "us",
        "HEYMARKET_US",
        Path("contacts/us"),
    )
    assert us.config.prune.max_deletes == 25
    assert us.config.api.url == "https://api.heymarket.com"
    assert us.config.phones.default_region == "US"
    assert us.config.output.mask_pii is False
    # uk's own max_deletes wins; the rest of the section is the default's (a deep merge).
    assert (uk.config.prune.max_deletes, uk.config.prune.protect) == (10, ("1510*",))
    assert uk.config.api.url == "https://uk.example.com"
    assert uk.config.phones.default_region == "GB"
    assert uk.config.output.mask_pii is True
    assert uk.config.ownership == us.config.ownership
    assert uk.config.ownership.owner == "acme"
    # Each account's prune backups go to a directory of its own.
    assert us.config.prune.backup_dir == Path("backups/us")
    assert uk.config.prune.backup_dir == Path("backups/uk")
    assert us.config.source == tmp_path / "reconciler.yaml"


def test_an_account_may_name_its_own_backup_directory(tmp_path: Path) -> None:
    (tmp_path / "reconciler.yaml").write_text(
        "accounts:\n  us:\n    contacts: c\n    credentials_env: US\n"
        "    prune: {backup_dir: saved}\n  uk:\n    contacts: d\n    credentials_env: UK\n",
        encoding="utf-8",
    )
    us, uk = load_config(None, tmp_path).accounts
    assert us.config.prune.backup_dir == Path("saved")
    assert uk.config.prune.backup_dir == Path(".reconciler/backups/uk")


def test_without_accounts_there_is_one_account(tmp_path: Path) -> None:
    (tmp_path / "reconciler.yaml").write_text("contacts: people\n", encoding="utf-8")
    assert load_config(None, tmp_path).accounts == ()


def test_account_problems_are_located_and_name_the_key(tmp_path: Path) -> None:
    (tmp_path / "reconciler.yaml").write_text(
        "contacts: contacts\n"
        "accounts:\n"
        "  US:\n    contacts: c\n    credentials_env: HEYMARKET_US\n"
        "  uk:\n    contacts: d\n    credentials_env: heymarket-uk\n"
        "  de:\n    credentials_env: DE\n    prune: {max_deletes: -1}\n"
        "    phones: {default_region: ZZ}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(None, tmp_path)
    assert [str(problem) for problem in caught.value.problems] == [
        'reconciler.yaml:1:1: top-level "contacts" is not allowed with "accounts": give each '
        "account its own accounts.NAME.contacts",
        'reconciler.yaml:3:3: account name "US" is not allowed: use a lowercase letter, then '
        "up to 39 lowercase letters, digits, - or _ (it names the account's directories)",
        "reconciler.yaml:8:5: \"credentials_env\" 'heymarket-uk' is not an environment "
        'variable prefix; write upper-case letters, digits and _, e.g. "HEYMARKET_US" (for '
        "HEYMARKET_US_SECRET_ID and so on)",
        'reconciler.yaml:9:3: missing required key "contacts"',
        'reconciler.yaml:11:13: "max_deletes": -1 is not allowed (-1 is less than the minimum '
        "of 0)",
        'reconciler.yaml:12:14: accounts.de.phones.default_region "ZZ" is not a region with a '
        'known numbering plan; write an ISO 3166-1 code, e.g. "US" or "GB"',
    ]


def test_an_accounts_contacts_inside_anothers_is_refused(tmp_path: Path) -> None:
    (tmp_path / "reconciler.yaml").write_text(
        "accounts:\n"
        "  all:\n    contacts: contacts/\n    credentials_env: ALL\n"
        "  uk:\n    contacts: contacts/uk\n    credentials_env: UK\n"
        "  mirror:\n    contacts: contacts\n    credentials_env: MIRROR\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(None, tmp_path)
    # Two accounts with one directory declare the same contacts in both, which is allowed.
    assert [str(problem) for problem in caught.value.problems] == [
        'reconciler.yaml:3:5: accounts.all.contacts "contacts" holds accounts.uk.contacts '
        '"contacts/uk": give each account a directory of its own',
        'reconciler.yaml:9:5: accounts.mirror.contacts "contacts" holds accounts.uk.contacts '
        '"contacts/uk": give each account a directory of its own',
    ]
