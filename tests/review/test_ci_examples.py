"""The CI examples and the pre-commit hook: they parse, they run what docs/review.md says, and
the Forgejo comment step creates then updates one comment against a fake of the Forgejo API
(HTTP, the real endpoints and JSON). The docs example script runs for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from controller.review import MARKER
from tests.conftest import REPO_ROOT

CI = REPO_ROOT / "examples" / "ci"
WORKFLOWS = {"github": CI / "github" / "tva-review.yml",
             "forgejo": CI / "forgejo" / "tva-review.yml"}


def _steps(path: Path) -> list[dict[str, Any]]:
    doc = yaml.safe_load(path.read_text())
    assert doc[True] == {"pull_request": None}, "runs on pull requests"  # YAML 1.1: on = True
    (job,) = doc["jobs"].values()
    return list(job["steps"])


@pytest.mark.parametrize("name", list(WORKFLOWS))
def test_workflows_review_post_and_validate(name: str) -> None:
    steps = _steps(WORKFLOWS[name])
    runs = "\n".join(s.get("run", "") for s in steps)
    assert 'tva review "$BASE" HEAD --fleet-ref --markdown > review.md' in runs
    assert "tva validate ." in runs
    checkout = steps[0]
    assert checkout["uses"].endswith("actions/checkout@v4")
    assert checkout["with"]["fetch-depth"] == 0
    post = next(s for s in steps if s.get("name") == "Post or update the comment")
    assert "always()" in post["if"]
    tokens = {k: v for s in steps for k, v in (s.get("env") or {}).items() if "TOKEN" in k}
    assert tokens, "the comment is posted with a token"
    assert all(v in ("${{ github.token }}", "${{ secrets.TVA_REVIEW_TOKEN }}")
               for v in tokens.values()), "tokens come from the platform's secret store"


def test_pre_commit_hook_runs_tva_validate() -> None:
    (hook,) = yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "tva-validate"
    assert hook["entry"] == "tva validate" and hook["language"] == "python"
    assert hook["pass_filenames"] is False
    tva = Path(sys.executable).parent / "tva"
    proc = subprocess.run([str(tva), *hook["entry"].split()[1:]], cwd=REPO_ROOT / "fleet-state",
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


class FakeForgejo(BaseHTTPRequestHandler):
    """The three comment endpoints of the Forgejo API, paginated like Forgejo's."""

    comments: ClassVar[list[dict[str, Any]]] = []
    auth: ClassVar[list[str]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, data: Any) -> None:
        body = json.dumps(data).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict[str, Any]:
        return dict(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))

    def do_GET(self) -> None:
        self.auth.append(self.headers.get("Authorization", ""))
        url = urlparse(self.path)
        assert url.path == "/api/v1/repos/sam/fleet/issues/7/comments"
        q = parse_qs(url.query)
        page, limit = int(q["page"][0]), int(q["limit"][0])
        self._send(200, self.comments[(page - 1) * limit: page * limit])

    def do_POST(self) -> None:
        assert self.path == "/api/v1/repos/sam/fleet/issues/7/comments"
        c = {"id": 1000 + len(self.comments), "body": self._body()["body"]}
        self.comments.append(c)
        self._send(201, c)

    def do_PATCH(self) -> None:
        cid = int(self.path.rsplit("/", 1)[1])
        assert self.path == f"/api/v1/repos/sam/fleet/issues/comments/{cid}"
        c = next(c for c in self.comments if c["id"] == cid)
        c["body"] = self._body()["body"]
        self._send(200, c)


@pytest.fixture
def forgejo() -> Iterator[str]:
    FakeForgejo.comments = [{"id": i, "body": f"comment {i}"} for i in range(60)]
    FakeForgejo.auth = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeForgejo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _post_script() -> str:
    step = next(s for s in _steps(WORKFLOWS["forgejo"]) if s.get("name") == "Post or update the comment")
    return str(step["run"])


def test_forgejo_step_creates_then_updates_one_comment(forgejo: str, tmp_path: Path) -> None:
    env = {**os.environ, "TOKEN": "s3cret", "PR": "7",
           "API": f"{forgejo}/api/v1/repos/sam/fleet"}
    for text in ("first review", "second review"):
        (tmp_path / "review.md").write_text(f"{MARKER}\n{text}\n")
        proc = subprocess.run(["bash", "-e", "-c", _post_script()], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
    ours = [c for c in FakeForgejo.comments if c["body"].startswith(MARKER)]
    assert len(ours) == 1 and ours[0]["body"] == f"{MARKER}\nsecond review\n"
    assert len(FakeForgejo.comments) == 61, "one comment added, the others untouched"
    assert set(FakeForgejo.auth) == {"token s3cret"}


def test_the_docs_example_script_renders_a_comment() -> None:
    env = {**os.environ, "TVA": str(Path(sys.executable).parent / "tva")}
    proc = subprocess.run(["sh", str(CI / "review-example.sh")], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(MARKER)
    assert "custody films: min: 2 -> 3" in proc.stdout
    assert proc.stdout in (REPO_ROOT / "docs" / "review.md").read_text(), \
        "docs/review.md shows an older rendering: regenerate it (see docs/review.md)"
