"""Bring this node's end of the fleet fabric to the desired state, every pass, idempotently.

The fabric is the network under the loop (statuses, the tracker and re-pins run over it), so it
is reconciled at the start of each pass rather than planned as actions: render the node's
configuration (``schemas.fabric.render``), probe for collisions, then ask the privileged link
to create the interface and ``wg syncconf`` it only when something differs: this process itself
(``[tunnels] via = "direct"``) or the root helper (``controller.act.fabric_link``). ``wg syncconf``
adds, changes and removes peers without touching the sessions of unchanged ones.

The outcome is one condition, ``FabricReady``: True when the interface runs the committed
configuration; False with the reason otherwise. A collision, a missing or mismatched key change
nothing on the node.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

from controller.act.fabric_link import default_link
from controller.clients import wireguard as wg
from controller.errors import TvaError
from schemas.desired import DesiredState
from schemas.fabric import (
    DEFAULT_INTERFACE,
    EndpointChoice,
    Fabric,
    WgConfig,
    collisions,
    failover,
    render,
)
from schemas.fabric_spool import FabricSpool
from schemas.observed import Condition, ConditionStatus

__all__ = ["CONDITION", "FabricActuator"]

CONDITION = "FabricReady"

log = logging.getLogger("tva.fabric")


def _condition(ok: bool, reason: str, message: str, now: datetime) -> Condition:
    return Condition(type=CONDITION, status=ConditionStatus.true if ok else ConditionStatus.false,
                     reason=reason, message=message, since=now)


class FabricActuator:
    """One node's fabric reconciler. ``link`` does the privileged work (``wg.FabricLink``)."""

    def __init__(self, node: str, link: wg.FabricLink | None = None) -> None:
        self.node = node
        self.link: wg.FabricLink | None = link
        """None: chosen at first use from node.toml's ``[tunnels] via`` (``fabric_link``)."""
        self._synced: str | None = None
        """Digest of the configuration last synced (with the key), to skip unchanged passes."""
        self._interface = DEFAULT_INTERFACE
        """The fabric interface this node last ran (removed when it leaves the fabric)."""
        self._choice = EndpointChoice(index={}, since={})
        """Which endpoint of each member this node dials (``schemas.fabric.failover``)."""

    def reconcile(self, desired: DesiredState, now: datetime) -> Condition | None:
        """Make the node's fabric interface match ``desired``; None when it is not a member."""
        fabric = desired.fabric
        member = fabric.member(self.node) if fabric is not None else None
        if fabric is None or member is None:
            self._leave(now)
            return None
        if self._synced is not None and self._interface != fabric.interface:
            self._leave(now)  # the fabric's interface was renamed: drop the old one
        self._interface = fabric.interface
        try:
            self._choose_endpoints(fabric, now)
            config = render(fabric, self.node, self._choice.index)
            assert config is not None  # a member
            return self._reconcile(fabric.subnet, config, member.public_key, now)
        except (TvaError, ValueError, OSError) as e:
            log.warning("fabric: %s", e, extra={"event": "fabric-failed"})
            return _condition(False, "ApplyFailed", str(e), now)

    def _reconcile(self, subnets: list[str], config: WgConfig, committed: str,
                   now: datetime) -> Condition:
        addresses, routes = wg.host_networks()
        found = collisions(subnets, addresses, routes, config.interface)
        if found:
            return _condition(False, "SubnetCollision", found[0].message(), now)
        key = self._key(config.interface, committed)
        if key is None:
            return _condition(
                False, "KeyMismatch",
                f"this node has no private key for the public key committed for {self.node}; "
                f"run `tva fabric keys {self.node}` on it and commit the key it prints; "
                "nothing was changed", now)
        text = config.text(key)
        digest = hashlib.sha256(f"{config.forwarding}\n{text}".encode()).hexdigest()
        have = {a for a, dev in addresses if dev == config.interface and not a.startswith("fe80:")}
        dump = self._link().show(config.interface)
        if (dump is None or have != set(config.addresses) or digest != self._synced
                or not _matches(dump, config)):
            self._link().apply(FabricSpool.of(subnets, config), key)
            self._synced = digest
            log.info("fabric: %s synced (%d peers)", config.interface, len(config.peers),
                     extra={"event": "fabric-synced"})
        return _condition(True, "Synced",
                          f"{config.interface} {', '.join(config.addresses)} with "
                          f"{len(config.peers)} peers", now)

    def _choose_endpoints(self, fabric: Fabric, now: datetime) -> None:
        """Move on to a member's next endpoint when the current one gives no handshake."""
        if not any(len(m.endpoints) > 1 for m in fabric.members):
            return
        dump = self._link().show(fabric.interface)
        by_key = {m.public_key: m.device for m in fabric.members}
        handshakes = {by_key[p.public_key]: p.latest_handshake
                      for p in (dump.peers if dump else ()) if p.public_key in by_key}
        self._choice = failover(fabric, self.node, handshakes, self._choice, now)

    def _leave(self, now: datetime) -> None:
        """Not a member any more: remove the fabric interface this process brought up. Only
        that one: an interface found at start is left alone (it may be another's)."""
        if self._synced is None:
            return
        try:
            if self._link().show(self._interface) is None:
                return
            self._link().down(self._interface)
        except (TvaError, OSError) as e:
            log.warning("fabric: cannot remove %s: %s", self._interface, e,
                        extra={"event": "fabric-failed"})
            return
        self._synced = None
        log.info("fabric: %s removed, this node is not on the fabric", self._interface,
                 extra={"event": "fabric-left"})

    def _link(self) -> wg.FabricLink:
        if self.link is None:
            self.link = default_link()
        return self.link

    def _key(self, interface: str, committed: str) -> str | None:
        """The private key whose public key is committed: the current one, or the upcoming
        one of a rotation (which then becomes current). None when neither matches."""
        upcoming = wg.read_key(wg.key_file(interface, upcoming=True))
        if upcoming is not None and wg.pubkey(upcoming) == committed:
            wg.promote_key(interface)
            return upcoming
        current = wg.read_key(wg.key_file(interface))
        if current is not None and wg.pubkey(current) == committed:
            return current
        return None


def _matches(dump: wg.WgDump | None, config: WgConfig) -> bool:
    """Does the running interface hold the configuration's peers (keys and AllowedIPs)?"""
    if dump is None or dump.listen_port != config.listen_port:
        return False
    have = {p.public_key: p.allowed_ips for p in dump.peers}
    want = {p.public_key: tuple(sorted(p.allowed_ips)) for p in config.peers}
    return have == want
