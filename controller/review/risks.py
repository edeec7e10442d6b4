"""Risk flags: the parts of a change a reviewer must not miss (docs/review.md#risk-flags).

Each flag is computed from the full data and carries its own totals; a rendering may shorten
its ``details`` but never recounts. Every flag is about what the change *adds*: a removal
BASE already plans, or a private item BASE already exposes, is not this change's risk.

- ``data-removal`` (danger): HEAD's plan removes copies that BASE's does not.
- ``below-floor`` (danger when some item cannot reach its floor, else warning): items that
  fall below a custody floor (a floor raised, a holder removed, placement narrowed), or that
  the plan can no longer bring back to it.
- ``capacity`` (warning): a device whose planned pins exceed its free space beyond the
  reserve, or would hold more than its declared capacity; new ``capacity-short`` warnings.
- ``f2f-exposed`` (danger): an f2f_only item newly reachable by the public_swarm_face: the
  face moves to a node that holds it, it gets pinned there, or it stops being f2f_only.
- ``face-at-home`` (danger): the public_swarm_face moves to a home device (any class but
  ``seedbox``): that device joins public swarms for the fleet, from its own address, with
  only its VPN in between.
- ``suspend-on`` (warning): ``policy.suspend`` switched on: controllers stop applying.
- ``prune-on`` (warning): pruning switched on, fleet-wide or for a custody rule.
"""

from __future__ import annotations

from controller.planner import FleetView
from controller.review.model import CapacityRow, FloorRow, Risk, RiskCode, RiskLevel
from schemas.desired import DesiredState, DeviceClass
from schemas.plan import Action, ActionKind, Plan, PlanWarning
from schemas.types import format_size

__all__ = [
    "PIN_KINDS",
    "REMOVAL_KINDS",
    "capacity_risk",
    "f2f_risk",
    "face_risk",
    "floor_risk",
    "item_label",
    "prune_risk",
    "removal_risk",
    "suspend_risk",
]

PIN_KINDS = frozenset({ActionKind.add, ActionKind.pin})
"""A copy made: the planner pins with ``add`` (docs/plan-format.md)."""
REMOVAL_KINDS = frozenset({ActionKind.remove_data, ActionKind.remove_torrent, ActionKind.unpin})


def item_label(desired: DesiredState | None, key: str, fallback: str | None = None) -> str:
    it = desired.items.get(key) if desired is not None else None
    name = it.name if it is not None else (fallback or key)
    return f"{name} ({key[:8]})"


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def _nodes(names: list[str]) -> str:
    return ", ".join(sorted(set(names)))


def removal_risk(removals: list[Action], head: DesiredState) -> Risk | None:
    if not removals:
        return None
    size = sum(a.bytes or 0 for a in removals)
    details = [f"{a.node}: {a.kind.value} {item_label(head, a.target)}"
               + (f", {format_size(a.bytes)}" if a.bytes else "") + f" - {a.reason}"
               for a in removals]
    return Risk(
        code=RiskCode.data_removal, level=RiskLevel.danger, title="Data removal",
        summary=f"{_plural(len(removals), 'copy', 'copies')} ({format_size(size)}) would be "
        f"deleted on {_nodes([a.node for a in removals])}",
        count=len(removals), details=details,
    )


def floor_risk(floors: list[FloorRow]) -> Risk | None:
    if not floors:
        return None
    stuck = [f for f in floors if not f.reachable]
    fixed = len(floors) - len(stuck)
    verb = "falls" if len(floors) == 1 else "fall"
    summary = f"{_plural(len(floors), 'item')} {verb} below a custody floor or cannot reach it"
    parts = []
    if fixed:
        parts.append(f"{fixed:,} {'gets' if fixed == 1 else 'get'} the missing copies from the "
                     "plan")
    if stuck:
        parts.append(f"{len(stuck):,} cannot reach the floor (no eligible custodian is live or "
                     "has room)")
    details = []
    for f in floors:
        line = f"{f.name} ({f.key[:8]}): {f.rule} needs {f.min}, holds {f.copies}"
        line += (f", {f.after} after the planned copies" if f.after != f.copies else "")
        if not f.reachable:
            line += f" - short by {f.min - f.after}"
        details.append(line)
    return Risk(
        code=RiskCode.below_floor, level=RiskLevel.danger if stuck else RiskLevel.warning,
        title="Below floor", summary=summary + ("; " + "; ".join(parts) if parts else ""),
        count=len(floors), details=details,
    )


def capacity_risk(rows: list[CapacityRow], short: list[PlanWarning]) -> Risk | None:
    over = [r for r in rows if r.new]
    if not over and not short:
        return None
    details = []
    for r in over:
        if r.over_free and r.free is not None:
            details.append(
                f"{r.node}: {format_size(r.incoming - r.outgoing)} to add, "
                f"{format_size(max(r.free - r.reserve, 0))} free beyond the "
                f"{format_size(r.reserve)} reserve")
        if r.over_capacity:
            details.append(
                f"{r.node}: would hold {format_size(r.held + r.incoming - r.outgoing)}, over its "
                f"declared capacity of {format_size(r.capacity)}")
    details += [w.message for w in short]
    parts = []
    if over:
        parts.append(f"{_plural(len(over), 'device')} overcommitted ({_nodes([r.node for r in over])})")
    if short:
        parts.append(f"{_plural(len(short), 'rule or watchlist', 'rules or watchlists')} short "
                     "of room for their copies")
    return Risk(code=RiskCode.capacity, level=RiskLevel.warning, title="Capacity overcommit",
                summary="; ".join(parts), count=len(over) + len(short), details=details)


def _exposed(
    desired: DesiredState, face: str | None, view: FleetView, projected: Plan, *,
    private: dict[str, str], face_moved: bool,
) -> dict[str, str]:
    held: set[str] = set()
    if face is not None:
        nv = view.nodes.get(face)
        if nv is not None and nv.status is not None and nv.status.transmission.reachable:
            held = {t.infohash.lower() for t in nv.status.transmission.torrents}
    pinned = {a.target for a in projected.actions if a.kind in PIN_KINDS and a.node == face}
    out: dict[str, str] = {}
    for key, name in private.items():
        it = desired.items.get(key)
        if it is None:
            continue
        label = f"{name} ({key[:8]})"
        role = f"{face}, which becomes the public_swarm_face" if face_moved else \
            f"{face}, the public_swarm_face"
        if not it.f2f_only:
            out[key] = (f"{label}: no longer f2f_only (provenance {it.provenance.value}): it may "
                        "be placed on the public_swarm_face and announced publicly")
        elif key in held:
            out[key] = f"{label}: held on {role}"
        elif key in pinned:
            out[key] = f"{label}: pinned to {role}"
    return out


def f2f_risk(
    base: tuple[DesiredState, str | None, FleetView, Plan] | None,
    head: tuple[DesiredState, str | None, FleetView, Plan],
) -> Risk | None:
    """f2f_only items (in BASE or HEAD) newly reachable by the public_swarm_face.

    Each side is (desired state, its public_swarm_face, its fleet view, its projected plan).
    """
    desired, face, view, projected = head
    private = {k: it.name for k, it in desired.items.items() if it.f2f_only}
    if base is not None:
        private.update({k: it.name for k, it in base[0].items.items() if it.f2f_only})
    if not private:
        return None
    moved = base is not None and base[1] != face
    now = _exposed(desired, face, view, projected, private=private, face_moved=moved)
    # What BASE already exposes (over the same statuses) is not this change's doing.
    before = (set(_exposed(*base, private=private, face_moved=False)) if base is not None
              else set())
    new = [now[k] for k in sorted(now, key=lambda k: (private[k], k)) if k not in before]
    if not new:
        return None
    where = f" ({face})" if face else ""
    return Risk(
        code=RiskCode.f2f_exposed, level=RiskLevel.danger, title="Private items exposed",
        summary=f"{_plural(len(new), 'f2f_only item')} newly reachable by the "
        f"public_swarm_face{where}",
        count=len(new), details=new,
    )


def face_risk(base_face: str | None, head: DesiredState, head_face: str | None) -> Risk | None:
    """The public_swarm_face moves (from ``base_face``) to a device that is not a seedbox."""
    if head_face is None or head_face == base_face:
        return None
    dev = head.devices.get(head_face)
    if dev is None or dev.device_class is DeviceClass.seedbox:
        return None
    was = f" (was {base_face})" if base_face else ""
    behind = (f"behind VPN profile {dev.vpn} only (public torrents stop while it is down, when "
              "its kill switch is on)" if dev.vpn else "with no VPN")
    return Risk(
        code=RiskCode.face_at_home, level=RiskLevel.danger, title="Public face at home",
        summary=f"the public_swarm_face moves to {head_face}{was}, a {dev.device_class.value}, "
        "not a seedbox: it joins public swarms for the whole fleet from its own address",
        count=1,
        details=[f"{head_face} ({dev.device_class.value}) fetches every public item the fleet "
                 f"needs from the public swarm, {behind}"],
    )


def suspend_risk(base: DesiredState | None, head: DesiredState) -> Risk | None:
    was = base.fleet.policy.suspend if base is not None else False
    if was or not head.fleet.policy.suspend:
        return None
    return Risk(code=RiskCode.suspend_on, level=RiskLevel.warning, title="Suspend switched on",
                summary="policy.suspend: controllers will observe and plan, but apply nothing "
                "(no pins, no repairs, no VPN kill switch)", count=1)


def _prunes(desired: DesiredState) -> dict[str, bool]:
    default = desired.fleet.policy.custody.prune
    return {name: (r.prune if r.prune is not None else default)
            for name, r in desired.custody.items()}


def prune_risk(base: DesiredState | None, head: DesiredState, removals: list[Action]) -> Risk | None:
    before = _prunes(base) if base is not None else {}
    default_on = head.fleet.policy.custody.prune and not (
        base is not None and base.fleet.policy.custody.prune)
    # A rule without a max has nothing to prune: switching pruning on for it changes nothing.
    rules = sorted(n for n, on in _prunes(head).items()
                   if on and not before.get(n, False) and head.custody[n].max is not None)
    if not rules and not default_on:
        return None
    pruned = [a for a in removals if a.rule is not None and a.rule.startswith("custody/")]
    details = []
    if default_on:
        details.append("policy.custody.prune switched on: rules that do not say prune now "
                       "remove copies above their max")
    for name in rules:
        n = sum(1 for a in pruned if a.rule == f"custody/{name}")
        details.append(f"custody/{name}: prunes copies above max {head.custody[name].max}")
        if n:
            details[-1] += f"; {_plural(n, 'copy', 'copies')} removed by this plan"
    what = f"{_plural(len(rules), 'custody rule')} now prune{'s' if len(rules) == 1 else ''}"
    if default_on:
        what = "policy.custody.prune switched on; " + what
    size = sum(a.bytes or 0 for a in pruned)
    if pruned:
        what += f"; {_plural(len(pruned), 'copy', 'copies')} ({format_size(size)}) pruned now"
    return Risk(code=RiskCode.prune_on, level=RiskLevel.warning, title="Prune switched on",
                summary=what, count=max(len(rules), 1), details=details)
