"""Resolve credential references (env, file, keyring) at the moment of use.

Values are never stored in models, plans, statuses or logs: callers resolve a reference right
before opening a connection and keep the value only as long as the connection needs it.

The references come from the fleet repo, so they resolve only inside what the node's operator
set aside for tva (``schemas.node.SecretsConfig``): ``{env: X}`` only when X starts with the
configured prefix (``TVA_``), ``{file: P}`` only when P, with symlinks resolved, lies inside a
configured directory (``/etc/tva``). Otherwise a commit could read any variable or file the
daemon can, and send it wherever a URL in the same commit points (see ``controller.egress``
for the other half).
"""

from __future__ import annotations

import os

from controller.errors import PermanentError
from controller.nodeconfig import current
from schemas.desired import SecretRef

__all__ = [
    "MAX_SECRET_FILE",
    "SecretRefused",
    "SecretUnavailable",
    "allowed_file",
    "describe",
    "resolve",
]

MAX_SECRET_FILE = 64 * 1024


class SecretUnavailable(PermanentError):
    """A referenced secret could not be read; the message names the reference, never a value."""


class SecretRefused(SecretUnavailable):
    """The reference points outside what the node's operator allows."""


def allowed_file(path: str) -> str:
    """The real path of ``path`` when it lies inside a configured secrets directory."""
    dirs = current().secrets.dirs
    real = os.path.realpath(os.path.expanduser(path))
    for d in dirs:
        root = os.path.realpath(os.path.expanduser(d))
        if real == root or real.startswith(root.rstrip("/") + "/"):
            return real
    raise SecretRefused(
        f"secret file:{path} is outside the node's secrets directories ({', '.join(dirs)}); "
        "put it there or add its directory to secrets.dirs in the node configuration"
    )


def describe(ref: SecretRef) -> str:
    """The reference as a person would write it, safe to log."""
    if ref.env is not None:
        return f"env:{ref.env}"
    if ref.file is not None:
        return f"file:{ref.file}"
    return f"keyring:{ref.keyring}"


def resolve(ref: SecretRef) -> str:
    if ref.env is not None:
        prefix = current().secrets.env_prefix
        if not ref.env.startswith(prefix):
            raise SecretRefused(
                f"secret {describe(ref)} is refused: this node resolves only variables named "
                f"{prefix}* (secrets.env_prefix in the node configuration)"
            )
        value = os.environ.get(ref.env)
        if value is None:
            raise SecretUnavailable(f"secret {describe(ref)} is not set in the controller's environment")
        return value
    if ref.file is not None:
        real = allowed_file(ref.file)
        try:
            with open(real, "rb") as f:
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
