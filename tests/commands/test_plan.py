"""`reconciler plan` as users and CI run it, against the sandbox over real HTTP.

Its golden files are tests/golden/plan-command*; tests/golden_files.py says how to
regenerate them."""

from __future__ import annotations

import json
import os
import pty
import re
import secrets
import stat
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from reconciler.cli import main
from reconciler.core.proof import (
    desired_state_digest,
)
from reconciler.desired.loader import load_desired_state
from reconciler.files.saved_plans import (
    read_saved_plan,
)
from tests.account import OWNER
from tests.golden_files import assert_golden
from tests.sandbox_handle import SandboxHandle

ROOT = Path(__file__).resolve().parents[2]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ANSI = "\033["
# Every route that only reads; plan must call nothing else.
READ_ROUTES = {
    "POST /v1/contact-fields",
    "POST /v2/contacts/list",
    "POST /v2/contacts/search",
    "POST /v1/contacts/count",
}
MARKER = "Managed by"

CONFIG = f"ownership:\n  owner: {OWNER}\n"

DESIRED = """\
# Team A's contacts.
contacts:
  - phone: "15105550001"
    first: Alice
    last: Smith
    email: alice@example.com
    custom:
      Account tier: gold
      Region: West
  - phone: "15105550002"
    first: Bob
    last: Jones-Smith
    custom:
      Account tier: silver
  - phone: "15105550003"
    first: Carol
  - phone: "15105550004"
    first: Dan
  - phone: "15105550005"
    first: Erin
    is_opted_out: false
"""

LIVE: list[dict[str, Any]] = [
    {"phone": "15105550002", "first": "Bob", "last": "Jones",
     "custom": {"Account tier": "bronze", MARKER: OWNER}},
    {"phone": "15105550003", "first": "Carol", "custom": {MARKER: OWNER}},
    # Imported in the app: no marker yet, so the plan adopts it.
    {"phone": "15105550004", "first": "Dan"},
    {"phone": "15105550005", "first": "Erin", "is_opted_out": True, "custom": {MARKER: OWNER}},
    # Owned and no longer declared: a prune candidate.
    {"phone": "15105550009", "first": "Zed", "last": "Old", "email": "zed@example.com",
     "custom": {MARKER: OWNER}},
    # Created in the app, never owned: never pruned.
    {"phone": "15105550010", "first": "Walk-in"},
]  # fmt: skip

# Every name, email and phone above that masking must hide.
PII = [
    "15105550001", "15105550002", "15105550004", "15105550009",
    "alice@example.com", "zed@example.com", "Alice", "Smith", "Jones", "Zed",
]  # fmt: skip


def stable(text: str) -> str:
    """Contact ids are random per sandbox run; everything else in a plan is deterministic."""
    return UUID.sub("<uuid>", text)


@pytest.fixture
def project_files() -> dict[str, str]:
    return {"reconciler.yaml": CONFIG, "contacts/team.yaml": DESIRED}


@pytest.fixture
def project(project: Path, sandbox: SandboxHandle) -> SandboxHandle:
    """The shared repository declaring DESIRED, and the account seeded with LIVE: what the
    tests here look at is the sandbox."""
    sandbox.seed(LIVE)
    return sandbox


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["plan", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_text_plan_with_prune_preview(
    project: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    before = project.contacts()
    code, out, err = run(["--prune"], capsys)
    assert code == 0
    assert ANSI not in out + err
    assert_golden("plan-command.txt", stable(out))
    assert_golden("plan-command.stderr.txt", stable(err))
    assert out.rstrip().endswith("Plan: 1 to create, 2 to update, 1 to delete.")
    # plan only reads: nothing in the account changed and no write route was called.
    assert project.contacts() == before
    assert set(project.stats()["by_route"]) <= READ_ROUTES


def test_without_prune_the_deletes_are_only_counted(
    project: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([], capsys)
    assert code == 0
    assert "- delete" not in out
    assert "1 owned contacts are no longer declared; `plan --prune` shows them" in out
    # The cap warning belongs to a prune plan only.
    assert "apply --prune will refuse" not in err


def test_markdown_plan(project: SandboxHandle, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["--prune", "--format", "markdown"], capsys)
    assert code == 0
    assert err == ""
    assert_golden("plan-command.md", stable(out))


def test_json_plan_keeps_stdout_clean(
    project: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["--prune", "--format", "json"], capsys)
    assert (code, err) == (0, "")
    document = json.loads(out)
    assert document["format_version"] == 1
    assert document["summary"] == {"create": 1, "update": 2, "delete": 1, "unchanged": 2}
    uuids = {record["phone"]: record["uuid"] for record in project.contacts()}
    changes = {change["phone"]: change for change in document["changes"]}
    assert [change["action"] for change in document["changes"]] == [
        "create", "update", "update", "delete",
    ]  # fmt: skip
    assert changes["15105550001"]["source"] == "contacts/team.yaml:3"
    assert changes["15105550002"]["contact_id"] == uuids["15105550002"]
    assert changes["15105550002"]["fields"] == {"last": {"before": "Jones", "after": "Jones-Smith"}}
    assert changes["15105550009"]["contact_id"] == uuids["15105550009"]
    assert document["fields_to_create"] == ["Region"]
    messages = [warning["message"] for warning in document["warnings"]]
    assert any("only the contact can opt back in" in message for message in messages)
    # One delete of 4 owned contacts is 25%, over the default 5% cap.
    assert any(message.startswith("apply --prune will refuse") for message in messages)


def test_detailed_exitcode_changes(
    project: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--detailed-exitcode"], capsys)[0] == 2
    assert run(["--detailed-exitcode", "--format", "json"], capsys)[0] == 2


def test_detailed_exitcode_no_changes(
    project: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("contacts/team.yaml").write_text(
        'contacts:\n  - phone: "15105550003"\n    first: Carol\n', encoding="utf-8"
    )
    code, out, _ = run(["--detailed-exitcode"], capsys)
    assert code == 0
    assert out.startswith(
        "Live state read in full: 3 API requests.\n\n"
        "No changes. The live account matches the desired state."
    )


def test_plan_with_errors_prints_the_plan_then_exits_1(
    project: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    project.seed([{"phone": "15105550020", "first": "Fay", "custom": {MARKER: "team-b"}}])
    Path("contacts/more.yaml").write_text(
        'contacts:\n  - phone: "15105550020"\n    first: Fay\n', encoding="utf-8"
    )
    code, out, err = run(["--detailed-exitcode"], capsys)
    assert code == 1
    assert "Plan: 1 to create, 2 to update, 0 to delete." in out
    assert (
        "Error: 15105550020 (contacts/more.yaml:2): is owned by 'team-b' (custom field "
        "'Managed by'), not by 'team-a': left untouched." in err
    )
    code, out, _ = run(["--format", "json"], capsys)
    assert code == 1
    assert json.loads(out)["errors"][0]["phone"] == "15105550020"


class DuplicatingProxy(ThreadingHTTPServer):
    """Forwards every request to the sandbox, and lists one phone twice (under a second id):
    an account state the sandbox refuses to hold, as real accounts can after an import."""

    def __init__(self, upstream: str, phone: str) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = httpx.Client(base_url=upstream, timeout=30.0)
        self.phone = phone

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: DuplicatingProxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() in {"authorization", "content-type", "accept"}
        }
        answer = self.server.upstream.post(self.path, content=body, headers=headers)
        content = answer.content
        if self.path == "/v2/contacts/list" and answer.status_code == 200:
            items = answer.json()
            items += [
                {**item, "id": item["id"] + 1_000_000, "uuid": str(uuid.uuid4())}
                for item in items
                if item["phone"] == self.server.phone
            ]
            content = json.dumps(items).encode()
        self.send_response(answer.status_code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.send_header("X-Request-Id", answer.headers.get("X-Request-Id", "proxy"))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_phone_live_twice_is_an_error(
    project: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    proxy = DuplicatingProxy(project.url, "15105550003")
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        code, out, err = run(["--api-url", proxy.url], capsys)
    finally:
        proxy.shutdown()
        proxy.server_close()
        proxy.upstream.close()
        thread.join()
    assert code == 1
    assert "Plan: 1 to create, 2 to update, 0 to delete." in out
    assert "Error: 15105550003 (contacts/team.yaml:15): exists 2 times in the account" in err


def test_out_writes_a_saved_plan_without_credentials(
    project: SandboxHandle, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(["--prune", "--out", "plan.json"], capsys)
    assert code == 0
    assert out.endswith(
        "Saved the plan to plan.json; apply it with `reconciler apply plan.json`.\n"
    )
    path = Path("plan.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = read_saved_plan(path)
    assert [change["action"] for change in saved.changes].count("delete") == 1
    assert saved.provenance.desired_digest == desired_state_digest(
        load_desired_state(Path("contacts"), Path.cwd()).contacts
    )
    assert saved.provenance.api_url == project.url.rstrip("/")
    live = {record["phone"]: record for record in project.contacts()}
    changes = {change["phone"]: change for change in saved.changes}
    assert changes["15105550002"]["rev"] == live["15105550002"]["rev"]
    assert "contact_id" not in changes["15105550001"]

    for name, value in project.env(jwt=True).items():
        monkeypatch.setenv(name, value)
    code, out, err = run(["--format", "json", "--out", "plan.json"], capsys)
    assert code == 0
    json.loads(out)  # the note about the file went to stderr, not into the document
    assert "Saved the plan to plan.json" in err
    text = path.read_text(encoding="utf-8")
    for secret in (project.api_key, project.secret_id, project.secret_key):
        assert secret not in text


def test_invalid_desired_state_makes_no_request(
    project: SandboxHandle, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("contacts/bad.yaml").write_text(
        'contacts:\n  - phone: "15105550030"\n    frist: Ann\n  - phone: "510 555 0031"\n',
        encoding="utf-8",
    )
    # The desired state is checked before the credentials: its problems come first.
    monkeypatch.delenv("HEYMARKET_API_KEY")
    code, out, err = run(["--format", "json"], capsys)
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert lines[0].startswith('contacts/bad.yaml:3:5: unknown key "frist"')
    assert lines[1].startswith('contacts/bad.yaml:4:5: phone "510 555 0031" has no country')
    assert lines[2] == ("Found 2 problems in 1 file; nothing was planned and no request was made.")
    assert project.stats()["requests"] == 0


def test_jwt_credentials(
    project: SandboxHandle, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HEYMARKET_API_KEY")
    for name, value in project.env(jwt=True).items():
        monkeypatch.setenv(name, value)
    code, out, _ = run([], capsys)
    assert code == 0
    assert "Plan: 1 to create, 2 to update, 0 to delete." in out


def test_missing_credentials(
    project: SandboxHandle, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HEYMARKET_API_KEY")
    code, out, err = run([], capsys)
    assert (code, out) == (1, "")
    assert err == (
        "Error: no Heymarket credentials: set HEYMARKET_SECRET_ID and HEYMARKET_SECRET_KEY "
        "(preferred) or HEYMARKET_API_KEY in the environment\n"
    )
    assert project.stats()["requests"] == 0


def test_rejected_credentials(
    project: SandboxHandle, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "wrong-" + secrets.token_hex(8)
    monkeypatch.setenv("HEYMARKET_API_KEY", wrong)
    code, out, err = run([], capsys)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith("Error: Heymarket did not accept the credentials from HEYMARKET_API_KEY")
    assert "HTTP 401" in err
    assert wrong not in err


@pytest.mark.parametrize("output_format", ["text", "markdown", "json"])
def test_mask_pii_masks_every_format(
    project: SandboxHandle, capsys: pytest.CaptureFixture[str], output_format: str
) -> None:
    code, out, err = run(["--prune", "--mask-pii", "--format", output_format], capsys)
    assert code == 0
    # Markdown escapes the asterisks; what a reader sees is the same.
    shown = (out + err).replace("\\*", "*")
    for value in PII:
        assert value not in shown
    assert "1510*****01" in shown
    assert "a***@example.com" in shown


def test_mask_pii_from_the_config(
    project: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("reconciler.yaml").write_text(CONFIG + "output:\n  mask_pii: true\n", encoding="utf-8")
    _, out, err = run(["--prune"], capsys)
    assert "15105550001" not in out + err
    assert "1510*****01" in out


def test_plain_http_to_another_host_is_refused(
    project: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    port = urlsplit(project.url).port
    # 0.0.0.0 is not a loopback address, yet on Linux connecting to it reaches this machine:
    # a stand-in for a remote host that the test can still reach.
    remote = f"http://0.0.0.0:{port}"
    code, out, err = run(["--api-url", remote], capsys)
    assert (code, out) == (1, "")
    assert err == (
        'Error: refusing plain http to "0.0.0.0": credentials would travel unencrypted; '
        "use https, or pass --insecure if you really mean it\n"
    )
    assert project.stats()["requests"] == 0
    if sys.platform == "linux":
        code, out, _ = run(["--api-url", remote, "--insecure"], capsys)
        assert code == 0
        assert "Plan: 1 to create" in out


def test_github_step_summary_is_appended(
    project: SandboxHandle,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text("### Earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, _ = run(["--prune", "--mask-pii"], capsys)
    assert code == 0
    assert "Plan: 1 to create" in out
    written = summary.read_text(encoding="utf-8")
    assert written.startswith("### Earlier step\n### reconciler plan\n")
    assert "| create | update | delete | unchanged |" in written
    assert "15105550001" not in written
    _, markdown, _ = run(["--prune", "--mask-pii", "--format", "markdown"], capsys)
    assert summary.read_text(encoding="utf-8") == written + markdown


def _run_on_a_terminal(env: dict[str, str], cwd: Path) -> str:
    """Run the real entry point with stdout on a pseudo-terminal; returns what it showed."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "plan"],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=subprocess.STDOUT,
    )
    os.close(terminal)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    assert process.wait(timeout=60) == 0
    return b"".join(chunks).decode()


def test_colour_only_on_a_terminal_without_no_color(project: SandboxHandle) -> None:
    env: dict[str, Any] = {
        key: value for key, value in os.environ.items() if not key.startswith("NO_COLOR")
    }
    env["PYTHONPATH"] = str(ROOT)
    shown = _run_on_a_terminal(env, Path.cwd())
    assert "\033[32m+\033[0m" in shown
    assert "Plan: 1 to create" in shown
    shown = _run_on_a_terminal({**env, "NO_COLOR": "1"}, Path.cwd())
    assert ANSI not in shown
    assert "Plan: 1 to create" in shown


def test_demo_plans_the_example_contacts_and_stops_its_sandbox() -> None:
    token = secrets.token_hex(8)
    env = {**os.environ, "PYTHON": sys.executable, "DEMO_TEST_TOKEN": token}
    env.pop("NO_COLOR", None)
    completed = subprocess.run(
        ["bash", str(ROOT / "demo" / "run.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert "Plan: 4 to create, 10 to update, 2 to delete." in out
    assert "~ adopt 17185550401" in out
    assert "- delete 14155550199" in out
    # Created in the app and never owned: not pruned.
    assert "19175550999" not in out
    assert completed.stderr == ""

    failed = subprocess.run(
        ["bash", str(ROOT / "demo" / "run.sh"), "--format", "nonsense"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert failed.returncode == 1
    assert _processes_with_token(token) == []


def _processes_with_token(token: str) -> list[str]:
    """The processes still running with ``token`` in their environment (the demo's sandbox
    inherits it)."""
    found = []
    marker = f"DEMO_TEST_TOKEN={token}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environment = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environment.split(b"\0"):
            found.append(entry.name)
    return found


def test_phones_are_planned_by_their_canonical_identity_and_warned_when_unassigned(
    project: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    spelled = DESIRED.replace('"15105550001"', '"+1 (510) 555-0001"')
    assert spelled != DESIRED
    Path("contacts/team.yaml").write_text(spelled, encoding="utf-8")
    code, out, _ = run(["--format", "json"], capsys)
    assert code == 0
    canonical = json.loads(out)
    Path("contacts/team.yaml").write_text(DESIRED, encoding="utf-8")
    again = json.loads(run(["--format", "json"], capsys)[1])
    # The second plan reads the account from the first one's snapshot: same plan, fewer
    # requests (the custom fields, the changes since, the end of that listing, the count).
    assert (canonical.pop("live"), again.pop("live")) == (
        {"read": "full", "requests": 3},
        {"read": "incremental", "requests": 4},
    )
    assert again == canonical
    assert not [w for w in canonical["warnings"] if "assigned" in w["message"]]

    Path("contacts/more.yaml").write_text('contacts:\n  - phone: "(555) 000-0001"\n')
    Path("reconciler.yaml").write_text(CONFIG + "phones:\n  default_region: US\n")
    code, out, err = run(["--detailed-exitcode"], capsys)
    assert code == 2  # the warning changes no exit code: 2 is for the changes
    assert (
        "Warning: 15550000001 (contacts/more.yaml:2): not known to be an assigned number in "
        "+1 (US), though its length is possible; check it (messages to it may not be delivered)"
    ) in err
    code, out, _ = run(["--format", "json"], capsys)
    warnings = json.loads(out)["warnings"]
    assert len(warnings) == len(canonical["warnings"]) + 1
    assert warnings[0]["phone"] == "15550000001"
    assert warnings[0]["source"] == "contacts/more.yaml:2"


def test_thousands_of_unassigned_numbers_do_not_bury_the_plan(
    project: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    unassigned = "".join(f'  - phone: "1555000{n:04d}"\n' for n in range(25))
    Path("contacts/unassigned.yaml").write_text(f"contacts:\n{unassigned}", encoding="utf-8")
    code, out, err = run([], capsys)
    assert code == 0
    printed = out + err
    assert printed.count("not known to be an assigned number") == 20
    assert "and 5 more phones not known to be assigned numbers" in printed
