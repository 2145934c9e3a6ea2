"""The JSON Schemas: inside an installed wheel they live in ``reconciler/schemas/``, in a
checkout in the repository's top-level ``schemas/``. Validators are compiled once, and
their errors become located, one-line problems that name the offending key."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from reconciler.core.errors import Problem
from reconciler.desired.phone_spellings import PhoneProblem, read_phone
from reconciler.desired.yaml_safety import LoadedYaml, locate, position
from reconciler.files.untrusted_json import decode_json

CONTACTS_SCHEMA = "contacts.schema.json"
CONFIG_SCHEMA = "config.schema.json"


def schema_directory() -> Path:
    package_copy = Path(__file__).parent.parent / "schemas"
    if package_copy.is_dir():
        return package_copy
    return Path(__file__).parent.parent.parent / "schemas"


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    # Shipped with the package, yet read through the one decoder like every other JSON file.
    schema: dict[str, Any] = decode_json((schema_directory() / name).read_bytes())
    return schema


@functools.cache
def validator(name: str) -> Draft202012Validator:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true/false",
    "null": "null",
    "object": "a mapping",
    "array": "a list",
}


def _kind_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def _where(path: Sequence[str | int]) -> str:
    if not path:
        return "the top level"
    last = path[-1]
    parent = path[-2] if len(path) > 1 else None
    if isinstance(last, int):
        return f'item {last + 1} of "{parent}"'
    if parent == "custom":
        return f'custom field "{last}"'
    return f'"{last}"'


def _message(error: ValidationError, path: Sequence[str | int], top_level: str) -> str:
    kind = error.validator
    where = _where(path)
    value = error.instance
    last = path[-1] if path else None
    if last == "phone" and isinstance(value, str) and kind == "pattern":
        problem = read_phone(value)
        if isinstance(problem, PhoneProblem):
            return problem.message
    if isinstance(last, int) and len(path) > 1 and path[-2] == "protect" and kind == "pattern":
        # A pattern that can never match a phone would leave the contacts it was meant to
        # guard unprotected.
        return (
            f'prune.protect pattern "{value}" can never match a phone; write a phone with its '
            'country code (spaces, dashes, brackets and a leading "+" allowed), with *, ? and '
            '[0-9] as wildcards, e.g. "+1 510 555*"'
        )
    if last == "default_region" and kind == "pattern":
        return (
            f'phones.default_region "{value}" is not a region code; write its two upper-case '
            'letters (ISO 3166-1), e.g. "US" or "GB"'
        )
    if last in ("owner", "marker_field") and kind == "pattern":
        # Trimmed away by the server, a blank marker would own nothing, and every plan would
        # show the same adoptions again.
        example = "sales-team" if last == "owner" else "Managed by"
        return f'"{last}" must not be blank; write a name, e.g. "{example}"'
    if last == "credentials_env" and kind == "pattern":
        return (
            f'"credentials_env" {value!r} is not an environment variable prefix; write upper-case '
            'letters, digits and _, e.g. "HEYMARKET_US" (for HEYMARKET_US_SECRET_ID and so on)'
        )
    if last == "url" and kind == "pattern":
        return (
            f'"url" {value!r} is not an http(s) URL; write it with its scheme, '
            'e.g. "https://api.heymarket.com"'
        )
    if last == "phone" and kind == "type":
        return (
            f'"phone" must be a phone number in quotes, e.g. "15105551234", not {_kind_of(value)}'
        )
    if kind == "type":
        wanted: Any = error.validator_value
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        described = [_TYPE_NAMES.get(name, name) for name in names]
        expected = (
            " or ".join(described)
            if len(described) < 3
            else (f"{', '.join(described[:-1])} or {described[-1]}")
        )
        if not path:
            expected = top_level
        return f"{where} must be {expected}, not {_kind_of(value)}"
    if kind == "required":
        required: Any = error.validator_value
        instance: Any = value
        missing = [name for name in required if name not in instance]
        return f'missing required key "{missing[0]}"' if missing else error.message
    if kind == "format" and error.validator_value == "email":
        return f'email "{value}" is not a valid email address'
    if kind == "minLength" and isinstance(value, str) and not value:
        return f"{where} must not be empty"
    if kind == "propertyNames":
        return f"{where} has a key that is not allowed: {error.message}"
    if kind in ("minimum", "maximum", "pattern", "enum"):
        return f"{where}: {value!r} is not allowed ({error.message})"
    return f"{where}: {error.message}"


def schema_problems(
    schema_name: str, loaded: LoadedYaml, display_path: str, top_level: str
) -> tuple[list[Problem], set[tuple[str | int, ...]]]:
    """Every schema violation of one parsed document as located problems, and the paths of
    the values that violate it (so callers can skip building them)."""
    problems: list[Problem] = []
    bad_paths: set[tuple[str | int, ...]] = set()
    for error in validator(schema_name).iter_errors(loaded.value):
        path = tuple(error.absolute_path)
        bad_paths.add(path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = list(error.schema.get("properties", {}))
            _, mapping_node = locate(loaded.root, path)
            for key in error.instance:
                if key in allowed:
                    continue
                key_node, _ = locate(mapping_node, (key,))
                line, column = position(key_node or mapping_node)
                problems.append(
                    Problem(
                        display_path,
                        line,
                        column,
                        f'unknown key "{key}" (allowed: {", ".join(allowed)})',
                    )
                )
            continue
        key_node, value_node = locate(loaded.root, path)
        line, column = position(key_node or value_node)
        problems.append(Problem(display_path, line, column, _message(error, path, top_level)))
    return problems, bad_paths
