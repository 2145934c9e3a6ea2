"""``reconciler sandbox``: open the account (in memory or a ``--db`` file), preload a seed
file, and serve the API on a loopback port until Ctrl-C or SIGTERM.

The parts, from the socket in: ``http_server`` (HTTP), ``app`` (auth, faults, errors),
``api_routes`` and ``control_routes`` (the endpoints), ``wire`` (JSON in and out, stored by
``stored_values``), ``store`` (SQLite)."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from reconciler.core.errors import Problem, SandboxError
from reconciler.desired.yaml_safety import load_yaml
from reconciler.files.untrusted_json import UnreadableJson, decode_json
from reconciler.sandbox.app import SandboxApp
from reconciler.sandbox.credentials import Credentials
from reconciler.sandbox.faults import Faults, FaultSettings
from reconciler.sandbox.http_server import SandboxServer
from reconciler.sandbox.store import ContactStore
from reconciler.sandbox.wire import BadRequest, parse_seed_contact, seed_contact_list

# The first line the command prints; launch.py reads the URL from it.
BANNER_PREFIX = "Sandbox listening on "


def load_seed_file(path: Path) -> list[Any]:
    """A JSON or YAML list of contacts (or a mapping with a ``contacts`` list). The YAML goes
    through the same gate as contacts files: no anchors, no tags, nesting capped."""
    try:
        data = path.read_bytes()
    except OSError as problem:
        raise SandboxError(f"cannot read seed file {path}: {problem.strerror}") from None
    malformed = f"seed file {path} is not valid JSON or YAML"
    value: Any
    if path.suffix.lower() == ".json":
        try:
            value = decode_json(data)
        except UnreadableJson as problem:
            where = f"line {problem.line}: " if problem.line is not None else ""
            raise SandboxError(f"{malformed}: {where}{problem.reason}") from None
    else:
        loaded = load_yaml(data, str(path))
        if isinstance(loaded, Problem):
            raise SandboxError(
                f"{malformed}: line {loaded.line}, column {loaded.column}: {loaded.message}"
            )
        value = None if loaded is None else loaded.value
    try:
        return seed_contact_list(value)
    except BadRequest as problem:
        raise SandboxError(f"seed file {path}: {problem}") from None


def run_sandbox(
    *,
    host: str,
    port: int,
    db: Path | None,
    seed_file: Path | None,
    initial_faults: FaultSettings,
    environ: Mapping[str, str],
    out: TextIO,
) -> int:
    """Serve until Ctrl-C or SIGTERM; returns the exit code (0 on a clean stop)."""
    credentials, generated = Credentials.from_environment(environ)
    try:
        store = ContactStore(db)
    except Exception as problem:
        raise SandboxError(f"cannot open sandbox database {db}: {problem}") from None
    if seed_file is not None:
        items = load_seed_file(seed_file)
        try:
            store.seed([parse_seed_contact(item) for item in items])
        except BadRequest as problem:
            raise SandboxError(f"seed file {seed_file}: {problem}") from None
    app = SandboxApp(store, credentials, Faults(initial_faults))
    try:
        server = SandboxServer((host, port), app)
    except OSError as problem:
        raise SandboxError(f"cannot listen on {host}:{port}: {problem.strerror}") from None

    def stop(_signal: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    exports = [f"HEYMARKET_API_URL={server.url}"]
    values = {
        "HEYMARKET_API_KEY": credentials.api_key,
        "HEYMARKET_SECRET_ID": credentials.secret_id,
        "HEYMARKET_SECRET_KEY": credentials.secret_key,
    }
    # Only what the sandbox made up is printed; credentials it was given are never echoed.
    exports += [f"{name}={value}" for name, value in values.items() if name in generated]
    kept = sorted(set(values) - generated)
    print(f"{BANNER_PREFIX}{server.url}", file=out)
    note = f"  # accepting {', '.join(kept)} from the environment" if kept else ""
    print(f"export {' '.join(exports)}{note}", file=out, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        store.close()
    print("Sandbox stopped.", file=out, flush=True)
    return 0
