"""``tva notify test [TARGET]``: send a test message to one notification target, or to all.

Runs on the machine it is called on, with that machine's node configuration and environment,
so it answers the question an operator has after setting a target up: does this node's
reference resolve, does its egress policy allow the service, does the service accept the
message. Exit 0 when every message was accepted, 1 otherwise (each target's reason shown).
"""

from __future__ import annotations

import socket

from controller.cli.output import emit_json, err, out
from controller.clients.notify import NotifyClient
from controller.desired import load_fleet
from controller.errors import PermanentError, TvaError

__all__ = ["run"]


def run(path: str, target: str | None, *, as_json: bool) -> int:
    desired = load_fleet(path).desired
    targets = desired.fleet.notify.targets
    if not targets:
        raise PermanentError("the fleet declares no notification target (notify.targets in "
                             "fleet.yaml; see docs/notifications.md)")
    if target is not None:
        targets = [t for t in targets if t.name == target]
        if not targets:
            known = ", ".join(t.name for t in desired.fleet.notify.targets)
            raise PermanentError(f"unknown notification target {target!r}; targets: {known}")
    client = NotifyClient()
    host = socket.gethostname()
    results: list[dict[str, str | bool]] = []
    for t in targets:
        try:
            client.send(t, f"tva {desired.fleet.name}: test",
                        f"A test message from tva on {host}: notifications reach {t.name}.")
        except TvaError as e:
            results.append({"target": t.name, "sent": False, "error": str(e)})
        else:
            results.append({"target": t.name, "sent": True, "error": ""})
    if as_json:
        emit_json({"results": results})
    else:
        for r in results:
            if r["sent"]:
                out.print(f"sent a test message to {r['target']}", markup=False)
            else:
                err.print(f"{r['target']}: {r['error']}", markup=False, style="red")
    return 0 if all(r["sent"] for r in results) else 1
