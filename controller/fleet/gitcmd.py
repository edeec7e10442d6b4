"""Running git for tva (the status transport, the fleet repo source, the remote poller): no
prompts, a time limit, errors sorted by retry value.

A push, fetch or clone must never hang a controller (a credential prompt, a dead SSH link), and
its failure must say whether trying again can help. git reports everything as text on stderr;
this module sorts it into ``UnreachableError`` (the remote could not be reached),
``TemporaryError`` (a ref lock is busy), ``AuthError`` and ``PermanentError``, and retries only
the temporary ones, with capped exponential backoff and jitter and a bounded number of attempts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import git
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from controller.errors import AuthError, PermanentError, TemporaryError, UnreachableError

__all__ = ["RetryPolicy", "run_git", "translate", "with_retries"]

log = logging.getLogger("tva.fleet.git")

T = TypeVar("T")

# No credential prompt may block a daemon: fail instead, and say so.
_ENV = {"GIT_TERMINAL_PROMPT": "0", "GCM_INTERACTIVE": "never"}

_TIMEOUT = ("did not complete in",)
_AUTH = (
    "permission denied",
    "authentication failed",
    "could not read username",
    "could not read password",
    "terminal prompts disabled",
    "host key verification failed",
    "returned error: 401",
    "returned error: 403",
)
# Checked before _REJECTED: a busy lock on the remote comes back as "[remote rejected] ...
# (failed to update ref)" after "cannot lock ref".
_BUSY = (
    "cannot lock ref",
    "unable to create",
    "failed to lock",
    "failed to update ref",
    "but expected",
    "index.lock",
)
_REJECTED = (
    "[rejected]",
    "remote rejected",
    "denying non-fast-forward",
    "non-fast-forward",
    "hook declined",
)
_UNREACHABLE = (
    "does not appear to be a git repository",
    "could not read from remote repository",
    "unable to access",
    "could not resolve host",
    "temporary failure in name resolution",
    "connection refused",
    "connection timed out",
    "connection reset",
    "network is unreachable",
    "no route to host",
    "the remote end hung up",
    "early eof",
    "failed to connect",
    "couldn't connect",
    "ssh: connect to host",
    "returned error: 5",
)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try a push or fetch before giving up with the last error."""

    attempts: int = 5
    """Tries in all, the first included."""
    initial: float = 0.5
    """Seconds before the first retry; each later wait doubles, plus jitter."""
    max_wait: float = 10.0
    """Cap on one wait, seconds."""
    timeout: float = 60.0
    """A single git command is killed after this many seconds (and counts as unreachable)."""


def run_git(repo: git.Repo | None, args: Sequence[str], *, what: str, timeout: float) -> str:
    """Run ``git ARGS`` in ``repo`` (or outside any repository, for ``clone`` and
    ``ls-remote``); a failure becomes a tva error that names ``what`` failed."""
    runner = repo.git if repo is not None else git.cmd.Git()
    try:
        out = runner.execute(["git", *args], env=_ENV, kill_after_timeout=timeout)
    except git.GitCommandError as e:
        raise translate(e, what) from e
    except git.CommandError as e:
        raise PermanentError(f"{what}: cannot run git: {e}") from e
    return str(out)


def translate(e: git.GitCommandError, what: str) -> Exception:
    """The tva error for a failed git command: temporary only when a retry can succeed."""
    text = _text(e.stderr) or _text(e.stdout) or str(e)
    low = text.lower()
    reason = _reason(text)
    if any(p in low for p in _TIMEOUT):
        return UnreachableError(f"{what}: git did not finish in time ({reason})")
    if any(p in low for p in _AUTH):
        return AuthError(
            f"{what}: access refused ({reason}); check the node's git credentials and the "
            "permissions of the repository"
        )
    if any(p in low for p in _BUSY):
        return TemporaryError(f"{what}: a ref is locked by another git process ({reason})")
    if any(p in low for p in _REJECTED):
        return PermanentError(
            f"{what}: the remote refused the update ({reason}); it must accept forced pushes "
            "to the status refs"
        )
    if any(p in low for p in _UNREACHABLE):
        return UnreachableError(f"{what}: the remote cannot be reached ({reason})")
    return PermanentError(f"{what}: {reason}")


def with_retries(policy: RetryPolicy, fn: Callable[[], T], *, what: str) -> T:
    """Call ``fn``, retrying ``TemporaryError`` by ``policy``; the last error says how often."""

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s failed (attempt %d), retrying in %.1fs: %s", what, state.attempt_number, wait, exc)

    retrying = Retrying(
        retry=retry_if_exception_type(TemporaryError),
        # Capped exponential backoff plus jitter, so nodes that failed together do not retry
        # together.
        wait=wait_exponential(multiplier=policy.initial, max=policy.max_wait)
        + wait_random(0, policy.initial),
        stop=stop_after_attempt(max(1, policy.attempts)),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(fn)
    except TemporaryError as e:
        attempts = retrying.statistics.get("attempt_number", 1)
        raise type(e)(f"{e} (gave up after {attempts} attempts)", delay=e.delay) from e


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace").strip()
    return str(value).strip() if value else ""


def _reason(text: str) -> str:
    """The most telling line of git's message (gitpython wraps it in quotes and a prefix)."""
    lines = [ln.strip().removeprefix("stderr:").strip().strip("'").strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.lower().startswith(("please make sure", "and the repository"))]
    fatal = [ln for ln in lines if ln.lower().startswith(("fatal:", "error:", "remote: error:", " !", "!"))]
    return (fatal or lines or ["git failed"])[0]
