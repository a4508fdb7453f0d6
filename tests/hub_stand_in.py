"""A local stand-in for the Hugging Face Hub: an HTTP server on 127.0.0.1 that the tests start.

It answers the requests ``huggingface_hub`` (2.x), ``datasets`` and ``diffusers`` make for what the
course uses, read from those libraries' source:

- ``HEAD /`` (``course_utils.hub_reachable``) and ``GET /api/whoami-v2`` (``get_full_repo_name``);
- ``GET /api/{models,datasets}/REPO[/revision/REV]`` (``model_info``, ``dataset_info``,
  ``repo_info`` in ``snapshot_download`` and ``datasets.load_dataset``);
- ``GET /api/{kind}/REPO/tree/REV[/PATH]`` and ``POST /api/{kind}/REPO/paths-info/REV`` (the
  ``HfFileSystem`` that ``datasets`` resolves its data files with);
- ``HEAD``/``GET /[datasets/]REPO/resolve/REV/FILE`` with the headers ``hf_hub_download`` needs
  (``X-Repo-Commit``, ``ETag``, ``Content-Length``) and byte ranges (streaming reads parts of a
  parquet file); a file that is not there answers 404 with ``X-Error-Code: EntryNotFound``;
- uploads: ``POST /api/repos/create``, ``POST /api/validate-yaml``, ``POST /api/{kind}/REPO/preupload/REV``
  (every file "regular", so no LFS or Xet transfer is needed) and ``POST /api/{kind}/REPO/commit/REV``
  (NDJSON with base64 contents), which stores the files so they can be downloaded again.

``stall`` makes it accept a request and never answer (a stalled Hub or mirror): a set of
``"METHOD /path-prefix"`` strings, e.g. ``{"POST /api/repos/create"}``, or ``{"*"}`` for everything.
Every request is logged in ``requests`` as ``"METHOD /path"``; uploads land in ``commits``.

Used through the ``hub`` fixture of tests/conftest.py by tests/test_hub_online.py (the loaders, a
pretrained pipeline, the training script, the book build) and tests/test_notebooks_online.py (both
notebooks); ``hub_env`` gives the environment of a process that talks to it.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

USER = "course-learner"
_API = re.compile(r"^/api/(models|datasets|spaces)/(.+?)(?:/(revision|tree|paths-info|preupload|commit)(?:/(.*))?)?$")
_RESOLVE = re.compile(r"^/(?:(datasets|spaces)/)?(.+?)/resolve/([^/]+)/(.+)$")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Repo:
    """One repository: its files (path in the repository -> bytes) at one commit."""
    kind: str  # "models" or "datasets"
    repo_id: str
    files: dict[str, bytes] = field(default_factory=dict)
    commit: str = "0" * 40
    private: bool = False

    def bump(self) -> None:
        self.commit = hashlib.sha1(json.dumps(sorted((p, _sha(b)) for p, b in self.files.items())).encode()).hexdigest()

    def entry(self, path: str) -> dict | None:
        """The tree entry of ``path``: a file, a folder holding files, or None."""
        if path in self.files:
            data = self.files[path]
            return {"type": "file", "oid": hashlib.sha1(data).hexdigest(), "size": len(data), "path": path}
        if path == "" or any(p.startswith(path.rstrip("/") + "/") for p in self.files):
            return {"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0, "path": path}
        return None

    def tree(self, folder: str, recursive: bool) -> list[dict]:
        """The entries under ``folder``: its children, or with ``recursive`` everything below it."""
        folder = folder.strip("/")
        prefix = folder + "/" if folder else ""
        seen, out = set(), []
        for path in sorted(self.files):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix):].split("/")
            parts = range(1, len(rest) + 1) if recursive else [1]
            for n in parts:
                sub = prefix + "/".join(rest[:n])
                if sub not in seen:
                    seen.add(sub)
                    out.append(self.entry(sub))
        return out

    def info(self) -> dict:
        """What ``model_info`` / ``dataset_info`` read (``sha`` and ``siblings`` above all)."""
        siblings = [{"rfilename": p, "size": len(b)} for p, b in sorted(self.files.items())]
        return {"_id": self.commit[:24], "id": self.repo_id, "sha": self.commit, "private": self.private,
                "disabled": False, "gated": False, "downloads": 0, "likes": 0, "tags": [],
                "author": self.repo_id.split("/")[0], "lastModified": "2026-01-01T00:00:00.000Z",
                "createdAt": "2026-01-01T00:00:00.000Z", "siblings": siblings, "cardData": {},
                "usedStorage": sum(len(b) for b in self.files.values())}


class HubStandIn:
    """The server: ``add(kind, repo_id, files)``, ``start()`` -> its URL, ``stop()``."""

    def __init__(self):
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[str] = []
        self.commits: list[tuple[str, list[str]]] = []  # (repo_id, paths) per upload
        self.stall: set[str] = set()
        self.created: list[dict] = []  # the bodies of create_repo calls
        self._server: ThreadingHTTPServer | None = None
        self._stop = threading.Event()
        self.url = ""

    # ------------------------------------------------------------------ repositories
    def add(self, kind: str, repo_id: str, files: dict[str, bytes] | None = None) -> Repo:
        repo = self.repos.setdefault((kind, repo_id), Repo(kind, repo_id))
        repo.files.update(files or {})
        repo.bump()
        return repo

    def add_folder(self, kind: str, repo_id: str, folder: Path) -> Repo:
        folder = Path(folder)
        return self.add(kind, repo_id, {p.relative_to(folder).as_posix(): p.read_bytes()
                                        for p in sorted(folder.rglob("*")) if p.is_file()})

    def repo(self, kind: str, repo_id: str) -> Repo | None:
        return self.repos.get((kind, repo_id))

    # ------------------------------------------------------------------ server
    def start(self) -> str:
        stand_in = self

        class Handler(_Handler):
            hub = stand_in

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.url

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def stalls(self, method: str, path: str) -> bool:
        return "*" in self.stall or any(f"{method} {path}".startswith(s) for s in self.stall)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    hub: HubStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet: the tests read hub.requests instead
        pass

    # ------------------------------------------------------------------ plumbing
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return b""

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        headers.setdefault("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _json(self, value, status: int = 200, headers: dict | None = None) -> None:
        self._send(status, json.dumps(value).encode(), headers)

    def _error(self, status: int, code: str, message: str, head: bool = False) -> None:
        body = json.dumps({"error": message}).encode()
        self._send(status, body, {"X-Error-Code": code, "X-Error-Message": message}, head=head)

    def _dispatch(self, method: str) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parsed.path)
        query = urllib.parse.parse_qs(parsed.query)
        self.hub.requests.append(f"{method} {path}")
        body = self._body() if method in ("POST", "PUT") else b""
        if self.hub.stalls(method, path):
            self.hub._stop.wait()  # never answer while the server runs
            return
        try:
            self._route(method, path, query, body)
        except BrokenPipeError:
            pass

    do_GET = lambda self: self._dispatch("GET")  # noqa: E731
    do_HEAD = lambda self: self._dispatch("HEAD")  # noqa: E731
    do_POST = lambda self: self._dispatch("POST")  # noqa: E731
    do_PUT = lambda self: self._dispatch("PUT")  # noqa: E731

    # ------------------------------------------------------------------ routes
    def _route(self, method: str, path: str, query: dict, body: bytes) -> None:
        hub = self.hub
        if path in ("", "/"):
            return self._send(200, b"Hub stand-in", {"Content-Type": "text/plain"}, head=method == "HEAD")
        if path == "/api/whoami-v2":
            if not self.headers.get("Authorization"):
                return self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
            return self._json({"type": "user", "id": "1", "name": USER, "fullname": "Course Learner", "orgs": [],
                               "auth": {"type": "access_token",
                                        "accessToken": {"displayName": "test", "role": "write"}}})
        if path == "/api/repos/create" and method == "POST":
            request = json.loads(body or b"{}")
            hub.created.append(request)
            kind = {"dataset": "datasets", "space": "spaces"}.get(request.get("type"), "models")
            name = request["name"]
            repo_id = name if "/" in name else f"{request.get('organization') or USER}/{name}"
            existed = hub.repo(kind, repo_id) is not None
            hub.add(kind, repo_id).private = request.get("visibility") == "private" or bool(request.get("private"))
            prefix = "" if kind == "models" else f"{kind}/"
            reply = {"url": f"{hub.url}/{prefix}{repo_id}", "name": repo_id, "id": repo_id}
            if existed:
                return self._json({"error": "You already created this model repo", "url": reply["url"]}, 409)
            return self._json(reply)
        if path == "/api/validate-yaml" and method == "POST":
            return self._json({"errors": [], "warnings": []})
        match = _API.match(path)
        if match:
            return self._api(method, match, query, body)
        match = _RESOLVE.match(path)
        if match and method in ("GET", "HEAD"):
            kind = match.group(1) or "models"
            return self._resolve(method, hub.repo(kind, match.group(2)), match.group(3), match.group(4))
        return self._error(404, "NotFound", f"The stand-in does not serve {method} {path}", head=method == "HEAD")

    def _api(self, method: str, match: re.Match, query: dict, body: bytes) -> None:
        kind, repo_id, action, rest = match.groups()
        repo = self.hub.repo(kind, repo_id)
        if repo is None:
            return self._error(404, "RepoNotFound", f"Repository not found: {kind}/{repo_id}")
        revision, _, sub = (rest or "main").partition("/")
        if revision not in ("main", repo.commit):
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        if action in (None, "revision") and method == "GET":
            return self._json(repo.info())
        if action == "tree" and method == "GET":
            if sub and repo.entry(sub) is None:
                return self._error(404, "EntryNotFound", f"{sub} does not exist on {revision}")
            recursive = query.get("recursive", ["false"])[0].lower() == "true"
            return self._json(repo.tree(sub, recursive))
        if action == "paths-info" and method == "POST":
            paths = self._form_or_json(body).get("paths", [])
            return self._json([e for e in (repo.entry(p) for p in paths) if e is not None])
        if action == "preupload" and method == "POST":
            files = json.loads(body or b"{}").get("files", [])
            return self._json({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                          "oid": None} for f in files]})
        if action == "commit" and method == "POST":
            return self._commit(repo, body)
        return self._error(404, "NotFound", f"The stand-in does not serve {method} {self.path}")

    @staticmethod
    def _form_or_json(body: bytes) -> dict:
        text = body.decode() if body else ""
        if text.startswith("{"):
            return json.loads(text)
        return {k: v for k, v in urllib.parse.parse_qs(text).items()}

    def _commit(self, repo: Repo, body: bytes) -> None:
        paths = []
        for line in body.decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            value = item.get("value", {})
            if item.get("key") == "file":
                repo.files[value["path"]] = base64.b64decode(value["content"]) if value.get(
                    "encoding") == "base64" else value["content"].encode()
                paths.append(value["path"])
            elif item.get("key") in ("deletedFile", "deletedFolder"):
                target = value["path"]
                for p in [p for p in repo.files if p == target or p.startswith(target.rstrip("/") + "/")]:
                    del repo.files[p]
            elif item.get("key") == "lfsFile":
                return self._error(400, "BadRequest", "the stand-in accepts regular uploads only")
        repo.bump()
        self.hub.commits.append((repo.repo_id, paths))
        prefix = "" if repo.kind == "models" else f"{repo.kind}/"
        return self._json({"success": True, "commitOid": repo.commit,
                           "commitUrl": f"{self.hub.url}/{prefix}{repo.repo_id}/commit/{repo.commit}"})

    def _resolve(self, method: str, repo: Repo | None, revision: str, filename: str) -> None:
        head = method == "HEAD"
        if repo is None:
            return self._error(404, "RepoNotFound", "Repository not found", head=head)
        if revision not in ("main", repo.commit):
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head=head)
        if filename not in repo.files:
            return self._error(404, "EntryNotFound", f"Entry not found: {filename}", head=head)
        data = repo.files[filename]
        headers = {"Content-Type": "application/octet-stream", "X-Repo-Commit": repo.commit,
                   "ETag": f'"{hashlib.sha1(data).hexdigest()}"', "Accept-Ranges": "bytes"}
        status, chunk = 200, data
        ranged = re.match(r"bytes=(\d*)-(\d*)$", self.headers.get("Range", ""))
        if ranged and not head:
            start_text, end_text = ranged.groups()
            if start_text == "":  # the last N bytes
                start, end = max(0, len(data) - int(end_text)), len(data) - 1
            else:
                start, end = int(start_text), min(int(end_text) if end_text else len(data) - 1, len(data) - 1)
            chunk, status = data[start:end + 1], 206
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        headers["Content-Length"] = str(len(chunk))
        return self._send(status, chunk, headers, head=head)



# ---------------------------------------------------------------------------------------- fixtures
BUTTERFLIES = "huggan/smithsonian_butterflies_subset"
MNIST = "ylecun/mnist"
PRETRAINED = "johnowhitaker/ddpm-butterflies-32px"  # notebook 01's pretrained pipeline
#: The columns of huggan/smithsonian_butterflies_subset besides ``image`` (all strings but the last).
BUTTERFLY_COLUMNS = ["image_url", "image_alt", "id", "name", "scientific_name", "gender", "taxonomy", "region",
                     "locality", "date", "usnm_no", "guid", "edan_url", "source", "stage", "image_hash"]
MNIST_CARD = """---
dataset_info:
  config_name: mnist
  features:
  - name: image
    dtype: image
  - name: label
    dtype:
      class_label:
        names:
          '0': '0'
          '1': '1'
          '2': '2'
          '3': '3'
          '4': '4'
          '5': '5'
          '6': '6'
          '7': '7'
          '8': '8'
          '9': '9'
configs:
- config_name: mnist
  data_files:
  - split: train
    path: mnist/train-*
  - split: test
    path: mnist/test-*
  default: true
---
# MNIST (a stand-in of the tests)
"""


def butterfly_colour(i: int) -> tuple[int, int, int]:
    """The main colour of stand-in butterfly ``i``: a test can tell which picture it got."""
    return (40 + (i * 53) % 200, 40 + (i * 97) % 200, 40 + (i * 31) % 200)


def butterfly_photo(i: int):
    """Photograph ``i`` of the stand-in set: a JPEG of the size and mode the Smithsonian pictures
    come in (a few hundred pixels, landscape or portrait; most RGB, some grayscale or CMYK)."""
    from PIL import Image, ImageDraw

    width, height = [(640, 427), (427, 640), (512, 384), (600, 600), (350, 500)][i % 5]
    img = Image.new("RGB", (width, height), (245, 243, 238))  # the museum's pale background
    draw = ImageDraw.Draw(img)
    cx, cy, colour = width // 2, height // 2, butterfly_colour(i)
    for dx in (-1, 1):  # two wings, a body
        draw.ellipse([cx + dx * width // 3 - width // 6, cy - height // 4, cx + dx * width // 3 + width // 6,
                      cy + height // 4], fill=colour)
    draw.rectangle([cx - width // 40, cy - height // 3, cx + width // 40, cy + height // 3], fill=(30, 25, 20))
    mode = {7: "L", 11: "CMYK"}.get(i % 12, "RGB")
    buffer = io.BytesIO()
    img.convert(mode).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _parquet(table: dict, features) -> bytes:
    """A parquet file written by ``datasets`` (so it carries the features, as the Hub's do)."""
    import tempfile

    from datasets import Dataset

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "part.parquet"
        Dataset.from_dict(table, features=features).to_parquet(str(path))
        return path.read_bytes()


def butterflies_files(n: int = 36) -> dict[str, bytes]:
    """The files of huggan/smithsonian_butterflies_subset, ``n`` rows in its schema."""
    from datasets import Features, Value
    from datasets import Image as ImageFeature

    features = Features({**{c: Value("string") for c in BUTTERFLY_COLUMNS[:-1]}, "image": ImageFeature(),
                         "image_hash": Value("string"), "sim_score": Value("float64")})
    rows = {c: [f"{c} {i}" for i in range(n)] for c in BUTTERFLY_COLUMNS}
    rows["image"] = [{"bytes": butterfly_photo(i), "path": f"{i}.jpg"} for i in range(n)]
    rows["sim_score"] = [0.5] * n
    return {"data/train-00000-of-00001.parquet": _parquet(rows, features),
            "README.md": b"---\nlicense: cc0-1.0\n---\n# Smithsonian butterflies (a stand-in of the tests)\n"}


def digit_png(i: int, label: int) -> bytes:
    """A 28 x 28 grayscale PNG (as MNIST stores them) with ``label + 1`` bright rows at the top."""
    from PIL import Image

    img = Image.new("L", (28, 28), 0)
    for row in range(label + 1):
        for col in range(4, 24):
            img.putpixel((col, 2 + row * 2), 255)
    buffer = io.BytesIO()
    img.save(buffer, "PNG")
    return buffer.getvalue()


def mnist_files(n: int = 60) -> dict[str, bytes]:
    """The files of ylecun/mnist (config ``mnist``, splits train and test), ``n`` training rows."""
    from datasets import ClassLabel, Features
    from datasets import Image as ImageFeature

    features = Features({"image": ImageFeature(), "label": ClassLabel(names=[str(d) for d in range(10)])})

    def split(count, offset):
        labels = [(i + offset) % 10 for i in range(count)]
        return _parquet({"image": [{"bytes": digit_png(i, d), "path": None} for i, d in enumerate(labels)],
                         "label": labels}, features)

    return {"mnist/train-00000-of-00001.parquet": split(n, 0), "mnist/test-00000-of-00001.parquet": split(10, 3),
            "README.md": MNIST_CARD.encode()}


def tiny_pipeline_files(folder: Path) -> dict[str, bytes]:
    """A DDPMPipeline of 32 px RGB images with a tiny UNet, as ``save_pretrained`` writes it."""
    import torch
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=32, in_channels=3, out_channels=3, layers_per_block=1,
                       block_out_channels=(8, 16), norm_num_groups=4,
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"))
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=1000)).save_pretrained(folder)
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def stocked(folder: Path) -> HubStandIn:
    """A stand-in holding what the course downloads: the butterflies, MNIST and the pretrained pipeline."""
    hub = HubStandIn()
    hub.add("datasets", BUTTERFLIES, butterflies_files())
    hub.add("datasets", MNIST, mnist_files())
    hub.add("models", PRETRAINED, tiny_pipeline_files(Path(folder) / "pipeline"))
    return hub


def hub_env(hub: HubStandIn, home, **extra) -> dict:
    """The environment of a process that talks to ``hub``: HF_ENDPOINT set, HF_HUB_OFFLINE unset, a
    fake write token, and Hub and data caches of its own under ``home`` (so nothing is read from the
    user's caches). huggingface_hub and datasets read these when imported: give them to a new process."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE",
                                                            "TRANSFORMERS_OFFLINE", "COURSE_TRAIN_TEST")}
    env.update(HF_ENDPOINT=hub.url, HF_TOKEN="hf_standin_token_for_tests", HF_HOME=str(Path(home) / "hf-home"),
               HF_HUB_DISABLE_TELEMETRY="1", COURSE_CACHE=str(Path(home) / "course-cache"), OMP_NUM_THREADS="1",
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    env.update(extra)
    return env
