"""A local stand-in for the Hugging Face Hub, serving model repos from memory or disk (standard library only).

Point ``HF_ENDPOINT`` (or ``fetch_snapshot(endpoint=...)``) at ``FakeHub.url``. It answers what huggingface_hub
0.36 and 2.x call to download a snapshot:

- ``GET /api/models/<org>/<name>[/revision/<rev>]``: ``{"id", "sha", "siblings": [{"rfilename", "size"}]}``
  (``model_info``, ``repo_info``);
- ``GET /api/models/<org>/<name>/tree/<rev>[/<path>]``: ``[{"type": "file", "path", "size", "oid"}]``
  (``list_repo_tree``, which snapshot_download 2.x uses);
- ``HEAD``/``GET /<org>/<name>/resolve/<rev>/<path>``: the file, with ``X-Repo-Commit``, ``ETag``,
  ``Content-Length`` and ``Range`` support (``hf_hub_download``).

An unknown repo, revision or file answers 404 with the hub's ``X-Error-Code`` (``RepoNotFound``,
``RevisionNotFound``, ``EntryNotFound``), which huggingface_hub turns into its typed errors. ``bytes_per_s``
throttles every file transfer, so a test can watch a download in progress. ``requests`` records every
``(method, path)`` served.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

CHUNK_BYTES = 64 * 1024
_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/(?P<kind>revision|tree)/(?P<rev>[^/]+)(?:/(?P<path>.*))?)?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


@dataclass
class FakeRepo:
    """One model repo: repo path -> content (bytes, or a file on disk served as is), at one commit."""

    repo_id: str
    files: dict[str, bytes | Path]
    commit: str = ""
    fail_downloads: set[str] = field(default_factory=set)
    """Repo paths whose download (GET) answers 404 after ``fail_after_s``: a download that breaks mid-way."""
    fail_after_s: float = 1.0

    def __post_init__(self) -> None:
        if not self.commit:
            digest = hashlib.sha1(self.repo_id.encode())
            for name in sorted(self.files):
                digest.update(name.encode())
                digest.update(str(self.size(name)).encode())
            self.commit = digest.hexdigest()
        self._etags: dict[str, str] = {}

    def size(self, name: str) -> int:
        content = self.files[name]
        return len(content) if isinstance(content, bytes) else content.stat().st_size

    def etag(self, name: str) -> str:
        """sha256 of the content, as the hub's ETag for LFS files (computed once per file)."""
        if name not in self._etags:
            content = self.files[name]
            digest = hashlib.sha256()
            if isinstance(content, bytes):
                digest.update(content)
            else:
                with content.open("rb") as stream:
                    for block in iter(lambda: stream.read(1 << 20), b""):
                        digest.update(block)
            self._etags[name] = digest.hexdigest()
        return self._etags[name]

    def knows_revision(self, revision: str) -> bool:
        return revision in ("main", self.commit)

    def read(self, name: str, start: int, end: int) -> Iterator[bytes]:
        """The bytes ``start..end-1`` of a file, in chunks."""
        content = self.files[name]
        if isinstance(content, bytes):
            for offset in range(start, end, CHUNK_BYTES):
                yield content[offset : min(offset + CHUNK_BYTES, end)]
            return
        with content.open("rb") as stream:
            stream.seek(start)
            left = end - start
            while left > 0:
                block = stream.read(min(CHUNK_BYTES, left))
                if not block:
                    return
                left -= len(block)
                yield block


def repo_from_directory(repo_id: str, directory: Path, pattern: str = "*") -> FakeRepo:
    """A repo holding every file under ``directory`` (matching ``pattern``), served from disk."""
    files: dict[str, bytes | Path] = {
        path.relative_to(directory).as_posix(): path for path in sorted(directory.rglob(pattern)) if path.is_file()
    }
    return FakeRepo(repo_id, files)


class FakeHub:
    """The fake hub as an HTTP server on 127.0.0.1 (a free port), run on a daemon thread; a context manager."""

    def __init__(self, repos: Mapping[str, FakeRepo] | None = None, *, bytes_per_s: float | None = None) -> None:
        self.repos: dict[str, FakeRepo] = dict(repos or {})
        self.bytes_per_s = bytes_per_s
        self.requests: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def add(self, repo: FakeRepo) -> FakeRepo:
        self.repos[repo.repo_id] = repo
        return repo

    def start(self) -> FakeHub:
        hub = self

        class Handler(_HubRequestHandler):
            fake_hub = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        serve = functools.partial(self._server.serve_forever, poll_interval=0.05)  # stop() returns within 50 ms
        self._thread = threading.Thread(target=serve, name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering: later connections are refused (like a network that is gone)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class _HubRequestHandler(BaseHTTPRequestHandler):
    fake_hub: FakeHub
    # HTTP/1.0: one request per connection, so a stopped hub refuses everything at once (no kept-alive sockets)
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        pass  # requests are recorded in FakeHub.requests instead of printed

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _answer(self, *, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.fake_hub.requests.append((self.command, path))
        if match := _API.match(path):
            self._api(match)
        elif match := _RESOLVE.match(path):
            self._resolve(match, head=head)
        else:
            self._error(404, "RepoNotFound", "not found")

    def _repo(self, repo_id: str, revision: str | None) -> FakeRepo | None:
        repo = self.fake_hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            return None
        if revision is not None and not repo.knows_revision(revision):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None
        return repo

    def _api(self, match: re.Match[str]) -> None:
        repo = self._repo(match["repo"], match["rev"])
        if repo is None:
            return
        names = sorted(repo.files)
        if match["kind"] == "tree":
            prefix = (match["path"] or "").strip("/")
            entries = [
                {"type": "file", "path": name, "size": repo.size(name), "oid": hashlib.sha1(name.encode()).hexdigest()}
                for name in names
                if not prefix or name.startswith(prefix + "/")
            ]
            self._json(entries)
            return
        siblings = [{"rfilename": name, "size": repo.size(name)} for name in names]
        self._json({"_id": repo.commit[:24], "id": repo.repo_id, "modelId": repo.repo_id, "sha": repo.commit,
                    "private": False, "disabled": False, "gated": False, "tags": [], "siblings": siblings})  # fmt: skip

    def _resolve(self, match: re.Match[str], *, head: bool) -> None:
        repo = self._repo(match["repo"], match["rev"])
        if repo is None:
            return
        name = match["path"]
        if name not in repo.files:
            self._error(404, "EntryNotFound", f"{name} does not exist", commit=repo.commit)
            return
        if not head and name in repo.fail_downloads:
            time.sleep(repo.fail_after_s)
            self._error(404, "EntryNotFound", f"{name} went away", commit=repo.commit)
            return
        size = repo.size(name)
        start, end = 0, size
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "").strip())
        if ranged:
            start = min(int(ranged[1]), size)
            end = min(int(ranged[2]) + 1, size) if ranged[2] else size
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{repo.etag(name)}"')
        self.send_header("X-Repo-Commit", repo.commit)
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.end_headers()
        if head:
            return
        rate = self.fake_hub.bytes_per_s
        try:
            for block in repo.read(name, start, end):
                self.wfile.write(block)
                if rate:
                    time.sleep(len(block) / rate)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client went away (a stopped download)

    def _json(self, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, commit: str | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


# --- a service process that downloads its model from the fake hub -------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent
HUB_VARIABLES = ("HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT", "HF_TOKEN")
"""The developer's hub settings, never inherited: a test must not read or fill their real cache."""


@dataclass
class ReadyReading:
    """One answer of ``GET /ready``: the status code and its JSON body."""

    status_code: int
    body: dict[str, object]


@dataclass
class HubServiceProcess:
    """``python -m <module>`` (or ``python <script.py>``) from ``.venvs/<venv>`` on a free port, with ``env`` on top
    of a hub-free environment; ``<prefix>HOST`` and ``<prefix>PORT`` say where to listen.

    ``watch_ready`` polls ``GET /ready`` and keeps every reading, so a test sees ``downloading`` and its progress.
    """

    venv: str
    module: str
    prefix: str
    env: dict[str, str]
    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    readings: list[ReadyReading] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HubServiceProcess:
        if not self.port:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                self.port = int(sock.getsockname()[1])
        env = {key: value for key, value in os.environ.items() if key not in HUB_VARIABLES}
        env.update({f"{self.prefix}HOST": "127.0.0.1", f"{self.prefix}PORT": str(self.port)})
        env.update({"HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONUNBUFFERED": "1", **self.env})
        with self.log_path.open("ab") as log:
            target = [self.module] if self.module.endswith(".py") else ["-m", self.module]
            self.process = subprocess.Popen(
                [str(REPO_ROOT / ".venvs" / self.venv / "bin" / "python"), *target],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO_ROOT,
            )
        return self

    def watch_ready(self, timeout_s: float = 120.0, interval_s: float = 0.05) -> int | None:
        """Poll ``/ready`` until it answers 200 (returns None) or the process exits (returns its exit status)."""
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return self.process.returncode
            reading = self._ready()
            if reading is not None:
                self.readings.append(reading)
                if reading.status_code == 200:
                    return None
            time.sleep(interval_s)
        raise AssertionError(f"{self.module} neither ready nor exited in {timeout_s:.0f} s:\n{self.log()[-3000:]}")

    def _ready(self) -> ReadyReading | None:
        try:
            with urllib.request.urlopen(f"{self.url}/ready", timeout=2) as response:
                return ReadyReading(response.status, json.loads(response.read()))
        except urllib.error.HTTPError as err:
            return ReadyReading(err.code, json.loads(err.read() or b"{}"))
        except (urllib.error.URLError, OSError):
            return None  # not listening yet

    def wait_exit(self, timeout_s: float = 60.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout_s)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def progress_readings(self) -> list[float]:
        """The ``progress`` of every ``downloading`` reading, in order."""
        return [
            float(reading.body["progress"])  # type: ignore[arg-type]
            for reading in self.readings
            if reading.body.get("status") == "downloading" and reading.body.get("progress") is not None
        ]
