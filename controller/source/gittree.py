"""Load the desired state straight from a git commit, without a working tree.

``tva run`` validates a fetched revision before using it and ``tva review`` compares two
revisions; both read blobs from the commit itself, so nothing on disk changes and an invalid
revision can never be half-applied.
"""

from __future__ import annotations

from typing import Any

import git

from controller.desired.loader import YAML_SUFFIXES, LoadResult, load_files
from controller.errors import PermanentError


class RevisionNotFound(PermanentError):
    """The revision does not exist in the repository."""


def resolve(repo: git.Repo, rev: str) -> str:
    """The full commit id of ``rev`` (a branch, tag, ref or id)."""
    try:
        return str(repo.commit(rev).hexsha)
    except (git.BadName, ValueError, git.GitCommandError) as e:
        raise RevisionNotFound(f"revision {rev!r} not found in {repo.working_dir or repo.git_dir}") from e


def load_revision(repo: git.Repo, rev: str, *, shown_root: str = "") -> LoadResult:
    """Load and validate the fleet repo as it is at ``rev``. Raises ValidationFailed."""
    sha = resolve(repo, rev)
    tree = repo.commit(sha).tree
    blobs: dict[str, Any] = {}
    for obj in tree.traverse():
        if not isinstance(obj, git.Blob):
            continue
        path = str(obj.path)
        if any(part.startswith(".") for part in path.split("/")):
            continue
        blobs[path] = obj

    def reader(rel: str, limit: int) -> bytes:
        blob = blobs.get(rel)
        if blob is None:
            raise FileNotFoundError(rel)
        stream = blob.data_stream
        return bytes(stream.read(limit + 1))

    files = sorted(p for p in blobs if p.endswith(YAML_SUFFIXES))
    return load_files(shown_root, files, reader, revision=sha)
