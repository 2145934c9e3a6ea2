"""A local stand-in for the few GitHub REST endpoints the workflows' glue uses
(``reconciler.ci.github_flow``): a commit's pull requests, artifacts (list and zip
download, through a redirect as GitHub does), and issue comments (list, create, update).
It serves plain HTTP on loopback from a thread; tests set its state and read what was
posted. Nothing of reconciler's own is used, so it checks the glue from outside."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

REPOSITORY = "example/contacts"
REPOSITORY_ID = 4242
TOKEN = "ghs_stub-token"


@dataclass
class GitHubState:
    pulls_by_commit: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    archives: dict[int, bytes] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    _next_id: int = 100

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def merged_pull(self, number: int, merge_sha: str, head_sha: str) -> None:
        self.pulls_by_commit[merge_sha] = [
            {
                "number": number,
                "merged_at": "2026-01-01T00:00:00Z",
                "merge_commit_sha": merge_sha,
                "head": {"sha": head_sha},
            }
        ]

    def add_plan_artifact(
        self, head_sha: str, files: dict[str, bytes], *, fork: bool = False
    ) -> None:
        identifier = self.next_id()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as bundle:
            for name, content in files.items():
                bundle.writestr(name, content)
        self.archives[identifier] = buffer.getvalue()
        self.artifacts.append(
            {
                "id": identifier,
                "name": f"reconciler-plan-{head_sha}",
                "expired": False,
                "created_at": f"2026-01-01T00:00:{identifier % 60:02d}Z",
                "workflow_run": {
                    "head_sha": head_sha,
                    "repository_id": REPOSITORY_ID,
                    "head_repository_id": REPOSITORY_ID + (1 if fork else 0),
                },
            }
        )

    def comment_bodies(self, number: int) -> list[str]:
        return [str(comment["body"]) for comment in self.comments.get(number, [])]


class _Handler(BaseHTTPRequestHandler):
    state: GitHubState
    base_url: str

    def log_message(self, *_args: Any) -> None:
        return

    def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        payload = (
            b""
            if body is None
            else (body if isinstance(body, bytes) else json.dumps(body).encode())
        )
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        self.state.requests.append(f"{method} {url.path}")
        if url.path.startswith("/blob/"):
            # Blob storage: must not be sent the token.
            if self.headers.get("Authorization"):
                self._reply(400, {"message": "blob storage refuses an Authorization header"})
                return
            self._reply(200, self.state.archives[int(url.path.rsplit("/", 1)[1])])
            return
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._reply(401, {"message": "Bad credentials"})
            return
        prefix = f"/repos/{REPOSITORY}/"
        if not url.path.startswith(prefix):
            self._reply(404, {"message": "Not Found"})
            return
        parts = url.path[len(prefix) :].split("/")
        query = parse_qs(url.query)
        page = int(query.get("page", ["1"])[0])
        per_page = int(query.get("per_page", ["30"])[0])
        length = int(self.headers.get("Content-Length") or 0)
        body: Any = json.loads(self.rfile.read(length)) if length else None
        if method == "GET" and parts[0] == "commits" and parts[2:] == ["pulls"]:
            self._reply(200, self.state.pulls_by_commit.get(parts[1], []))
        elif method == "GET" and parts == ["actions", "artifacts"]:
            name = query.get("name", [""])[0]
            found = [a for a in self.state.artifacts if not name or a["name"] == name]
            window = found[(page - 1) * per_page : page * per_page]
            self._reply(200, {"total_count": len(found), "artifacts": window})
        elif method == "GET" and parts[:2] == ["actions", "artifacts"] and parts[3:] == ["zip"]:
            self._reply(302, None, {"Location": f"{self.base_url}/blob/{parts[2]}"})
        elif parts[0] == "issues" and parts[2:] == ["comments"]:
            comments = self.state.comments.setdefault(int(parts[1]), [])
            if method == "GET":
                self._reply(200, comments[(page - 1) * per_page : page * per_page])
            else:
                comment = {
                    "id": self.state.next_id(),
                    "body": body["body"],
                    "user": {"type": "Bot"},
                }
                comments.append(comment)
                self._reply(201, comment)
        elif method == "PATCH" and parts[:2] == ["issues", "comments"]:
            for comments in self.state.comments.values():
                for comment in comments:
                    if comment["id"] == int(parts[2]):
                        comment["body"] = body["body"]
                        self._reply(200, comment)
                        return
            self._reply(404, {"message": "Not Found"})
        else:
            self._reply(404, {"message": "Not Found"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")


@dataclass(frozen=True)
class GitHubStub:
    url: str
    state: GitHubState

    def env(self) -> dict[str, str]:
        """What a job gives its steps to reach the API."""
        return {
            "GITHUB_API_URL": self.url,
            "GITHUB_TOKEN": TOKEN,
            "GITHUB_REPOSITORY": REPOSITORY,
            "GITHUB_SERVER_URL": "https://github.example",
            "GITHUB_RUN_ID": "777",
        }


@contextmanager
def github_stub() -> Iterator[GitHubStub]:
    state = GitHubState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    handler = type("Handler", (_Handler,), {"state": state, "base_url": url})
    server.RequestHandlerClass = handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield GitHubStub(url, state)
    finally:
        server.shutdown()
        server.server_close()
