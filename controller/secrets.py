"""Resolve credential references (env, file, keyring) at the moment of use.

Values are never stored in models, plans, statuses or logs: callers resolve a reference right
before opening a connection and keep the value only as long as the connection needs it.
"""

from __future__ import annotations

import os

from controller.errors import PermanentError
from schemas.desired import SecretRef

__all__ = [
    "MAX_SECRET_FILE",
    "SecretUnavailable",
    "describe",
    "resolve",
]

MAX_SECRET_FILE = 64 * 1024


class SecretUnavailable(PermanentError):
    """A referenced secret could not be read; the message names the reference, never a value."""


def describe(ref: SecretRef) -> str:
    """The reference as a person would write it, safe to log."""
    if ref.env is not None:
        return f"env:{ref.env}"
    if ref.file is not None:
        return f"file:{ref.file}"
    return f"keyring:{ref.keyring}"


def resolve(ref: SecretRef) -> str:
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if value is None:
            raise SecretUnavailable(f"secret {describe(ref)} is not set in the controller's environment")
        return value
    if ref.file is not None:
        try:
            with open(os.path.expanduser(ref.file), "rb") as f:
                data = f.read(MAX_SECRET_FILE + 1)
        except OSError as e:
            raise SecretUnavailable(f"secret {describe(ref)} cannot be read: {e.strerror}") from None
        if len(data) > MAX_SECRET_FILE:
            raise SecretUnavailable(f"secret {describe(ref)} is larger than 64 KiB")
        return data.decode("utf-8", errors="strict").rstrip("\r\n")
    assert ref.keyring is not None
    service, _, user = ref.keyring.partition("/")
    try:
        import keyring
    except ImportError:
        raise SecretUnavailable(
            f"secret {describe(ref)} needs the 'keyring' package; install it or use env:/file:"
        ) from None
    value = keyring.get_password(service, user)
    if value is None:
        raise SecretUnavailable(f"secret {describe(ref)} is not in the keyring")
    return str(value)
