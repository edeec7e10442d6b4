"""One rule for a path inside the fleet repo, shared by every reader of the repo.

A checkout (``tva validate``, ``tva plan``) and a commit read straight from git (``tva run``,
``tva review``) must agree on which files exist: ``./x.torrent`` or ``a//b.torrent`` open on a
disk but name nothing in a git tree, and dot-folders are skipped by both readers. So a path the
owner writes must already be in git's own form (relative, ``/``-separated, no empty, ``.`` or
``..`` part, no part starting with a dot): then both readers see the same file or none.
"""

from __future__ import annotations

__all__ = ["hidden", "repo_path_problem"]


def hidden(path: str) -> bool:
    """Whether a repo path lies in a dot-folder or is a dot-file (skipped by every reader)."""
    return any(part.startswith(".") for part in path.split("/"))


def repo_path_problem(path: str) -> str | None:
    """Why ``path`` is not a plain path inside the repo, or None when it is one."""
    if not path:
        return "the path is empty"
    if "\\" in path:
        return "use '/' between folders, not '\\'"
    if path.startswith("/"):
        return "the path must be relative to the repo root, not absolute"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return "the path holds a control character"
    parts = path.split("/")
    if ".." in parts:
        return "a path must stay inside the repo (no '..')"
    if "" in parts:
        return "the path has an empty part ('//' or a trailing '/')"
    if "." in parts:
        return "the path has a '.' part; write it from the repo root without './'"
    if hidden(path):
        return "files in dot-folders (or dot-files) are not part of the fleet repo"
    return None
