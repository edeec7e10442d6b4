"""Hostile text is shown escaped and URL credentials redacted, by the installed ``tva``.

A status names a torrent with ESC and a bidi override (statuses come from other nodes; torrent
names from whoever made the torrent); a fleet commit puts a passkey into a tracker URL. Neither
reaches the terminal or the review comment as written.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from controller.display import safe
from tests.conftest import REFERENCE_FLEET, REPO_ROOT
from tests.review.support import change, edit, fleet_repo, statuses, write_statuses

TVA = Path(sys.executable).parent / "tva"
HOSTILE = "\x1b[2J\x1b]0;owned\x07\u202e\x00\x9b"


def _tva(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TVA), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def _raw(text: str) -> set[str]:
    return {c for c in "\x1b\x07\u202e\x00\x9b" if c in text}


def test_tva_plan_shows_hostile_torrent_names_escaped(tmp_path: Path) -> None:
    status = tmp_path / "status"
    shutil.copytree(REFERENCE_FLEET / ".status", status)
    for f in status.glob("*.json"):
        data = json.loads(f.read_text())
        for t in data["transmission"]["torrents"]:
            t["name"] = HOSTILE + t["name"]
        f.write_text(json.dumps(data))
    for args in (["plan", str(REFERENCE_FLEET), "--status", str(status)],
                 ["plan", str(REFERENCE_FLEET), "--status", str(status), "--markdown"],
                 ["fleet", "reaper", "--repo", str(REFERENCE_FLEET), "--status", str(status)],
                 ["status", "--fleet", "--repo", str(REFERENCE_FLEET), "--status", str(status)]):
        proc = _tva(*args)
        assert proc.returncode in (0, 2), (args, proc.stderr)
        assert not _raw(proc.stdout + proc.stderr), args
    proc = _tva("plan", str(REFERENCE_FLEET), "--status", str(status))
    assert "\\x1b[2J" in proc.stdout, "shown, escaped"
    proc = _tva("plan", str(REFERENCE_FLEET), "--status", str(status), "--markdown")
    assert "\\x1b\\[2J\\x1b\\]0;owned\\x07\\u202e\\x00\\x9b" in proc.stdout


def test_review_comment_redacts_credentials_in_urls(tmp_path: Path, git_env: None) -> None:
    path, base = fleet_repo(tmp_path / "fleet")
    status = write_statuses(tmp_path / "status", statuses())
    change(path, edit("sources/friends.yaml", "https://tracker.friends.example/announce",
                      "https://bob:hunter2@tracker.friends.example/announce?passkey=S3CRETPASS"),
           "a tracker with a passkey")
    for fmt in ("--markdown", "--text"):
        args = ["review", base, "HEAD", "--status", str(status)]
        proc = _tva(*(args + ([fmt] if fmt == "--markdown" else [])), cwd=path)
        assert proc.returncode in (0, 2), proc.stderr
        assert "tracker.friends.example" in proc.stdout, "the change is shown"
        assert "S3CRETPASS" not in proc.stdout and "hunter2" not in proc.stdout
        assert "passkey=***" in proc.stdout


def test_one_rule_for_every_renderer() -> None:
    assert safe("a\x1bb\u2066c") == "a\\x1bb\\u2066c"
    assert safe("see http://u:p@h:1/x?apikey=K&cat=2") == "see http://***@h:1/x?apikey=***&cat=2"


def test_rich_markup_in_names_is_shown_as_written(tmp_path: Path) -> None:
    """A torrent named ``[conceal]...`` or ``[link=...]`` must not hide text or make a link."""
    status = tmp_path / "status"
    shutil.copytree(REFERENCE_FLEET / ".status", status)
    for f in status.glob("*.json"):
        data = json.loads(f.read_text())
        for t in data["transmission"]["torrents"]:
            t["name"] = "[conceal]hidden[/conceal][link=https://evil.example]x[/link]"
        f.write_text(json.dumps(data))
    env = {**os.environ, "FORCE_COLOR": "1", "TERM": "xterm-256color", "COLUMNS": "400"}
    proc = subprocess.run([str(TVA), "plan", str(REFERENCE_FLEET), "--status", str(status)],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "[conceal]hidden[/conceal]" in proc.stdout
    assert "\x1b]8;" not in proc.stdout, "no hyperlink escape"
    assert "\x1b[8m" not in proc.stdout, "no concealed text"
    assert "\x1b[1m" in proc.stdout, "tva's own styles still apply"


def test_the_daemons_logs_are_escaped_and_redacted() -> None:
    import io
    import logging

    from controller.daemon.logs import setup

    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        for as_json in (False, True):
            setup(as_json=as_json)
            root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
            logging.getLogger("tva.test").warning(
                "cannot reach %s: %s", "http://u:pw@idx/api?apikey=K3Y", "name\x1b[2J\u202e")
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
    text = stream.getvalue()
    assert "K3Y" not in text and ":pw@" not in text and "\x1b" not in text
    assert "\u202e" not in text
    assert text.count("apikey=***") == 2
