"""The corpus of bad fleets: every check of the loader, and hostile YAML, through the real CLI.

Each case in ``bad/<case>/`` is an overlay on the small valid fleet in ``bad/_base/``: its files
replace or add to the base's, ``expect.yaml`` may ``remove`` base files, and lists the problems
``tva validate`` must report — exactly those, no more (``at`` is ``file:line`` relative to the
fleet, line 0 when the problem is about no line at all; ``message`` and ``hint`` are
substrings). The two hostile inputs too big to commit (a 50 MB file, 10,000-deep nesting) are
generated in test_hostile.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from controller.cli.main import app

BAD = Path(__file__).parent / "bad"
BASE = BAD / "_base"
CASES = sorted(p.name for p in BAD.iterdir() if p.is_dir() and not p.name.startswith("_"))
TVA = Path(sys.executable).parent / "tva"

# Run through a real `tva` process too: proves nothing but the message reaches the user.
THROUGH_SUBPROCESS = [
    "alias-bomb", "binary-file", "duplicate-keys", "recursive-alias", "invalid-utf8",
    "python-tag-mapping", "yaml-syntax-error", "unknown-field", "torrent-corrupt", "no-fleet",
]


def expectation(case: str) -> dict[str, Any]:
    data = yaml.safe_load((BAD / case / "expect.yaml").read_text())
    assert isinstance(data, dict) and data.get("problems"), f"{case}/expect.yaml lists no problems"
    return data


def compose(case: str, parent: Path) -> Path:
    """The base fleet with the case's overlay applied, at ``parent/fleet``."""
    dst = parent / "fleet"
    shutil.copytree(BASE, dst)
    for rel in expectation(case).get("remove", []):
        (dst / rel).unlink()
    src = BAD / case
    for path in sorted(src.rglob("*")):
        if path.is_file() and path.name != "expect.yaml":
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return dst


def check_problems(case: str, problems: list[dict[str, Any]]) -> None:
    want = sorted(expectation(case)["problems"], key=lambda p: _split_at(p["at"]))
    got = sorted(problems, key=lambda p: (p["file"], p["line"]))
    shown = "\n".join(f"  {p['file']}:{p['line']}: {p['field']}: {p['message']} ({p['hint']})" for p in got)
    assert len(got) == len(want), f"{case}: expected {len(want)} problem(s), got:\n{shown}"
    for w, g in zip(want, got, strict=True):
        file, line = _split_at(w["at"])
        assert (g["file"], g["line"], g["field"]) == ("fleet/" + file, line, w["field"]), shown
        assert w["message"] in g["message"], shown
        assert w.get("hint", "") in g["hint"], shown


def _split_at(at: str) -> tuple[str, int]:
    file, _, line = at.rpartition(":")
    return file, int(line)


def test_corpus_covers_enough_cases() -> None:
    assert len(CASES) >= 25
    for case in CASES:
        assert expectation(case)["about"], case


@pytest.mark.parametrize("case", CASES)
def test_bad_fleet_is_refused_with_located_problems(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compose(case, tmp_path)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    as_json = runner.invoke(app, ["validate", "fleet", "--json"])
    assert as_json.exit_code == 1, as_json.output
    report = json.loads(as_json.stdout)
    assert report["valid"] is False
    check_problems(case, report["problems"])

    text = runner.invoke(app, ["validate", "fleet"])
    assert text.exit_code == 1
    assert "Traceback" not in text.output
    lines = text.stderr.splitlines()
    for p in report["problems"]:
        where = f"{p['file']}:{p['line']}" if p["line"] else p["file"]
        head = f"{where}: {p['field']}: " if p["field"] else f"{where}: "
        assert any(line.startswith(head) and p["message"] in line for line in lines), text.stderr


@pytest.mark.parametrize("case", THROUGH_SUBPROCESS)
def test_bad_fleet_through_the_tva_process(case: str, tmp_path: Path) -> None:
    assert case in CASES
    compose(case, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TVA_")}
    proc = subprocess.run(
        [str(TVA), "validate", "fleet"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    both = proc.stdout + proc.stderr
    assert "Traceback" not in both and "internal error" not in both
    for p in expectation(case)["problems"]:
        file, line = _split_at(p["at"])
        where = f"fleet/{file}:{line}" if line else f"fleet/{file}"
        assert any(
            ln.startswith(f"{where}: ") and p["message"] in ln for ln in proc.stderr.splitlines()
        ), proc.stderr


def test_base_fleet_is_valid(tmp_path: Path) -> None:
    """Every case has exactly its own defect only if the base it starts from is clean."""
    from controller.desired import load_fleet

    d = load_fleet(str(BASE)).desired
    assert set(d.devices) == {"nas", "laptop", "seedbox"}
    assert len(d.items) == 3
