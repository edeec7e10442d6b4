"""One look at one node: Transmission, the host and the player, joined into a ``NodeStatus``.

Used by ``tva status --node``, ``tva apply`` and every pass of ``tva run``; the daemon keeps the
``TransmissionObserver`` between passes so that its passes can be incremental.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from controller import __version__
from controller.clients.transmission import TransmissionClient
from controller.observe.fabric import observe_fabric
from controller.observe.host import observe_host
from controller.observe.player import observe_player
from controller.observe.transmission import Observation, TransmissionObserver, unreachable
from schemas.desired import DesiredState, Device
from schemas.observed import (
    Condition,
    NodeStatus,
    PlayerStatus,
    StorageStatus,
    TorrentStatus,
    TransmissionStatus,
)

__all__ = ["NodeObservation", "attribute", "observe_node", "transmission_observer"]


def transmission_observer(device: Device) -> TransmissionObserver | None:
    """An observer for the device's Transmission, credentials resolved now; None if it has none."""
    client = TransmissionClient.for_device(device)
    return TransmissionObserver(client) if client is not None else None


@dataclass(frozen=True)
class NodeObservation:
    status: NodeStatus
    transmission: Observation | None
    """The Transmission pass, with what changed (None when the device runs no Transmission)."""


def observe_node(
    desired: DesiredState,
    node: str,
    *,
    now: datetime,
    observer: TransmissionObserver | None,
    previous: TransmissionStatus | None = None,
    player_socket: str | None = None,
    watched: Iterable[str] = (),
    revision: str | None = None,
    conditions: Sequence[Condition] = (),
    duties: Sequence[str] = (),
) -> NodeObservation:
    """Observe ``node`` now. ``previous`` (the last status from ``observer``) makes it incremental.

    ``watched`` are info-hashes the node's player finished (kept by the daemon across passes).
    """
    device = desired.devices[node]
    obs: Observation | None = None
    if observer is None:
        tr = TransmissionStatus(reachable=False, error="this device runs no Transmission")
    else:
        try:
            obs = observer.incremental(previous) if previous is not None else observer.observe_full()
        except Exception as e:  # AuthError and friends: publish why, never "holds nothing"
            obs = Observation(status=unreachable(e))
        tr = obs.status
    host = observe_host(device, desired.vpn)
    storage = _storage(host.storage, observer, device)
    player: PlayerStatus | None = None
    if device.player is not None and player_socket is not None:
        player = observe_player(player_socket, list(device.player.options))
        player = player.model_copy(
            update={
                "infohash": attribute(player.path, tr.torrents) if tr.reachable else None,
                "watched": sorted(set(watched)),
            }
        )
    status = NodeStatus(
        node=node,
        observed_at=now,
        controller_version=__version__,
        desired_revision=revision,
        always_on=device.always_on,
        on_ac_power=host.on_ac_power,
        transmission=tr,
        storage=storage,
        player=player,
        vpn=host.vpn,
        fabric=observe_fabric(desired, node, now),
        duties=sorted(duties),
        conditions=list(conditions),
    )
    return NodeObservation(status=status, transmission=obs)


def _storage(
    local: list[StorageStatus], observer: TransmissionObserver | None, device: Device
) -> list[StorageStatus]:
    """Local statvfs where the root is on this machine; else ask Transmission's host."""
    missing = [s.path for s in local if not s.reachable]
    if not missing or observer is None:
        return local
    capacity = {r.path: r.capacity for r in device.storage}
    remote = {s.path: s for s in observer.free_space(missing, capacity)}
    return [remote.get(s.path, s) if not s.reachable else s for s in local]


def attribute(path: str | None, torrents: Sequence[TorrentStatus]) -> str | None:
    """The info-hash of the torrent whose data holds ``path`` (what the player has open)."""
    if not path:
        return None
    real = os.path.normpath(path)
    for t in torrents:
        if not t.download_dir:
            continue
        root = os.path.normpath(os.path.join(t.download_dir, t.name))
        if real == root or real.startswith(root + os.sep):
            return t.infohash
    return None
