"""Bring up several real nodes: a transmission-daemon and a tva controller each, one git repo.

Meant to run inside a private network namespace (``netns.run_isolated``), where each node has
its own address on ``lo``; the controllers run in this process (threads), or each in a child
process of its own with ``processes=True`` (``controller.lab.process``: benchmarks, where
controllers sharing one interpreter lock would skew speeds); the Transmission daemons run as
child processes. ``Lab`` is a context manager: everything stops on exit.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from controller.act.metainfo import fleet_only_metainfo
from controller.announce import base_url, with_token
from controller.daemon.daemon import Daemon, DaemonConfig
from controller.daemon.node import PassOutcome
from controller.lab.fleet import LabRepo, Payload, device_yaml, fleet_yaml
from controller.lab.process import ControllerProcess
from controller.lab.transmission import TRANSMISSION_3, TransmissionDaemon, free_port
from controller.waiting import wait_for

__all__ = [
    "TOKEN_ENV",
    "Lab",
    "LabNode",
    "NodeSpec",
    "wait",
]

T = TypeVar("T")

TOKEN_ENV = "TVA_LAB_API_TOKEN"


@dataclass
class NodeSpec:
    name: str
    cls: str
    labels: list[str] = field(default_factory=list)
    transmission: str = TRANSMISSION_3
    """The node's Transmission version (``controller.lab.transmission.VERSIONS``)."""


@dataclass
class LabNode:
    spec: NodeSpec
    ip: str
    root: Path
    transmission: TransmissionDaemon = field(init=False)
    api_port: int = field(init=False)
    processes: bool = False
    """Run the controller in a child process (``process``) rather than a thread (``daemon``)."""
    daemon: Daemon | None = field(default=None, init=False)
    notify_endpoints: dict[str, str] = field(default_factory=dict)
    """Notification services' endpoints replaced by the lab's own (a local Discord)."""
    process: ControllerProcess | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.transmission = TransmissionDaemon(root=self.root / "transmission", bind_ip=self.ip,
                                               version=self.spec.transmission)
        self.api_port = free_port(self.ip)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def up(self) -> bool:
        return (self.daemon is not None or self.process is not None) and self.transmission.running

    @property
    def passes(self) -> int:
        """Passes the controller has made (0 when it is not running)."""
        if self.process is not None:
            return self.process.passes
        return self.daemon.passes if self.daemon is not None else 0

    @property
    def token(self) -> str:
        """The controller's tracker token."""
        if self.process is not None:
            return self.process.token
        assert self.daemon is not None, f"{self.name} is not running"
        return self.daemon.runtime.token

    def device_yaml(self) -> str:
        return device_yaml(
            self.name, self.spec.cls, ip=self.ip, rpc_port=self.transmission.rpc_port,
            api_port=self.api_port, peer_port=self.transmission.peer_port,
            download_dir=self.transmission.download_dir, labels=self.spec.labels,
        )

    def start(self, remote: Path) -> None:
        self.transmission.start()
        config = DaemonConfig(
            node=self.name, repo=str(remote), state_dir=str(self.root / "state"),
            host_player=False, poll=1.0, notify_endpoints=dict(self.notify_endpoints),
            notify_backoff=(0.5, 5.0),
        )
        if self.processes:
            self.process = ControllerProcess(config)
            self.process.start()
            return
        self.daemon = Daemon(config)
        self.daemon.start()

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None
        if self.process is not None:
            self.process.stop()
            self.process = None
        self.transmission.stop()

    def torrents(self) -> dict[str, dict[str, Any]]:
        """What this node's Transmission holds now: info-hash -> fields (empty when down)."""
        if not self.transmission.running:
            return {}
        client = self.transmission.client()
        out: dict[str, dict[str, Any]] = {}
        for t in client.get_torrents(arguments=["hashString", "percentDone", "error", "trackers",
                                                "labels", "status", "downloadedEver"]):
            out[t.hash_string] = dict(t.fields)
        return out


class Lab:
    """Nodes on 10.77.0.1, .2, ... (inside the namespace), sharing one fleet repo."""

    def __init__(self, root: Path, specs: list[NodeSpec], *, stale_after: str = "8s",
                 grace: str = "20s", settle: str = "5s", base_ip: str = "10.77.0.",
                 notify_endpoints: dict[str, str] | None = None, processes: bool = False) -> None:
        self.root = root
        self.repo = LabRepo(root / "repo")
        self.nodes = {
            s.name: LabNode(s, f"{base_ip}{i + 1}", root / "nodes" / s.name, processes,
                            notify_endpoints=dict(notify_endpoints or {}))
            for i, s in enumerate(specs)
        }
        self.policy = {"stale_after": stale_after, "grace": grace, "settle": settle}
        os.environ.setdefault(TOKEN_ENV, secrets.token_hex(16))

    @staticmethod
    def addresses(count: int, base_ip: str = "10.77.0.") -> list[str]:
        return [f"{base_ip}{i + 1}" for i in range(count)]

    def base_files(self) -> dict[str, str | None]:
        files: dict[str, str | None] = {"fleet.yaml": fleet_yaml(**self.policy)}
        for node in self.nodes.values():
            files[f"devices/{node.name}.yaml"] = node.device_yaml()
        return files

    def start(self, *names: str) -> None:
        for name in names or tuple(self.nodes):
            self.nodes[name].start(self.repo.remote)

    def stop(self, *names: str) -> None:
        for name in names or tuple(self.nodes):
            self.nodes[name].stop()

    def record_plans(self) -> dict[str, list[str]]:
        """Every action the running controllers plan from now on, by id: its reasons, one per
        pass that planned it (for stories that assert why). Controllers in threads only; a node
        started again later is not followed."""
        planned: dict[str, list[str]] = {}

        def record(outcome: PassOutcome) -> None:
            for a in outcome.plan.actions:
                planned.setdefault(a.id, []).append(a.reason)

        for node in self.nodes.values():
            assert node.daemon is not None, f"{node.name}'s controller is not a thread of the lab"
            node.daemon.listeners.append(record)
        return planned

    def seed(self, node: str, payload: Payload, labels: tuple[str, ...] = ("tva",), *,
             fleet_only: bool = False) -> None:
        """Give ``node`` a complete copy by hand: the data in place, the torrent added, verified,
        announcing to the node's own controller as the torrents tva adds do (and, for a
        ``fleet_only`` item, to nothing else, as tva adds them)."""
        n = self.nodes[node]
        shutil.copy(payload.data, n.transmission.download_dir / payload.name)
        client = n.transmission.client()
        announce = with_token(base_url(f"http://{n.ip}:{n.api_port}"), n.token)
        metainfo = (self.repo.checkout / payload.torrent_rel).read_bytes()
        if fleet_only:
            metainfo = fleet_only_metainfo(metainfo, announce)
        client.add_torrent(metainfo, download_dir=str(n.transmission.download_dir))
        client.change_torrent([payload.infohash], labels=list(labels))
        # The node's controller may see the torrent and add its tracker first (Transmission 3.00
        # then refuses the same URL again with "invalid argument").
        if not fleet_only and announce not in self._trackers(node, payload.infohash):
            try:
                client.change_torrent([payload.infohash], tracker_add=[announce])
            except Exception:
                if announce not in self._trackers(node, payload.infohash):
                    raise
        wait(lambda: self.percent(node, payload.infohash) == 1.0, max(60, payload.size / (10 << 20)),
             f"{node} to verify {payload.name}")

    def _trackers(self, node: str, infohash: str) -> list[str]:
        t = self.nodes[node].torrents().get(infohash) or {}
        return [str(tr["announce"]) for tr in t.get("trackers") or []]

    def percent(self, node: str, infohash: str) -> float | None:
        t = self.nodes[node].torrents().get(infohash)
        return None if t is None else float(t["percentDone"])

    def holders(self, infohash: str, *, complete: bool = True) -> list[str]:
        out = []
        for name, node in self.nodes.items():
            p = self.percent(name, infohash) if node.transmission.running else None
            if p is not None and (p == 1.0 or not complete):
                out.append(name)
        return sorted(out)

    def wait_settled(self, copies: dict[str, set[str]], timeout: float = 120) -> None:
        """Wait until every controller (threads of the lab) has planned with every node's
        Transmission seen reachable, its session set (DHT, PEX and LPD off, as the fleet's
        policy says) and the ``copies`` (node -> info-hashes) complete.

        A story raises floors only then: otherwise the copy goes past a node whose daemon is
        still starting (a chrooted 4.1 can take a few passes to answer) or whose session is not
        set yet (the leak gate), or to the face to fetch from the public swarm, or in without
        a holder's web seed, because no fleet copy was seen yet."""

        def settled(n: LabNode) -> bool:
            last = n.daemon.last if n.daemon else None
            if last is None:
                return False
            views = last.view.nodes
            for v in views.values():
                st = v.status
                if st is None or not st.transmission.reachable or st.transmission.session is None \
                        or st.transmission.session.leaks:
                    return False
            for holder, keys in copies.items():
                status = views[holder].status
                if status is None or not keys <= {t.infohash for t in status.transmission.torrents
                                                  if t.complete}:
                    return False
            return True

        wait(lambda: all(settled(n) for n in self.nodes.values()), timeout,
             "every node to see every Transmission reachable, its session set and the copies "
             f"of {', '.join(sorted(copies))} complete")

    def describe(self) -> str:
        """Every node's holdings and last plan, in words (for failures and the demo's -v)."""
        lines = []
        for name, node in self.nodes.items():
            lines.append(f"{name} ({node.ip}, Transmission {node.spec.transmission}): "
                         f"{'up' if node.up else 'down'}")
            for ih, t in node.torrents().items():
                lines.append(f"  holds {ih[:8]} {float(t['percentDone']):.0%} status={t['status']} "
                             f"error={t['error']} trackers={[x['announce'] for x in t['trackers']]}")
            last = node.daemon.last if node.daemon else None
            if node.daemon and node.daemon.last_error:
                lines.append(f"  last error: {node.daemon.last_error}")
            if last is not None:
                for a in last.plan.actions:
                    lines.append(f"  plans {a.id}: {a.reason}")
                for w in last.plan.warnings:
                    lines.append(f"  warns {w.code}: {w.message}")
                for n, v in last.view.nodes.items():
                    lines.append(f"  sees {n} {v.freshness.value}")
        return "\n".join(lines)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def wait(predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll until ``predicate()`` is truthy; its value. ``TimeoutError`` naming ``what`` otherwise."""
    return wait_for(predicate, timeout, interval, what)
