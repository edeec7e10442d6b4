"""``tva init DIR``: scaffold a new fleet repo that validates, as a git repo with one commit.

The directory must be new or empty: init never overwrites a file. Git's own configuration is
never changed; when no commit identity is configured anywhere, the initial commit is made
with a stand-in identity given to that one command only, so the user's later commits still
ask for a real one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from controller.cli.output import esc, out
from controller.clients.git import GitRepo, init_repo
from controller.desired import load_fleet
from controller.errors import PermanentError, TvaError, ValidationFailed
from controller.scaffold import SCHEMA_DIR, probe_machine, render, slug

__all__ = ["COMMIT_MESSAGE", "run"]

_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$")
_STAND_IN = {
    "GIT_AUTHOR_NAME": "tva init",
    "GIT_AUTHOR_EMAIL": "tva@localhost",
    "GIT_COMMITTER_NAME": "tva init",
    "GIT_COMMITTER_EMAIL": "tva@localhost",
}
COMMIT_MESSAGE = "New fleet repo (tva init)"


def run(directory: str, name: str | None, device: str | None) -> int:
    target = Path(directory)
    fleet = name if name is not None else slug(target.resolve().name, "home")
    for what, value in (("--name", fleet), ("--device", device)):
        if value is not None and not _NAME_RE.match(value):
            raise PermanentError(
                f"{what} {value!r} is not a valid name "
                "(lower-case letters, digits, '.', '_' and '-', at most 64)"
            )
    if target.exists() and not target.is_dir():
        raise PermanentError(f"{directory} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()):
        raise PermanentError(
            f"{directory} is not empty; tva init only creates new repos "
            "(give a new or empty directory)"
        )

    files = render(fleet, probe_machine(device))
    _write(target, files)
    sha = _git_init_and_commit(target)
    try:
        result = load_fleet(str(target))
    except ValidationFailed as e:  # a bug in the templates, not the user's doing
        raise PermanentError(f"the new fleet repo does not validate:\n{e}") from e

    dev = next(iter(result.desired.devices))
    shown = sum(1 for f in files if not f.startswith(SCHEMA_DIR + "/"))
    out.print(
        f"[green]Created fleet repo {esc(directory)}[/green] ({shown} files and the JSON "
        f"Schemas in {SCHEMA_DIR}/; commit {sha[:12]})", markup=True,
    )
    out.print(
        f"Next: check devices/{dev}.yaml (storage, addresses), add items to "
        "items/library.yaml, run `tva validate` and push the repo to a remote your nodes "
        "can reach."
    )
    return 0


def _write(root: Path, files: dict[str, str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in sorted(files.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        # "x": never overwrite, even if something appeared since the emptiness check.
        with open(path, "x", encoding="utf-8", newline="\n") as f:
            f.write(text)


def _git_init_and_commit(root: Path) -> str:
    try:
        with init_repo(root, branch="main") as repo:
            env = None if _has_identity(repo) else _STAND_IN
            return repo.commit_all(COMMIT_MESSAGE, env=env)
    except TvaError as e:
        raise PermanentError(f"{e} (the files are written; commit them yourself)") from e


def _has_identity(repo: GitRepo) -> bool:
    """Is a commit identity configured (any level, or the environment)?"""
    return all(os.environ.get(k) for k in _STAND_IN) or repo.has_identity()
