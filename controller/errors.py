"""tva's error hierarchy. Library errors are translated into these at the adapters.

``TemporaryError`` is worth retrying (a daemon restarting, a busy remote); ``PermanentError``
is not (bad credentials, an invalid fleet repo). Retry policies look only at these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "AuthError",
    "PermanentError",
    "Problem",
    "TemporaryError",
    "TvaError",
    "UnreachableError",
    "ValidationFailed",
]


class TvaError(Exception):
    """Base of every error tva reports to a person: the message says what to do."""


class TemporaryError(TvaError):
    """May succeed later: retried with backoff."""

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(TvaError):
    """Will not succeed by retrying: reported and recorded."""


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the fleet repo, located as precisely as the input allows."""

    file: str
    line: int
    field: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        what = f"{self.field}: {self.message}" if self.field else self.message
        return f"{where}: {what}" + (f" ({self.hint})" if self.hint else "")

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass
class ValidationFailed(PermanentError):
    """The fleet repo is invalid; ``problems`` lists every problem found, sorted."""

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.problems = sorted(self.problems)
        super().__init__(self.__str__())

    def __str__(self) -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the fleet repo"
        return head + ":\n" + "\n".join(f"  {p}" for p in self.problems)


class UnreachableError(TemporaryError):
    """A daemon, player or remote could not be reached."""


class AuthError(PermanentError):
    """Credentials were refused; fix the reference in the device's credentials."""
