"""An API URL that points at a web server which is not Heymarket (a typo, a docs site, a
local file server): one line saying the URL does not look like the API, at once, never
"try again later"."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reconciler.cli import main
from tests.account import declare


class NoSuchMethods(BaseHTTPRequestHandler):
    """Python's own answer to every method it does not implement: an HTML 501 page."""

    def log_message(self, format: str, *args: object) -> None:
        pass


class NotFoundPages(NoSuchMethods):
    """A web server with no such page: an HTML 404."""

    def do_GET(self) -> None:
        self.send_error(404)

    do_POST = do_GET


@pytest.fixture(params=[NoSuchMethods, NotFoundPages], ids=["html-501", "html-404"])
def web_server(request: pytest.FixtureRequest) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def project_env(web_server: str) -> dict[str, str]:
    return {"HEYMARKET_API_URL": web_server, "HEYMARKET_API_KEY": "key"}


def test_a_web_server_that_is_not_the_api_is_named_as_such_at_once(
    project: Path, web_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    declare(project, {"phone": "15105550001"})
    started = time.monotonic()
    assert main(["plan"]) == 1
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    (line,) = err.splitlines()
    assert line.startswith("Error: ")
    assert f"{web_server} does not look like the Heymarket API; check the API URL" in line
    assert "text/html" in line
    assert "try again later" not in line
    # An answer that will not change is not retried.
    assert elapsed < 2
