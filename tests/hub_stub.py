"""A small, real HTTP stand-in for the Hugging Face hub, for tests of `evals prefetch`.

`HubStub` listens on a free 127.0.0.1 port (stdlib `http.server`, one thread per connection) and
serves the endpoints `huggingface_hub`'s `repo_info`, `list_repo_tree`, `snapshot_download` and
`hf_hub_download` call, for repositories registered with `add_repo` (files given as bytes):

- `GET /api/{models,datasets}/ORG/NAME[/revision/REV]`: the repo's info (`id`, `sha`, `siblings`);
- `GET /api/{models,datasets}/ORG/NAME/tree/REV[/PATH]`: the file and folder entries (one page;
  `recursive=true` lists subfolders too);
- `HEAD`/`GET /[datasets/]ORG/NAME/resolve/REV/FILE`: the file, with the headers the client checks
  (`X-Repo-Commit`, `ETag`, `Content-Length`; `Range: bytes=N-` is honoured).

A revision is the repo's commit id or one of its branch names; anything else is a 404 with
`X-Error-Code: RevisionNotFound` (`RepoNotFound`, `EntryNotFound` likewise), as the hub answers; a
repo marked `gated` lists its files but answers 401 `GatedRepo` for every one.
Every request line is recorded in `requests`. Point the client at it with `HF_ENDPOINT` (in a
child process) or pass `url` as the endpoint. It stores nothing on disk and knows no tokens,
xet storage or uploads.
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LAST_MODIFIED = "2025-01-01T00:00:00.000Z"


@dataclass
class StubRepo:
    repo_type: str  # "model" or "dataset"
    repo_id: str
    files: dict[str, bytes]
    commit: str
    branches: tuple[str, ...] = ("main",)
    gated: bool = False  # its info is public; its files answer 401 GatedRepo (no token is ever accepted)
    info_extra: dict[str, Any] = field(default_factory=dict)

    def knows(self, revision: str) -> bool:
        return revision == self.commit or revision in self.branches


def fake_commit(seed: str) -> str:
    """A 40-hex commit id derived from `seed` (stable across runs)."""
    return hashlib.sha1(seed.encode()).hexdigest()


def git_blob_id(content: bytes) -> str:
    """The git blob id of `content`, as the hub reports a file's `oid`."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class HubStub:
    """The stand-in hub; use as a context manager (`with HubStub() as hub:`) or start()/stop()."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], StubRepo] = {}
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- content --------------------------------------------------------------------------------

    def add_repo(
        self,
        repo_type: str,
        repo_id: str,
        files: Mapping[str, bytes],
        *,
        commit: str | None = None,
        branches: tuple[str, ...] = ("main",),
    ) -> str:
        """Serve `files` (repo path -> content) as `repo_id` at `commit` (derived when None) and on
        `branches`; returns the commit id."""
        commit = commit or fake_commit(f"{repo_type}:{repo_id}:{sorted(files)}")
        self.repos[(repo_type, repo_id)] = StubRepo(repo_type, repo_id, dict(files), commit, branches)
        return commit

    # --- server ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "the stub hub is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> HubStub:
        handler = type("Handler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="hub-stub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HubStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def running_hub() -> Iterator[HubStub]:
    with HubStub() as hub:
        yield hub


class _Handler(BaseHTTPRequestHandler):
    hub: HubStub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_HEAD(self) -> None:
        self._route(body=False)

    def do_GET(self) -> None:
        self._route(body=True)

    # --- routing --------------------------------------------------------------------------------

    def _route(self, *, body: bool) -> None:
        self.hub.requests.append(f"{self.command} {self.path}")
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
        query = urllib.parse.parse_qs(url.query)
        if len(parts) >= 4 and parts[0] == "api" and parts[1] in ("models", "datasets"):
            repo_type = parts[1][:-1]
            self._api(repo_type, "/".join(parts[2:4]), parts[4:], query)
        elif len(parts) >= 5 and parts[0] == "datasets" and parts[3] == "resolve":
            self._resolve("dataset", "/".join(parts[1:3]), parts[4], "/".join(parts[5:]), body)
        elif len(parts) >= 4 and parts[2] == "resolve":
            self._resolve("model", "/".join(parts[0:2]), parts[3], "/".join(parts[4:]), body)
        else:
            self._error(404, "RepoNotFound", f"no route for {url.path}")

    def _repo(self, repo_type: str, repo_id: str, revision: str) -> StubRepo | None:
        repo = self.hub.repos.get((repo_type, repo_id))
        if repo is None:
            self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            return None
        if not repo.knows(revision):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None
        return repo

    def _api(self, repo_type: str, repo_id: str, rest: list[str], query: dict[str, list[str]]) -> None:
        if not rest:
            rest = ["revision", "main"]
        if rest[0] == "revision" and len(rest) == 2:
            repo = self._repo(repo_type, repo_id, rest[1])
            if repo is not None:
                self._json(_info(repo))
        elif rest[0] == "tree" and len(rest) >= 2:
            repo = self._repo(repo_type, repo_id, rest[1])
            if repo is not None:
                recursive = query.get("recursive", ["false"])[0].lower() == "true"
                self._json(_tree(repo, "/".join(rest[2:]), recursive))
        else:
            self._error(404, "EntryNotFound", f"no api route {'/'.join(rest)}")

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str, body: bool) -> None:
        repo = self._repo(repo_type, repo_id, revision)
        if repo is None:
            return
        if repo.gated:
            self._error(
                401, "GatedRepo", f"Access to {repo.repo_id} is restricted; you must be authenticated"
            )
            return
        content = repo.files.get(path)
        if content is None:
            self._error(404, "EntryNotFound", f"{path} does not exist at {revision}")
            return
        start = _range_start(self.headers.get("Range"))
        chunk = content[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(chunk)))
        self.send_header("ETag", f'"{hashlib.sha256(content).hexdigest()}"')
        self.send_header("X-Repo-Commit", repo.commit)
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if body:
            self.wfile.write(chunk)

    # --- answers --------------------------------------------------------------------------------

    def _json(self, payload: Any) -> None:
        blob = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(blob)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(blob)

    def _error(self, status: int, code: str, message: str) -> None:
        blob = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(blob)))
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(blob)


def _info(repo: StubRepo) -> dict[str, Any]:
    return {
        "id": repo.repo_id,
        "author": repo.repo_id.split("/")[0],
        "sha": repo.commit,
        "lastModified": LAST_MODIFIED,
        "private": False,
        "gated": "manual" if repo.gated else False,
        "disabled": False,
        "tags": [],
        "siblings": [{"rfilename": name} for name in sorted(repo.files)],
        **repo.info_extra,
    }


def _tree(repo: StubRepo, under: str, recursive: bool) -> list[dict[str, Any]]:
    prefix = f"{under.strip('/')}/" if under.strip("/") else ""
    entries: dict[str, dict[str, Any]] = {}
    for name in sorted(repo.files):
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix) :].split("/")
        depth = len(rest) if recursive else 1
        for level in range(1, min(depth, len(rest) - 1) + 1):  # the folders on the way
            folder = prefix + "/".join(rest[:level])
            entries.setdefault(folder, {"type": "directory", "oid": git_blob_id(folder.encode()), "size": 0,
                                        "path": folder})  # fmt: skip
        if recursive or len(rest) == 1:
            content = repo.files[name]
            entries[name] = {"type": "file", "oid": git_blob_id(content), "size": len(content), "path": name}
    return [entries[key] for key in sorted(entries)]


def _range_start(header: str | None) -> int:
    if not header or not header.startswith("bytes="):
        return 0
    start = header.removeprefix("bytes=").split("-")[0]
    return int(start) if start.isdigit() else 0
