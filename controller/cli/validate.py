"""``tva validate [PATH]``: check a fleet repo; exit 0 when valid, 1 when not."""

from __future__ import annotations

from rich.text import Text

from controller.cli.output import emit_json, err, out, print_problems
from controller.desired import load_fleet
from controller.display import safe
from controller.errors import ValidationFailed

__all__ = ["run"]


def run(path: str, as_json: bool) -> int:
    try:
        result = load_fleet(path)
    except ValidationFailed as e:
        if as_json:
            emit_json({"valid": False, "path": path, "problems": [p.to_json() for p in e.problems]})
        else:
            print_problems(e.problems)
            n = len(e.problems)
            # Text, not markup: the path is the user's and may hold '[' or a trailing '\\'.
            err.print(Text.assemble((f"{safe(path)}: invalid", "red"),
                                    f" ({n} problem{'s' if n != 1 else ''})"))
        return 1
    d = result.desired
    counts = {
        "devices": len(d.devices),
        "custody_rules": len(d.custody),
        "collections": len(d.collections),
        "items": len(d.items),
        "watchlists": len(d.watchlists),
        "vpn_profiles": len(d.vpn),
        "sources": len(d.sources),
        "fabric_members": len(d.fabric.members) if d.fabric is not None else 0,
    }
    if as_json:
        emit_json({"valid": True, "path": path, "files": result.files, "counts": counts,
                   "problems": [], "warnings": [w.to_json() for w in result.warnings]})
    else:
        for w in result.warnings:
            err.print(f"warning: {w}", markup=False, style="yellow")
        detail = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items())
        out.print(Text.assemble((f"{safe(path)}: valid", "green"),
                                f" ({len(result.files)} files: {detail})"))
    return 0
