"""Hostile input: whatever bytes a contacts file holds and whatever a server (or a proxy in
front of it) answers, the user gets a valid result or one clear error, never a traceback, and
an apply that cannot read the account writes nothing.

The YAML loader is fuzzed with hypothesis; the API answers the sandbox cannot produce come
from ``httpx.MockTransport`` (client level) and from a tiny loopback server (CLI level)."""

from __future__ import annotations

import json
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.cli import main
from reconciler.commands.apply import ApplyRequest
from reconciler.commands.apply import run as run_apply
from reconciler.commands.context import Settings
from reconciler.commands.environment import Environment
from reconciler.core.errors import DesiredStateError, ReconcilerError
from reconciler.desired.loader import DesiredState, load_desired_state, parse_file
from reconciler.heymarket import HeymarketClient
from reconciler.heymarket.auth import ApiKeyCredentials
from reconciler.report.console import Console
from tests.builders import record

SHOWN_AS = "contacts/fuzz.yaml"
PROBLEM_LINE = re.compile(r"^contacts/fuzz\.yaml:[1-9]\d*:[1-9]\d*: \S")
VALID_FILE = (
    "# the sales team\n"
    "contacts:\n"
    '  - phone: "15105551234"\n'
    "    first: Alice\n"
    "    last: Smith\n"
    "    email: alice@example.com\n"
    "    is_opted_out: false\n"
    "    custom:\n"
    "      Account tier: gold\n"
    '  - phone: "15105555678"\n'
    "    display_name: Bob\n"
    "    custom: {Region: west, Score: 3}\n"
)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


# --- the YAML loader ---------------------------------------------------------------------


def load_bytes(directory: Path, data: bytes) -> DesiredState | DesiredStateError:
    """Load ``data`` as the only contacts file, the way every command does."""
    (directory / "fuzz.yaml").write_bytes(data)
    try:
        return load_desired_state(directory, directory.parent)
    except DesiredStateError as error:
        return error


def is_one_line(text: str) -> bool:
    return len(text.splitlines()) == 1


def assert_located(problem: object) -> None:
    shown = str(problem)
    assert PROBLEM_LINE.match(shown) and is_one_line(shown), repr(shown)


def assert_valid_or_located(data: bytes) -> None:
    """A valid state, or a DesiredStateError whose every problem is FILE:LINE:COL: message."""
    reference = parse_file(data, SHOWN_AS)
    for problem in reference.problems:
        assert_located(problem)
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / "contacts"
        directory.mkdir()
        outcome = load_bytes(directory, data)
    if isinstance(outcome, DesiredStateError):
        assert outcome.problems, str(outcome)
        for problem in outcome.problems:
            assert_located(problem)
        assert is_one_line(str(outcome))
        assert reference.problems, "the fast path refused what the reference loader accepts"
    else:
        assert not reference.problems, "the fast path accepted what the reference refuses"
        assert [c.phone for c in outcome.contacts] == [c.phone for c in reference.contacts]
        for contact in outcome.contacts:
            assert contact.phone.isdigit(), contact.phone


@FUZZ
@given(st.binary(max_size=3000))
def test_random_bytes_are_a_state_or_located_problems(data: bytes) -> None:
    assert_valid_or_located(data)


@st.composite
def mutated_valid_files(draw: st.DrawFn) -> bytes:
    data = bytearray(VALID_FILE.encode())
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(
            st.sampled_from(
                [
                    b":",
                    b"-",
                    b" ",
                    b"\n",
                    b'"',
                    b"'",
                    b"{",
                    b"}",
                    b"[",
                    b"]",
                    b"&a",
                    b"*a",
                    b"!!python/object",
                    b"\t",
                    b"\r\n",
                    b"\xef\xbb\xbf",
                    b"\x00",
                    b"\xff",
                    b"~",
                    b"null",
                    b"yes",
                    b"0x1F",
                    b"1e400",
                    b".nan",
                    b"<<: ",
                    b"? ",
                ]
            )
            | st.binary(min_size=1, max_size=4)
        )
        if kind == "insert":
            data[position:position] = chunk
        elif kind == "delete":
            del data[position : position + len(chunk)]
        else:
            data[position : position + len(chunk)] = chunk
    return bytes(data)


@FUZZ
@given(mutated_valid_files())
def test_mutated_valid_files_are_a_state_or_located_problems(data: bytes) -> None:
    assert_valid_or_located(data)


odd_text = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), min_size=0, max_size=40
) | st.sampled_from(
    [
        "\u202eevil\u202c",  # right-to-left override
        "a\u200bb",  # zero-width space
        "\ufeffBOM inside",
        "e\u0301",  # combining accent
        "\U0001f600",
        "\u2028line separator",
        "\x85next line",
        "ﬀ ligature",
        "\uff11\uff12\uff13",  # full-width digits
    ]
)


@FUZZ
@given(odd_text, odd_text, st.booleans(), st.booleans())
def test_odd_unicode_bom_and_crlf_are_a_state_or_located_problems(
    value: str, phone: str, bom: bool, crlf: bool
) -> None:
    text = (
        "contacts:\n"
        f"  - phone: {json.dumps(phone)}\n"
        f"    first: {json.dumps(value)}\n"
        f"    custom: {{{json.dumps(value or 'x')}: {json.dumps(value)}}}\n"
        f"  - phone: {value}\n"
    )
    if crlf:
        text = text.replace("\n", "\r\n")
    data = text.encode()
    assert_valid_or_located(b"\xef\xbb\xbf" + data if bom else data)


def test_a_bom_and_crlf_line_ends_load_like_the_plain_file() -> None:
    plain = parse_file(VALID_FILE.encode(), SHOWN_AS)
    windows = parse_file(b"\xef\xbb\xbf" + VALID_FILE.replace("\n", "\r\n").encode(), SHOWN_AS)
    assert windows.problems == plain.problems == []
    assert windows.contacts == plain.contacts


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"contacts: " + b"[" * 5000 + b"]" * 5000 + b"\n", id="deep-flow-nesting"),
        pytest.param(
            b"contacts:\n" + b"".join(b"  " * i + b"- \n" for i in range(1, 400)),
            id="deep-block-nesting",
        ),
        pytest.param(b'contacts:\n  - phone: "1' + b"5" * 200_000 + b'"\n', id="huge-phone"),
        pytest.param(
            b'contacts:\n  - phone: "15105551234"\n    first: ' + b"x" * 5_000_000 + b"\n",
            id="huge-scalar",
        ),
        pytest.param(b"contacts:\n  - phone: 1" + b"0" * 5000 + b"\n", id="huge-integer"),
        pytest.param(b"contacts:\n  - phone: 1e99999\n", id="overflowing-float"),
        pytest.param(
            b"a: &a [x, x, x, x, x, x, x, x, x]\n"
            + b"".join(
                b"%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n"
                % ((98 + i,) * 2 + (97 + i,) * 9)
                for i in range(9)
            )
            + b"contacts: *j\n",
            id="billion-laughs",
        ),
        pytest.param(b"contacts: &c [*c]\n", id="recursive-alias"),
        pytest.param(b"contacts: !!python/object/apply:os.system [echo hi]\n", id="python-tag"),
        pytest.param(b"\xef\xbb\xbf\xef\xbb\xbfcontacts: []\n", id="double-bom"),
        pytest.param(b"\xff\xfec\x00o\x00n\x00", id="utf-16"),
        pytest.param(b"contacts: []\n---\ncontacts: []\n", id="two-documents"),
        pytest.param(b"contacts:\r  - phone: '15105551234'\r", id="old-mac-line-ends"),
        pytest.param(
            b"contacts:\n  - {phone: '15105551234', phone: '15105559999'}\n", id="dup-key"
        ),
        pytest.param(b"? [a, b]\n: c\ncontacts: []\n", id="complex-key"),
        pytest.param(
            b"contacts:\n  - phone: '15105551234'\n    custom: {? [x]: 1}\n", id="list-key"
        ),
    ],
)
def test_hostile_files_are_a_state_or_located_problems(data: bytes) -> None:
    assert_valid_or_located(data)


def test_an_alias_bomb_is_refused_without_being_expanded(tmp_path: Path) -> None:
    directory = tmp_path / "contacts"
    directory.mkdir()
    bomb = (
        b"a: &a ["
        + b"x," * 50
        + b"x]\n"
        + b"".join(
            b"%c: &%c [%s]\n" % (98 + i, 98 + i, b", ".join([b"*%c" % (97 + i)] * 50))
            for i in range(8)
        )
    )
    outcome = load_bytes(directory, bomb + b"contacts: []\n")
    assert isinstance(outcome, DesiredStateError)
    assert "anchors and aliases are not allowed" in str(outcome.problems[0])


def test_validate_reports_a_hostile_file_as_one_located_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "contacts").mkdir()
    (tmp_path / "contacts" / "fuzz.yaml").write_bytes(b"contacts: " + b"[" * 3000)
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert PROBLEM_LINE.match(captured.out.splitlines()[0]), captured.out


# --- API answers -------------------------------------------------------------------------


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
record_keys = st.sampled_from(sorted(record()))


@st.composite
def damaged_records(draw: st.DrawFn) -> dict[str, Any]:
    """A contact record with some fields missing or of the wrong type."""
    damaged = record()
    for _ in range(draw(st.integers(1, 4))):
        key = draw(record_keys)
        if draw(st.booleans()):
            damaged.pop(key, None)
        else:
            damaged[key] = draw(json_values)
    return damaged


class Answer:
    """One canned HTTP answer. Not a dataclass: hypothesis prints dataclasses field by field,
    and some bodies are megabytes."""

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.body[:150]!r}..., {len(self.body)} bytes)"


def as_json(value: object) -> Answer:
    return Answer(200, json.dumps(value).encode())


html_502 = Answer(
    502,
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    b"</h1></center><hr><center>nginx</center></body></html>\n",
    "text/html",
)
hostile_answers = st.one_of(
    json_values.map(as_json),
    st.lists(damaged_records(), min_size=1, max_size=3).map(as_json),
    damaged_records().map(lambda one: as_json({"contacts": one})),
    st.binary(max_size=200).map(lambda data: Answer(200, data)),
    st.integers(1, 200).map(lambda cut: Answer(200, json.dumps([record()] * 3).encode()[:-cut])),
    st.sampled_from(
        [
            html_502,
            Answer(200, b"<!doctype html><p>Sign in to continue</p>", "text/html"),
            Answer(200, b""),
            Answer(200, b"null"),
            Answer(200, b'{"contacts": {"id": 1}}'),
            Answer(200, json.dumps([record(id="42", rev="3")]).encode()),
            Answer(200, json.dumps([record(uuid=None)]).encode()),
            Answer(200, b"[" * 100_000 + b"]" * 100_000),
            Answer(200, json.dumps([record(first="x" * 2_000_000)]).encode()),
            Answer(400, b'{"error": "bad_data", "message": "line one\\nline two"}'),
            Answer(404, b"Not Found", "text/plain"),
            Answer(418, json.dumps({"message": "m" * 50_000}).encode()),
            Answer(500, b"\xff\xfe garbage"),
            Answer(200, b"\xef\xbb\xbf[]"),
        ]
    ),
)


@dataclass
class Recorder:
    """Serves one answer to every request and notes the requests."""

    answer: Answer
    requests: list[str] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        return httpx.Response(
            self.answer.status,
            content=self.answer.body,
            headers={"Content-Type": self.answer.content_type, **self.answer.headers},
        )


def mock_client(recorder: Recorder) -> HeymarketClient:
    return HeymarketClient(
        "https://api.heymarket.test",
        ApiKeyCredentials("hostile-test-key"),
        transport=httpx.MockTransport(recorder),
        sleep=lambda _seconds: None,
        requests_per_minute=1_000_000,
    )


CLIENT_CALLS: dict[str, Callable[[HeymarketClient], object]] = {
    "list_contacts": lambda client: client.list_contacts(),
    "search_by_phones": lambda client: client.search_by_phones(["15105551234"]),
    "list_custom_fields": lambda client: client.list_custom_fields(),
    "count": lambda client: client.count(),
    "bulk_upsert": lambda client: client.bulk_upsert([{"phone": "15105551234"}]),
    "bulk_delete": lambda client: client.bulk_delete(["5b1c-uuid"]),
}


@FUZZ
@given(st.sampled_from(sorted(CLIENT_CALLS)), hostile_answers)
def test_every_hostile_answer_is_a_value_or_one_clear_error(name: str, answer: Answer) -> None:
    with mock_client(Recorder(answer)) as client:
        try:
            CLIENT_CALLS[name](client)
        except ReconcilerError as error:
            message = str(error)
            assert message.strip(), type(error).__name__
            assert is_one_line(message), repr(message)
            assert len(message) < 2000, f"{len(message)} characters"


# --- CLI: a loopback server that answers badly --------------------------------------------


WRITE_ROUTES = frozenset(
    {"POST /v2/contacts", "POST /v1/contacts/fields", "POST /v1/batch/contacts"}
)


class _BadServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.writes: list[str] = []
        super().__init__(("127.0.0.1", 0), _BadHandler)


class _BadHandler(BaseHTTPRequestHandler):
    server: _BadServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        route = f"{self.command} {self.path}"
        if self.command == "DELETE" or route in WRITE_ROUTES:
            self.server.writes.append(route)
        self.send_response(self.server.answer.status)
        self.send_header("Content-Type", self.server.answer.content_type)
        self.send_header("Content-Length", str(len(self.server.answer.body)))
        for name, value in self.server.answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(self.server.answer.body)

    do_GET = do_POST = do_DELETE = do_PUT = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def bad_server(answer: Answer) -> Iterator[_BadServer]:
    server = _BadServer(answer)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def project_files() -> dict[str, str]:
    return {"reconciler.yaml": "ownership:\n  owner: team-a\n", "contacts/team.yaml": VALID_FILE}


@pytest.fixture
def project_env() -> dict[str, str]:
    """A key and no address: each test points the command at its bad server by --api-url."""
    return {"HEYMARKET_API_KEY": "hostile-test-key"}


CLI_ANSWERS = {
    # Retry-After: 0 lets the client's retries of a read run without waiting.
    "html-502-from-a-proxy": Answer(502, html_502.body, "text/html", {"Retry-After": "0"}),
    "truncated-json": Answer(200, json.dumps([record()] * 3).encode()[:-7]),
    "list-page-is-an-object": Answer(200, b'{"contacts": {"phone": "15105551234"}}'),
    "record-missing-its-phone": Answer(
        200, json.dumps([{k: v for k, v in record().items() if k != "phone"}]).encode()
    ),
    "wrong-types": Answer(200, json.dumps([record(rev=[1], is_opted_out="maybe")]).encode()),
    "login-page": Answer(200, b"<!doctype html><title>Sign in</title>", "text/html"),
    "huge-body": Answer(200, b"[" + b" " * 8_000_000 + b"{]"),
    "json-nested-too-deeply": Answer(200, b"[" * 200_000 + b"]" * 200_000),
    "multi-line-server-message": Answer(
        400, b'{"error": "bad", "message": "first\\nsecond\\nthird"}'
    ),
}


@pytest.mark.parametrize("command", ["plan", "apply", "export"])
@pytest.mark.parametrize("answer", CLI_ANSWERS.values(), ids=CLI_ANSWERS.keys())
def test_the_cli_says_one_line_and_exits_1_on_a_hostile_answer(
    command: str, answer: Answer, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = {
        "plan": ["plan"],
        "apply": ["apply", "--auto-approve", "--prune"],
        "export": ["export", "--out", "exported"],
    }[command]
    with bad_server(answer) as server:
        code = main([*args, "--api-url", f"http://127.0.0.1:{server.server_port}"])
    captured = capsys.readouterr()
    assert code == 1, captured.out + captured.err
    errors = [line for line in captured.err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, captured.err
    assert "Traceback" not in captured.err
    assert "unexpected" not in captured.err, captured.err
    assert server.writes == []
    assert not (project / "exported").exists() or not any((project / "exported").iterdir())


@dataclass
class ReadsAnswerBadly:
    """Every read gets the hostile answer; every write would succeed (and is noted)."""

    answer: Answer
    writes: list[str] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        route = f"{request.method} {request.url.path}"
        if request.method == "DELETE" or route in WRITE_ROUTES:
            self.writes.append(route)
            if request.method == "DELETE":
                return httpx.Response(200, json="ok")
            return httpx.Response(200, json={"contacts": [], "failed_contacts": []})
        return Recorder(self.answer)(request)


def live_read_fails(answer: Answer) -> bool:
    with mock_client(Recorder(answer)) as client:
        try:
            client.list_custom_fields()
            client.list_contacts()
        except ReconcilerError:
            return True
    return False


@FUZZ
@given(hostile_answers)
def test_an_apply_whose_live_read_is_hostile_writes_nothing(answer: Answer) -> None:
    server = ReadsAnswerBadly(answer)

    def connect(_settings: Settings, _environ: Mapping[str, str], _insecure: bool) -> Any:
        return HeymarketClient(
            "https://api.heymarket.test",
            ApiKeyCredentials("hostile-test-key"),
            transport=httpx.MockTransport(server),
            sleep=lambda _seconds: None,
            requests_per_minute=1_000_000,
        )

    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch)
        (project / "contacts").mkdir()
        (project / "contacts" / "team.yaml").write_text(VALID_FILE, encoding="utf-8")
        (project / "reconciler.yaml").write_text("ownership:\n  owner: team-a\n")
        output: list[str] = []
        request = ApplyRequest(auto_approve=True, prune=True, max_deletes=1000, refresh="full")
        console = Console(out=output.append, err=output.append, ask=lambda _question: "")
        try:
            run_apply(
                request,
                Environment(environ={}, cwd=project, console=console, connect_client=connect),
            )
        except ReconcilerError as error:
            assert is_one_line(str(error)), repr(str(error))
        else:
            assert not live_read_fails(answer), "apply went on after a live read it cannot parse"
    if live_read_fails(answer):
        assert server.writes == []
    else:
        # The account read fine (an empty list, say): writing is right, deleting on what was
        # read from that one answer is not possible, since nothing owned was seen.
        assert not any(route.startswith("DELETE") for route in server.writes), server.writes
