"""The node's configuration file (``node.toml``), read once when a command starts.

The model is ``schemas.node.NodeConfig``. The CLI loads the file (``--node-config``, default
``/etc/tva/node.toml``, or ``$XDG_CONFIG_HOME/tva/node.toml`` for a user) and installs it;
the secrets resolver, the egress policy, the VPN actuator and the roots check read it with
``current()``. It is process-wide on purpose: it describes the machine, not a fleet or a pass,
and no value from the fleet repo can reach it. A missing default file means the defaults.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import threading
import tomllib
from collections.abc import Iterable

from pydantic import ValidationError

from controller.errors import PermanentError
from schemas.node import NodeConfig

__all__ = ["NodeConfigError", "current", "default_path", "install", "load", "refused_root"]

_lock = threading.Lock()
_current = NodeConfig()


class NodeConfigError(PermanentError):
    """The node's configuration file cannot be read or is invalid (the message names it)."""


def default_path() -> str:
    """``~/.config/tva/node.toml`` for a user who has one (``$XDG_CONFIG_HOME``), else
    ``/etc/tva/node.toml`` (root always reads that one)."""
    system = "/etc/tva/node.toml"
    if os.geteuid() == 0:
        return system
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    user = os.path.join(base, "tva", "node.toml")
    return user if os.path.exists(user) else system


def load(path: str | None = None) -> NodeConfig:
    """The configuration in ``path`` (the default file when None; defaults if it is missing)."""
    explicit = path is not None
    path = path if path is not None else default_path()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        if explicit:
            raise NodeConfigError(f"{path}: the node configuration file does not exist") from None
        return NodeConfig()
    except OSError as e:
        raise NodeConfigError(f"{path}: cannot read the node configuration: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise NodeConfigError(f"{path}: invalid TOML: {e}") from None
    try:
        return NodeConfig.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise NodeConfigError(f"{path}: {where}: {first['msg']}{more}") from None


def install(config: NodeConfig) -> None:
    """Make ``config`` the node's configuration for this process."""
    global _current
    with _lock:
        _current = config


def current() -> NodeConfig:
    with _lock:
        return _current


def _inside(path: str, root: str) -> bool:
    """Is ``path`` ``root`` or inside it? ``*`` in ``root`` matches one element; the root
    ``/`` only matches itself (everything is inside it)."""
    if root == "/":
        return path == "/"
    want = [p for p in root.split("/") if p]
    have = [p for p in path.split("/") if p]
    return len(have) >= len(want) and all(
        fnmatch.fnmatchcase(h, w) for h, w in zip(have, want, strict=False))


def refused_root(path: str, extra: Iterable[str] = ()) -> str | None:
    """Why this node refuses ``path`` as a storage root or download dir (the fleet repo's
    word), or None. Both the path as written and its real path (symlinks resolved) must pass:
    the refused roots of the node's configuration (``/``, ``/etc``, ``/root``..., plus
    ``extra``, such as the state dir), and its allowed roots when it lists any."""
    roots = current().roots
    refused = [*roots.refuse, *extra]
    for candidate in dict.fromkeys((posixpath.normpath(path), os.path.realpath(path))):
        for root in refused:
            if _inside(candidate, posixpath.normpath(root)):
                return (f"{path} is inside {root}, which this node never gives to Transmission "
                        "(roots.refuse in its node.toml)")
        if roots.allow is not None and not any(
                _inside(candidate, posixpath.normpath(r)) for r in roots.allow):
            return (f"{path} is outside this node's allowed roots ({', '.join(roots.allow)}; "
                    "roots.allow in its node.toml)")
    return None
