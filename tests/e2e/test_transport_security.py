"""Credentials never cross a network in clear text by accident: HTTPS certificates are
verified, plain http goes only to this machine unless --insecure says otherwise (plan, apply,
export and restore alike), and the sandbox listens on loopback unless told otherwise."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from reconciler.cli import cli, main
from reconciler.commands.context import InsecureUrlError, check_api_url
from reconciler.core.errors import TransportError
from reconciler.core.model import LiveContact
from reconciler.core.ownership import Marker
from reconciler.execute.backup import write_backup
from reconciler.heymarket import HeymarketClient
from reconciler.heymarket.auth import ApiKeyCredentials
from tests.sandbox_handle import SandboxHandle

API_KEY = "transport-test-key"


@pytest.mark.parametrize(
    "url",
    [
        "https://api.heymarket.com",
        "http://127.0.0.1:8080",
        "http://127.8.9.10",
        "http://localhost:8080/",
        "http://[::1]:8080",
    ],
)
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    check_api_url(url, insecure=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://api.heymarket.com",
        "http://192.0.2.10:8080",
        "http://localhost.attacker.example",
        "http://127.0.0.1.attacker.example",
        "http://[2001:db8::1]",
    ],
)
def test_plain_http_to_another_host_is_refused_unless_insecure(url: str) -> None:
    with pytest.raises(InsecureUrlError, match=r"refusing plain http.*--insecure"):
        check_api_url(url, insecure=False)
    check_api_url(url, insecure=True)


@pytest.mark.parametrize("url", ["ftp://api.heymarket.com", "api.heymarket.com", "https://"])
def test_a_url_that_is_not_http_is_refused_even_with_insecure(url: str) -> None:
    with pytest.raises(InsecureUrlError, match="not an http"):
        check_api_url(url, insecure=True)


# --- HTTPS verification ------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed_https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTPS server on loopback whose certificate no trust store vouches for."""
    directory = tmp_path_factory.mktemp("tls")
    key, certificate = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", str(key), "-out", str(certificate), "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = HTTPServer(("127.0.0.1", 0), _ListHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


class _ListHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"[]")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_an_unverifiable_certificate_is_refused_by_default(self_signed_https: str) -> None:
    with (
        HeymarketClient(
            self_signed_https, ApiKeyCredentials(API_KEY), sleep=lambda _: None
        ) as client,
        pytest.raises(TransportError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"),
    ):
        client.list_custom_fields()


def test_no_flag_or_setting_turns_certificate_checks_off() -> None:
    options = {
        option
        for command in cli.commands.values()
        for parameter in command.params
        for option in getattr(parameter, "opts", [])
    }
    assert not {o for o in options if "verify" in o or "cert" in o or "tls" in o}
    schema = json.loads(Path("schemas/config.schema.json").read_text(encoding="utf-8"))
    assert "verify" not in json.dumps(schema).lower()


# --- every networked command refuses plain http to another host -----------------------


def non_loopback_address() -> str:
    """This machine's address on its network (no packet is sent to find it)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.123", 9))
        address: str = probe.getsockname()[0]
    except OSError:
        address = ""
    finally:
        probe.close()
    if not address or address.startswith("127."):
        pytest.skip("this machine has no non-loopback IPv4 address")
    return address


class _CountingServer(ThreadingHTTPServer):
    daemon_threads = True
    requests = 0


class _RefusingHandler(BaseHTTPRequestHandler):
    """Counts the request and answers 401, so a run that got through ends at once."""

    server: _CountingServer

    def _answer(self) -> None:
        self.server.requests += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"error": "unauthorized", "message": "bad key"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_DELETE = do_GET = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


def address_of(server: _CountingServer) -> tuple[str, str]:
    host, port = str(server.server_address[0]), int(server.server_address[1])
    return host, f"http://{host}:{port}"


@pytest.fixture
def network_server() -> Iterator[_CountingServer]:
    """A server on this machine's non-loopback address: "another host" as far as the URL
    says, reachable without a network."""
    server = _CountingServer((non_loopback_address(), 0), _RefusingHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def project_files() -> dict[str, str]:
    return {"contacts/team.yaml": 'contacts:\n  - phone: "15105551234"\n    first: Alice\n'}


@pytest.fixture
def project_env() -> dict[str, str]:
    """A key and no address: each command is pointed at its server by --api-url."""
    return {"HEYMARKET_API_KEY": API_KEY}


@pytest.fixture
def project(project: Path) -> Path:
    """The shared repository, with a backup of one deleted contact for restore to read."""
    contact = LiveContact(
        id=1,
        uuid="u-1",
        phone="15105559999",
        first="Gone",
        last=None,
        display_name=None,
        email=None,
        is_opted_out=False,
        custom={},
        rev=1,
        updated="2025-01-01T00:00:00Z",
        raw={},
    )
    write_backup(
        project / "backups", [contact], [], Marker("Managed by", "team-a"), datetime.now(UTC)
    )
    return project


def command_args(command: str, project: Path) -> list[str]:
    backup = next((project / "backups").glob("*.jsonl"))
    return {
        "plan": ["plan"],
        "apply": ["apply", "--auto-approve"],
        "export": ["export", "--out", "exported"],
        "restore": ["restore", str(backup), "--auto-approve"],
    }[command]


COMMANDS = ["plan", "apply", "export", "restore"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_networked_command_refuses_plain_http_to_another_host(
    command: str,
    project: Path,
    network_server: _CountingServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    host, url = address_of(network_server)
    assert main([*command_args(command, project), "--api-url", url]) == 1
    err = capsys.readouterr().err
    assert f'refusing plain http to "{host}"' in err and "--insecure" in err
    assert network_server.requests == 0


@pytest.mark.parametrize("command", COMMANDS)
def test_insecure_lets_every_networked_command_use_plain_http(
    command: str,
    project: Path,
    network_server: _CountingServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _host, url = address_of(network_server)
    assert main([*command_args(command, project), "--api-url", url, "--insecure"]) == 1
    err = capsys.readouterr().err
    assert "did not accept the credentials" in err, err
    assert network_server.requests >= 1


@pytest.mark.parametrize("where", ["environment", "config"])
def test_the_url_from_the_environment_or_config_is_checked_too(
    where: str,
    project: Path,
    network_server: _CountingServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _host, url = address_of(network_server)
    if where == "environment":
        monkeypatch.setenv("HEYMARKET_API_URL", url)
    else:
        (project / "reconciler.yaml").write_text(f"api:\n  url: {url}\n", encoding="utf-8")
    assert main(["plan"]) == 1
    assert "refusing plain http" in capsys.readouterr().err
    assert network_server.requests == 0


# --- the sandbox ------------------------------------------------------------------------


def test_the_sandbox_listens_on_loopback_unless_told_otherwise(sandbox: SandboxHandle) -> None:
    host_option = next(p for p in cli.commands["sandbox"].params if p.name == "host")
    assert host_option.default == "127.0.0.1"
    # The session's sandbox was started without --host.
    assert urlsplit(sandbox.url).hostname == "127.0.0.1"
