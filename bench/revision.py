"""Benchmark: one blob behind many paths costs one parse (the revision budget, issue 12).

    .venv/bin/python bench/revision.py [--paths 16] [--items 5000] [--repeat 3]

Builds a git repo of the reference fleet plus one collection of ``--items`` items (about
400 KB of YAML) committed under one path, then the same blob under ``--paths`` paths, and
times ``load_revision`` on each commit (CPU time of this process, the median of ``--repeat``
runs). The second revision is invalid (the collection is defined ``--paths`` times) and is
timed all the same: that is what a controller pays before it can say so. Reported: the ratio
of the two (goal: <= 2; each path parsed again would make it about ``--paths``).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.clients.git import GitRepo
from controller.errors import ValidationFailed
from controller.lab.fleet import git
from controller.source.gittree import load_revision

REFERENCE = Path(__file__).resolve().parent.parent / "fleet-state"


def collection(items: int) -> str:
    rows = "".join(f"  - name: item {i}\n    infohash: {i:040x}\n    size: 1GiB\n" for i in range(items))
    return f"apiVersion: tva/v1\nkind: Collection\nname: big\nitems:\n{rows}"


def timed(repo: GitRepo, rev: str, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.process_time()
        with contextlib.suppress(ValidationFailed):  # the many-paths revision is invalid
            load_revision(repo, rev)
        runs.append(time.process_time() - start)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--paths", type=int, default=16)
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tva-bench-") as tmp:
        work = Path(tmp) / "fleet"
        shutil.copytree(REFERENCE, work)
        git(work, "init", "--quiet", "-b", "main")
        text = collection(args.items)
        (work / "items" / "big.yaml").write_text(text)
        git(work, "add", "--all")
        git(work, "commit", "--quiet", "-m", "one path")
        one = git(work, "rev-parse", "HEAD")
        for i in range(1, args.paths):
            (work / "items" / f"big{i}.yaml").write_text(text)
        git(work, "add", "--all")
        git(work, "commit", "--quiet", "-m", "many paths")
        many = git(work, "rev-parse", "HEAD")
        with GitRepo.open(work) as repo:
            t1 = timed(repo, one, args.repeat)
            tn = timed(repo, many, args.repeat)
    print(f"blob of {len(text) // 1024} KiB: 1 path {t1:.2f} s, {args.paths} paths {tn:.2f} s; "
          f"ratio {tn / t1:.2f} (goal <= 2)")


if __name__ == "__main__":
    main()
