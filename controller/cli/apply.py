"""``tva apply [PATH] --node NAME``: one pass by hand — observe, plan, show, apply.

PATH is a fleet repo directory as it is on disk (uncommitted changes included, like
``terraform apply`` on a working directory). Destructive actions are listed and confirmed
first unless ``--yes``. Exit codes as ``tva plan``: 0 nothing to do, 2 changes were applied,
1 error (including any action that failed).
"""

from __future__ import annotations

import os
import sys

from rich.prompt import Confirm

from controller.cli.output import emit_json, err, esc, out
from controller.daemon.node import NodeRuntime
from controller.desired import load_fleet
from controller.desired.checks import MAX_TORRENT_BYTES
from controller.errors import PermanentError
from controller.status import open_transport
from schemas.journal import Outcome
from schemas.plan import Action

__all__ = ["run"]


def _read_in_repo(root: str, rel: str) -> bytes | None:
    """A committed .torrent of the fleet repo on disk; None when it is not there or escapes it."""
    base = os.path.realpath(root)
    target = os.path.realpath(os.path.join(base, rel))
    if not target.startswith(base + os.sep) or not os.path.isfile(target):
        return None
    with open(target, "rb") as f:
        data = f.read(MAX_TORRENT_BYTES + 1)
    return data if len(data) <= MAX_TORRENT_BYTES else None


def run(path: str, *, node: str, state_dir: str, status_dir: str | None, yes: bool,
        as_json: bool, player_socket: str | None) -> int:
    desired = load_fleet(path).desired
    if node not in desired.devices:
        raise PermanentError(f"unknown node {node!r}; devices: {', '.join(desired.devices)}")
    runtime = NodeRuntime(node, state_dir, player_socket=player_socket)
    runtime.metainfo_reader = lambda rel: _read_in_repo(path, rel)
    is_checkout = os.path.isdir(os.path.join(path, ".git"))
    transport = open_transport(status_dir=status_dir, checkout=path if is_checkout else None,
                               policy=desired.fleet.status)
    try:
        outcome = runtime.run_pass(desired, transport, apply=False)
    finally:
        if transport is not None:
            transport.close()
    plan = outcome.plan
    if not plan.actions:
        if as_json:
            emit_json({"plan": plan.model_dump(mode="json"), "applied": []})
        else:
            out.print(f"{node}: nothing to do")
        return 0
    destructive = [a for a in plan.actions if a.destructive]
    if not as_json:
        for a in plan.actions:
            mark = "[red]-[/red]" if a.destructive else "[green]+[/green]"
            out.print(f"{mark} {a.kind.value} {esc(a.target[:12])}: ", end="", markup=True)
            out.print(a.reason, markup=False)
    allow_destructive = yes
    if destructive and not yes:
        if not sys.stdin.isatty():
            err.print(f"{len(destructive)} destructive action(s) held back: run again with --yes to apply them")
        else:
            allow_destructive = Confirm.ask(f"Apply {len(destructive)} destructive action(s)?", default=False)
    if desired.fleet.policy.suspend:
        err.print("policy.suspend is set: nothing applied")
        return 2

    def select(a: Action) -> bool:
        return allow_destructive or not a.destructive

    report = runtime.applier(desired).apply(plan, select=select)
    runtime.close()
    if as_json:
        emit_json({
            "plan": plan.model_dump(mode="json"),
            "applied": [
                {"id": a.action.id, "outcome": a.outcome.value, "result": a.result, "error": a.error}
                for a in report.applied
            ],
        })
    else:
        for done in report.applied:
            colour = {"ok": "green", "failed": "red", "skipped": "yellow"}[done.outcome.value]
            out.print(f"[{colour}]{done.outcome.value}[/{colour}] {esc(done.action.id)} ", end="",
                      markup=True)
            out.print(done.error or done.result, markup=False)
    if any(done.outcome is Outcome.failed for done in report.applied):
        return 1
    return 2
