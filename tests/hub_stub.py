"""A stand-in for the Hugging Face hub on 127.0.0.1, for tests (huggingface_hub honours HF_ENDPOINT).

    with HubStub({"org/tiny": Repo(files), "org/gated": Repo(files, token="hf_x")}) as hub:
        env = {"HF_ENDPOINT": hub.url, ...}
        ...
        hub.requests   # [(method, path, Authorization header or None), ...]

It answers the endpoints huggingface_hub 2.x calls for snapshot_download and hf_hub_download,
the way the hub answers them:
- GET  /api/models/<id>/revision/<rev>  -> {"id", "sha", "siblings"}   (model_info)
- GET  /api/models/<id>/tree/<rev>      -> [{"type": "file", "path", "size", "oid"}]   (list_repo_tree, one page)
- HEAD /<id>/resolve/<rev>/<file>       -> X-Repo-Commit, ETag, Content-Length
- GET  /<id>/resolve/<rev>/<file>       -> the bytes
A repo id it does not hold gets 404 with X-Error-Code: RepoNotFound. A gated repo's info is
public (as on the hub) but its files answer 401 GatedRepo without a token and 403 GatedRepo with
a wrong one.
"""

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Repo:
    files: dict  # path in repo -> bytes
    token: str | None = None  # gated: the bearer token that may read the files

    @property
    def sha(self) -> str:
        digest = hashlib.sha1()
        for name in sorted(self.files):
            digest.update(name.encode() + b"\0" + hashlib.sha1(self.files[name]).digest())
        return digest.hexdigest()

    @classmethod
    def from_dir(cls, path, *, extra: dict | None = None, token: str | None = None) -> "Repo":
        files = {p.name: p.read_bytes() for p in Path(path).iterdir() if p.is_file()}
        return cls({**files, **(extra or {})}, token=token)


class HubStub:
    def __init__(self, repos: dict):
        self.repos = repos
        self.requests = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self):
                stub._answer(self, body=False)

            def do_GET(self):
                stub._answer(self, body=True)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def file_gets(self, repo_id: str) -> list:
        return [path for method, path, _ in self.requests
                if method == "GET" and path.startswith(f"/{repo_id}/resolve/")]

    def _answer(self, handler, *, body: bool) -> None:
        path = handler.path.split("?", 1)[0]
        self.requests.append((handler.command, path, handler.headers.get("Authorization")))
        api = re.fullmatch(r"/api/models/(?P<id>[^/]+/[^/]+)(?:/(?P<kind>revision|tree)/(?P<rev>[^/]+))?/?", path)
        resolve = re.fullmatch(r"/(?P<id>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", path)
        match = api or resolve
        repo = self.repos.get(match["id"]) if match else None
        if repo is None:
            return _send(handler, 404, b'{"error": "Repository not found"}', body=body,
                         headers={"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
        if api and api["kind"] == "tree":
            listing = [{"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                       for name, data in sorted(repo.files.items())]
            return _send(handler, 200, json.dumps(listing).encode(), body=body)
        if api:
            info = {"id": match["id"], "sha": repo.sha, "gated": "manual" if repo.token else False,
                    "siblings": [{"rfilename": name} for name in sorted(repo.files)]}
            return _send(handler, 200, json.dumps(info).encode(), body=body)
        if repo.token and handler.headers.get("Authorization") != f"Bearer {repo.token}":
            status = 403 if handler.headers.get("Authorization") else 401
            return _send(handler, status, b'{"error": "gated"}', body=body,
                         headers={"X-Error-Code": "GatedRepo", "X-Error-Message": "Access to this model is restricted"})
        data = repo.files.get(resolve["file"])
        if data is None:
            return _send(handler, 404, b'{"error": "Entry not found"}', body=body,
                         headers={"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"})
        _send(handler, 200, data, body=body, headers={"X-Repo-Commit": repo.sha,
                                                      "ETag": f'"{hashlib.sha256(data).hexdigest()}"'})


def _send(handler, status: int, data: bytes, *, body: bool, headers: dict | None = None) -> None:
    handler.send_response(status)
    for key, value in {"Content-Type": "application/octet-stream", **(headers or {})}.items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    if body:
        handler.wfile.write(data)
