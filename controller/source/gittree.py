"""Load the desired state straight from a git commit, without a working tree.

``tva run`` validates a fetched revision before using it and ``tva review`` compares two
revisions; both read blobs from the commit itself (``GitRepo.blobs``), so nothing on disk
changes and an invalid revision can never be half-applied. The files read, the path rule
(``schemas.repopath``) and the budget (``controller.desired.loader.Budget``) are those of a
checkout, so ``tva validate`` and a controller agree on every revision.
"""

from __future__ import annotations

from controller.clients.git import GitRepo, RevisionNotFound
from controller.desired.loader import YAML_SUFFIXES, Budget, LoadResult, load_files
from schemas.repopath import hidden

__all__ = ["RevisionNotFound", "load_revision"]


def load_revision(repo: GitRepo, rev: str, *, shown_root: str = "", budget: Budget | None = None) -> LoadResult:
    """Load and validate the fleet repo as it is at ``rev``. Raises ValidationFailed."""
    sha = repo.resolve(rev)
    blobs = {path: blob for path, blob in repo.blobs(sha).items() if not hidden(path)}

    def reader(rel: str, limit: int) -> bytes:
        blob = blobs.get(rel)
        if blob is None:
            raise FileNotFoundError(rel)
        return blob.read(limit)

    files = sorted(p for p in blobs if p.endswith(YAML_SUFFIXES))
    return load_files(shown_root, files, reader, revision=sha, budget=budget)
