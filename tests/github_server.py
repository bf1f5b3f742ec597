"""A GitHub for the tests: the part of GitHub's REST API the hub calls through PyGithub, on
127.0.0.1, and the webhook deliveries GitHub sends.

Written from GitHub's REST documentation ("Repositories", "Releases", "Release assets", "Git
references", "Git tags", "Commits", "Commit statuses", "Rate limits") and checked against the
requests PyGithub 2.x makes for what the hub uses:

- ``GET /repos/{owner}/{repo}``: the repository (``Github.get_repo``).
- ``GET /repos/{o}/{r}/releases/tags/{tag}``: a release with its ``assets`` (``get_release``).
- ``GET /repos/{o}/{r}/releases/{id}/assets``: the release's assets (``get_assets``).
- ``GET /repos/{o}/{r}/releases/assets/{id}``: an asset's metadata; asked with
  ``Accept: application/octet-stream`` it answers ``302`` to the file's download location, as
  GitHub does (there a storage host; here ``/_storage/…`` on this server), which PyGithub follows.
- ``GET /repos/{o}/{r}/git/ref/tags/{tag}``: the tag's ref, pointing to the commit (a
  lightweight tag) or to a tag object (an annotated tag), ``GET …/git/tags/{sha}`` to that
  object's commit.
- ``GET /repos/{o}/{r}/commits/{sha}`` and ``POST /repos/{o}/{r}/statuses/{sha}``
  (``Commit.create_status``): the statuses are recorded in :attr:`GithubServer.statuses`.

Every request must carry the server's token (``Authorization: token …``), except the download
from storage, which PyGithub sends without it when the storage is another host. Unknown paths
answer GitHub's ``404 {"message": "Not Found"}``. :meth:`GithubServer.rate_limit` makes the next
requests answer ``403`` with ``X-RateLimit-Remaining: 0`` and ``X-RateLimit-Reset``, as
GitHub's primary rate limit does. :meth:`GithubServer.deliver` posts a webhook delivery signed
with a secret, as GitHub does: ``X-GitHub-Event``, ``X-GitHub-Delivery``,
``X-Hub-Signature-256``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

TOKEN = "github-test-token"
_STORAGE = "/_storage"


@dataclass
class _Release:
    id: int
    tag: str
    name: str
    assets: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    draft: bool = False
    prerelease: bool = False


@dataclass
class _Repository:
    owner: str
    name: str
    id: int
    # tag -> (commit sha, annotated tag object sha or "")
    tags: dict[str, tuple[str, str]] = field(default_factory=dict)
    releases: dict[str, _Release] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class GithubServer:
    """The fake GitHub's state and its controls; :func:`github_server` starts one."""

    def __init__(self) -> None:
        self.url = ""
        self.token = TOKEN
        self._ids = itertools.count(5001)
        self._lock = threading.RLock()
        self.repositories: dict[str, _Repository] = {}
        # Every request: (method, path, Accept header, whether it carried the token).
        self.requests: list[tuple[str, str, str, bool]] = []
        # Every commit status posted: repository, sha, and the body's fields.
        self.statuses: list[dict[str, Any]] = []
        self._rate_limited = 0
        self.rate_limited_answers = 0

    # --- controls ------------------------------------------------------------------------

    def add_repository(self, full_name: str) -> _Repository:
        owner, name = full_name.split("/", 1)
        with self._lock:
            repository = _Repository(owner=owner, name=name, id=next(self._ids))
            self.repositories[full_name.lower()] = repository
            return repository

    def add_release(
        self,
        full_name: str,
        tag: str,
        assets: dict[str, bytes],
        *,
        annotated: bool = False,
    ) -> str:
        """A tag (lightweight, or annotated) on a new commit, and a published release of it
        with ``assets``; returns the commit's sha."""
        with self._lock:
            repository = self.repositories.get(full_name.lower()) or self.add_repository(full_name)
            sha = hashlib.sha1(f"{full_name}@{tag}".encode(), usedforsecurity=False).hexdigest()
            tag_object = (
                hashlib.sha1(f"tag {tag}".encode(), usedforsecurity=False).hexdigest()
                if annotated
                else ""
            )
            repository.tags[tag] = (sha, tag_object)
            repository.releases[tag] = _Release(
                id=next(self._ids),
                tag=tag,
                name=tag,
                assets={name: (next(self._ids), data) for name, data in assets.items()},
            )
            return sha

    def rate_limit(self, answers: int, *, reset_in: float = 2.0) -> None:
        """Answer the next ``answers`` API requests with GitHub's 403 rate-limit refusal."""
        with self._lock:
            self._rate_limited = answers
            self._reset_at = time.time() + reset_in

    def count(self, method: str, pattern: str) -> int:
        """How many requests matched ``method`` and the regular expression ``pattern``."""
        return sum(
            1 for seen, path, _, _ in self.requests if seen == method and re.search(pattern, path)
        )

    def release_event(self, full_name: str, tag: str, *, action: str = "published") -> bytes:
        """The body of a ``release`` webhook delivery for a release of this server."""
        repository = self.repositories[full_name.lower()]
        release = repository.releases.get(tag) or _Release(id=0, tag=tag, name=tag)
        payload = {
            "action": action,
            "release": self._release_json(repository, release),
            "repository": self._repository_json(repository),
            "sender": {"login": repository.owner, "type": "User"},
        }
        return json.dumps(payload).encode()

    def deliver(
        self,
        url: str,
        *,
        secret: str,
        event: str,
        body: bytes,
        delivery_id: str | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """POST a webhook delivery to ``url`` as GitHub does; ``signature`` overrides the one
        computed with ``secret`` (a wrong one, or "" for none)."""
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/test",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
            "X-GitHub-Hook-ID": "1",
        }
        value = f"sha256={digest}" if signature is None else signature
        if value:
            headers["X-Hub-Signature-256"] = value
        return httpx.post(url, content=body, headers=headers, timeout=60)

    # --- documents -----------------------------------------------------------------------

    def _repository_json(self, repository: _Repository) -> dict[str, Any]:
        api = f"{self.url}/repos/{repository.full_name}"
        return {
            "id": repository.id,
            "name": repository.name,
            "full_name": repository.full_name,
            "owner": {"login": repository.owner, "type": "User"},
            "private": False,
            "url": api,
            "html_url": f"https://github.invalid/{repository.full_name}",
            "default_branch": "main",
        }

    def _asset_json(self, repository: _Repository, name: str, asset_id: int, size: int) -> Any:
        return {
            "id": asset_id,
            "name": name,
            "label": "",
            "state": "uploaded",
            "content_type": "application/zip",
            "size": size,
            "url": f"{self.url}/repos/{repository.full_name}/releases/assets/{asset_id}",
            "browser_download_url": f"https://github.invalid/{repository.full_name}/"
            f"releases/download/{name}",
        }

    def _release_json(self, repository: _Repository, release: _Release) -> dict[str, Any]:
        api = f"{self.url}/repos/{repository.full_name}/releases/{release.id}"
        return {
            "id": release.id,
            "tag_name": release.tag,
            "name": release.name,
            "draft": release.draft,
            "prerelease": release.prerelease,
            "target_commitish": "main",
            "url": api,
            "assets_url": f"{api}/assets",
            "upload_url": f"{self.url}/repos/{repository.full_name}/releases/{release.id}/"
            "assets{?name,label}",
            "html_url": f"https://github.invalid/{repository.full_name}/releases/tag/{release.tag}",
            "assets": [
                self._asset_json(repository, name, asset_id, len(data))
                for name, (asset_id, data) in release.assets.items()
            ],
        }

    def _take_rate_limit(self) -> float | None:
        with self._lock:
            if self._rate_limited <= 0:
                return None
            self._rate_limited -= 1
            self.rate_limited_answers += 1
            return self._reset_at


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def github(self) -> GithubServer:
        return self.server.github

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path
        authorised = self.headers.get("Authorization", "") == f"token {self.github.token}"
        self.github.requests.append((method, path, self.headers.get("Accept", ""), authorised))
        body = self._read_body()
        if path.startswith(_STORAGE + "/"):
            self._storage(path)
            return
        if not authorised:
            self._answer(401, {"message": "Bad credentials"})
            return
        reset_at = self.github._take_rate_limit()
        if reset_at is not None:
            self._answer(
                403,
                {
                    "message": "API rate limit exceeded for installation.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits",
                },
                {
                    "X-RateLimit-Limit": "5000",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Used": "5000",
                    "X-RateLimit-Reset": str(int(reset_at)),
                    "X-RateLimit-Resource": "core",
                },
            )
            return
        try:
            status, answer, headers = self._route(method, path, body)
        except KeyError:
            status, answer, headers = 404, {"message": "Not Found"}, {}
        self._answer(status, answer, headers)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        # GitHub tells its rate limit on every answer; a refusal says it is used up.
        rate = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999", **(headers or {})}
        for key, value in rate.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _storage(self, path: str) -> None:
        # /_storage/<owner>/<repo>/<asset id>
        _, _, owner, repo, asset_id = path.split("/", 4)
        repository = self.github.repositories[f"{owner}/{repo}".lower()]
        for release in repository.releases.values():
            for found_id, data in release.assets.values():
                if str(found_id) == asset_id:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
        self._answer(404, {"message": "Not Found"})

    def _route(self, method: str, path: str, body: bytes) -> tuple[int, Any, dict[str, str]]:
        github = self.github
        match = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)?", path)
        if match is None:
            raise KeyError(path)
        repository = github.repositories[f"{match[1]}/{match[2]}".lower()]
        rest = unquote(match[3] or "")
        if method == "GET" and rest == "":
            return 200, github._repository_json(repository), {}
        if method == "GET" and rest.startswith("/releases/tags/"):
            release = repository.releases[rest.removeprefix("/releases/tags/")]
            return 200, github._release_json(repository, release), {}
        found = re.fullmatch(r"/releases/(\d+)/assets", rest)
        if method == "GET" and found:
            release = next(r for r in repository.releases.values() if r.id == int(found[1]))
            return (
                200,
                [
                    github._asset_json(repository, name, asset_id, len(data))
                    for name, (asset_id, data) in release.assets.items()
                ],
                {},
            )
        found = re.fullmatch(r"/releases/assets/(\d+)", rest)
        if method == "GET" and found:
            for release in repository.releases.values():
                for name, (asset_id, data) in release.assets.items():
                    if asset_id == int(found[1]):
                        if self.headers.get("Accept") == "application/octet-stream":
                            location = f"{github.url}{_STORAGE}/{repository.full_name}/{asset_id}"
                            return 302, None, {"Location": location}
                        return 200, github._asset_json(repository, name, asset_id, len(data)), {}
            raise KeyError(rest)
        if method == "GET" and rest.startswith("/git/ref/tags/"):
            tag = rest.removeprefix("/git/ref/tags/")
            sha, tag_object = repository.tags[tag]
            target = (
                {"type": "tag", "sha": tag_object} if tag_object else {"type": "commit", "sha": sha}
            )
            return (
                200,
                {
                    "ref": f"refs/tags/{tag}",
                    "url": f"{github.url}/repos/{repository.full_name}/git/refs/tags/{tag}",
                    "object": {
                        **target,
                        "url": f"{github.url}/repos/{repository.full_name}/git/"
                        f"{'tags' if tag_object else 'commits'}/{target['sha']}",
                    },
                },
                {},
            )
        found = re.fullmatch(r"/git/tags/([0-9a-f]{40})", rest)
        if method == "GET" and found:
            for tag, (sha, tag_object) in repository.tags.items():
                if tag_object == found[1]:
                    return (
                        200,
                        {
                            "sha": tag_object,
                            "tag": tag,
                            "message": f"release {tag}",
                            "url": f"{github.url}/repos/{repository.full_name}/git/tags/"
                            f"{tag_object}",
                            "object": {
                                "type": "commit",
                                "sha": sha,
                                "url": f"{github.url}/repos/{repository.full_name}/git/"
                                f"commits/{sha}",
                            },
                        },
                        {},
                    )
            raise KeyError(rest)
        found = re.fullmatch(r"/commits/([0-9a-f]{40})", rest)
        if method == "GET" and found:
            if found[1] not in {sha for sha, _ in repository.tags.values()}:
                raise KeyError(rest)
            return (
                200,
                {
                    "sha": found[1],
                    "url": f"{github.url}/repos/{repository.full_name}/commits/{found[1]}",
                    "commit": {"message": "a commit"},
                },
                {},
            )
        found = re.fullmatch(r"/statuses/([0-9a-f]{40})", rest)
        if method == "POST" and found:
            fields = json.loads(body)
            if fields.get("state") not in {"error", "failure", "pending", "success"}:
                return 422, {"message": "Validation Failed"}, {}
            with github._lock:
                github.statuses.append(
                    {"repository": repository.full_name, "sha": found[1], **fields}
                )
                status_id = len(github.statuses)
            return (
                201,
                {
                    "id": status_id,
                    "url": f"{github.url}/repos/{repository.full_name}/statuses/{found[1]}",
                    **fields,
                },
                {},
            )
        raise KeyError(rest)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, github: GithubServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.github = github


@contextlib.contextmanager
def github_server() -> Iterator[GithubServer]:
    """Run a fake GitHub on a free port of 127.0.0.1 for the duration of the block."""
    github = GithubServer()
    server = _Server(github)
    github.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake-github", daemon=True)
    thread.start()
    try:
        yield github
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
