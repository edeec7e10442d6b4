"""``tva fabric keys NODE``: the node's fabric public key, to commit in fabric.yaml.

Run on the node itself: the private key is made (``wg genkey``) in the node's secrets
directory when absent and never leaves it; only the public key is printed. ``--rotate`` makes
the next key instead: the node keeps its current key until the fleet repo commits the new
public key, so a rotation is a commit and peers change over together.
"""

from __future__ import annotations

import os

from controller.cli.output import emit_json, err, out
from controller.clients import wireguard as wg
from controller.desired import load_fleet
from controller.errors import PermanentError
from schemas.fabric import DEFAULT_INTERFACE

__all__ = ["run"]


def run(node: str, path: str, *, rotate: bool, as_json: bool) -> int:
    fabric = load_fleet(path).desired.fabric if os.path.isdir(path) else None
    interface = fabric.interface if fabric is not None else DEFAULT_INTERFACE
    member = fabric.member(node) if fabric is not None else None
    try:
        public, key_path, made = wg.ensure_key(interface, rotate=rotate)
    except OSError as e:
        raise PermanentError(
            f"cannot write the fabric key in {os.path.dirname(wg.key_file(interface))}: "
            f"{e.strerror}; run as the node's tva user (or root)") from None
    committed = member.public_key if member is not None else None
    if as_json:
        emit_json({"node": node, "interface": interface, "public_key": public,
                   "key_file": key_path, "made": made, "rotation": rotate,
                   "committed": committed, "matches": committed == public})
        return 0
    out.print(public)
    note = "made a new private key" if made else "kept the private key"
    err.print(f"{note} in {key_path} (it never leaves this node)")
    if committed == public:
        err.print(f"fabric.yaml already has this key for {node}")
    elif member is None:
        err.print(f"commit it as public_key of a member with device: {node} in fabric.yaml")
    else:
        err.print(f"commit it as {node}'s public_key in fabric.yaml"
                  + ("; the node switches to it when the commit arrives" if rotate else ""))
    return 0
