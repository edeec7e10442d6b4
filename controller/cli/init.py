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

import git

from controller.cli.output import err, out
from controller.desired import load_fleet
from controller.errors import PermanentError, ValidationFailed
from controller.scaffold import SCHEMA_DIR, probe_machine, render, slug

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
            err.print(
                f"[red]error:[/red] {what} {value!r} is not a valid name "
                "(lower-case letters, digits, '.', '_' and '-', at most 64)"
            )
            return 1
    if target.exists() and not target.is_dir():
        err.print(f"[red]error:[/red] {directory} exists and is not a directory")
        return 1
    if target.is_dir() and any(target.iterdir()):
        err.print(
            f"[red]error:[/red] {directory} is not empty; tva init only creates new repos "
            "(give a new or empty directory)"
        )
        return 1

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
        f"[green]Created fleet repo {directory}[/green] ({shown} files and the JSON Schemas "
        f"in {SCHEMA_DIR}/; commit {sha[:12]})"
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
        repo = git.Repo.init(root, initial_branch="main")
        repo.git.add(A=True)
        env = None if _has_identity(repo) else _STAND_IN
        repo.git.commit(m=COMMIT_MESSAGE, no_verify=True, env=env)
        return str(repo.head.commit.hexsha)
    except git.GitCommandError as e:
        detail = (e.stderr or "").strip() or str(e)
        raise PermanentError(
            f"git failed in {root}: {detail} (the files are written; commit them yourself)"
        ) from e
    except (git.GitError, OSError) as e:
        raise PermanentError(f"cannot run git in {root}: {e}") from e


def _has_identity(repo: git.Repo) -> bool:
    """Is a commit identity configured (any level, or the environment)?"""
    if all(os.environ.get(k) for k in _STAND_IN):
        return True
    try:
        return bool(repo.git.config("user.name")) and bool(repo.git.config("user.email"))
    except git.GitCommandError:
        return False
