"""Hostile strings in every kind's string fields: ``tva validate`` answers 0, or 1 with
``file:line``; never a traceback; nothing written outside its scratch directory.

Each example takes the small base fleet (``bad/_base``), puts one generated string into one
string field (names, descriptions, labels, paths, URLs, secret references, mpv values...) of
one kind, either as YAML would quote it or pasted raw into the text (so YAML syntax in the
string is exercised too), and runs the validator. The in-process runs (many examples) check the
answer; the runs of the installed ``tva`` (a few examples) also run with ``HOME``, ``TMPDIR``
and the XDG directories inside the scratch directory and check that only the fleet is there
afterwards, unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from controller.cli.main import app
from tests.desired.test_bad_fleets import BASE

TVA = Path(sys.executable).parent / "tva"

FIELDS: list[tuple[str, tuple[str | int, ...]]] = [
    ("fleet.yaml", ("name",)),
    ("fleet.yaml", ("description",)),
    ("devices/nas.yaml", ("name",)),
    ("devices/nas.yaml", ("labels", 0)),
    ("devices/nas.yaml", ("storage", 0, "path")),
    ("devices/nas.yaml", ("download_dir",)),
    ("devices/nas.yaml", ("addresses", "transmission_rpc")),
    ("devices/nas.yaml", ("addresses", "controller_api")),
    ("devices/nas.yaml", ("credentials", "transmission_user")),
    ("devices/nas.yaml", ("credentials", "transmission_password", "env")),
    ("devices/laptop.yaml", ("player", "options", "hwdec")),
    ("items/films.yaml", ("items", 0, "name")),
    ("items/films.yaml", ("items", 1, "magnet")),
    ("items/films.yaml", ("items", 2, "torrent")),
    ("sources/public.yaml", ("description",)),
    ("sources/public.yaml", ("trackers",)),
    ("vpn/home-wg.yaml", ("interface",)),
    ("vpn/home-wg.yaml", ("config", "file")),
    ("watchlists/laptop.yaml", ("entries", 0, "film")),
    ("custody/films.yaml", ("select", "collections", 0)),
    ("duties.yaml", ("apiVersion",)),
]

PIECES = [
    "\x1b[2J", "\x1b]0;owned\x07", "\u202e", "\u2066", "\x00", "\x9b", "\r", "\n", "\t",
    "../../etc/passwd", "/etc/cron.d/x", "~/.ssh/authorized_keys", "//", "./x", "%9%",
    ":file=/tmp/x", "http://user:pass@169.254.169.254/?apikey=K", "udp://t/?passkey=P",
    "--upload-pack=touch /tmp/pwned", "$(id)", "`id`", "{{x}}", "${HOME}", "[red]", "@everyone",
    "</details>", "| a |", "&a", "*a", "!!python/object:os.system", "- ", ": ", "# ", "'", '"',
    "{", "}", "[", "]", ">", "|", "\ufeff", "\u2028", "\ud7ff", "𝕏", "A" * 300,
]

hostile = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(max_size=8)), min_size=1, max_size=4,
).map("".join)


def _set(doc: Any, path: tuple[str | int, ...], value: str) -> None:
    for key in path[:-1]:
        doc = doc[key]
    last = path[-1]
    if isinstance(doc, list) and isinstance(last, int):
        doc[last] = value
    elif path == ("trackers",):
        doc["trackers"] = [value]
    else:
        doc[last] = value


def _write(fleet: Path, rel: str, path: tuple[str | int, ...], value: str, raw: bool) -> None:
    target = fleet / rel
    doc = yaml.safe_load(target.read_text())
    if raw:
        _set(doc, path, "TVA-HOSTILE-SLOT")
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
        target.write_bytes(text.replace("TVA-HOSTILE-SLOT", value).encode("utf-8", "surrogatepass"))
    else:
        _set(doc, path, value)
        target.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True),
                          encoding="utf-8", errors="surrogatepass")


def _fleet(scratch: Path) -> Path:
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    fleet = scratch / "fleet"
    shutil.copytree(BASE, fleet)
    return fleet


def _check_report(report: dict[str, Any], fleet: Path) -> None:
    if report["valid"]:
        return
    assert report["problems"], report
    for p in report["problems"]:
        where = Path(p["file"])
        assert (where if where.is_absolute() else fleet.parent / where).resolve().is_relative_to(
            fleet.resolve()), p
        assert isinstance(p["line"], int) and p["line"] >= 0, p
    assert any(p["line"] >= 1 for p in report["problems"]), report


_WHERE = re.compile(r"^\S*fleet[^:]*(:\d+)?: ")


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), value=hostile, raw=st.booleans())
def test_validate_answers_hostile_strings_with_located_problems(
        tmp_path: Path, field: tuple[str, tuple[str | int, ...]], value: str, raw: bool) -> None:
    fleet = _fleet(tmp_path / "scratch")
    _write(fleet, field[0], field[1], value, raw)
    runner = CliRunner()
    result = runner.invoke(app, ["validate", str(fleet), "--json"])
    assert result.exit_code in (0, 1), (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    report = json.loads(result.stdout)
    assert report["valid"] is (result.exit_code == 0)
    _check_report(report, fleet)

    text = runner.invoke(app, ["validate", str(fleet)])
    assert text.exit_code == result.exit_code
    assert "Traceback" not in text.output and "internal error" not in text.output
    for c in "\x1b\x00\x07\u202e\x9b":
        assert c not in text.output, "shown raw"
    if text.exit_code == 1:
        problems = [ln for ln in text.stderr.splitlines() if not ln.endswith("problems)")
                    and not ln.endswith("problem)")]
        assert problems and all(_WHERE.match(ln) for ln in problems), text.stderr


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "dir" for p in sorted(root.rglob("*"))}


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), value=hostile, raw=st.booleans())
def test_the_tva_process_writes_nothing_outside_its_scratch_dir(
        tmp_path: Path, field: tuple[str, tuple[str | int, ...]], value: str, raw: bool) -> None:
    scratch = tmp_path / "scratch"
    fleet = _fleet(scratch)
    _write(fleet, field[0], field[1], value, raw)
    home = scratch / "home"
    for d in ("home", "tmp", "config", "state", "cache"):
        (scratch / d).mkdir()
    before = _tree(scratch)
    targets = [Path("/tmp/pwned"), Path("/tmp/x")]  # where the hostile strings point
    def seen() -> list[int | None]:
        return [t.stat().st_mtime_ns if t.exists() else None for t in targets]

    existed = seen()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TVA_", "XDG_"))}
    env.update(HOME=str(home), TMPDIR=str(scratch / "tmp"), XDG_CONFIG_HOME=str(scratch / "config"),
               XDG_STATE_HOME=str(scratch / "state"), XDG_CACHE_HOME=str(scratch / "cache"))
    proc = subprocess.run([str(TVA), "validate", "fleet", "--json"], cwd=scratch, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    _check_report(json.loads(proc.stdout), fleet)
    assert _tree(scratch) == before, "tva validate wrote or changed a file"
    assert seen() == existed, "tva validate made or touched a file a hostile string names"
