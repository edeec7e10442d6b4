"""Benchmark: custody under a year of churn, driven by the real planner.

    .venv/bin/python bench/churn.py [--items 2000] [--days 365] [--grace 12h] [--seed 1]
                                    [--pass-every 2h] [--read-failures 0.02]

A deterministic (seeded) simulation of a 10-node fleet: two servers and a seedbox that are
always on, a desktop that sleeps nightly, three laptops that sleep nightly and go away for
weekends and holidays, two TV boxes that sleep a few hours a night, and a second server that
joins during the year. ``--items`` items of 1-20 GiB, half under a rule with min 2 / max 3 and
half under min 3 / max 4, prune on. During the year: network blips (a node cannot read the
fleet's statuses for a pass or a few), two disk deaths (the node is away for two days and comes
back empty), a decommission (the device leaves the fleet repo with its data) and a new node.

Each simulated pass (``--pass-every``, every two hours by default) every awake node publishes its status
and then plans for itself with ``controller.planner.plan`` (one call per node per pass, with the
statuses it could read and its own journal), exactly as the daemon does (``NodeController.
statuses``), and applies its own actions to the simulated state: an ``add`` starts a download
that completes after size / 50 MB/s while some awake node holds a complete copy (the node's
bandwidth is shared by its downloads; the disk fills as data arrives, and a download that would
overfill it fails with a local error), a ``remove-data`` deletes the copy; every action is
journalled as the daemon journals it.

It prints the figures of issue 17: items lost (while simultaneous permanent failures were below
/ at or above the floor), bytes moved against the minimum the real failures required, moves per
affected item per real failure, adds that no real failure required (split by cause: the planner
could not read the fleet, a holder was away for less than the grace, or longer), prunes,
item-hours below the floor and without a reachable complete copy, time to restore a floor after
a real failure (from when it could be known: the failure plus the grace for a disk death, at once
for a decommission) and the planner's CPU time per node-pass.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.desired import load_fleet
from controller.planner import plan

try:
    from controller.planner import with_verdicts
except ImportError:  # the code before issue 17, measured for the "before" figures
    with_verdicts = None  # type: ignore[assignment]
from controller.planner.hashing import hrw_order
from schemas.desired import DesiredState
from schemas.journal import JournalEntry, Outcome
from schemas.observed import (
    NodeStatus,
    StorageStatus,
    TorrentState,
    TorrentStatus,
    TransmissionStatus,
)
from schemas.plan import ActionKind, Plan
from schemas.types import parse_duration

__all__ = ["Sim", "main"]

GiB = 1 << 30
TiB = 1 << 40
RATE = 50_000_000
"""Bytes per second a node downloads at (shared by its downloads)."""
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class NodeSpec:
    name: str
    cls: str
    capacity: int
    always_on: bool
    presence: str = ""
    """A ``presence`` block for the device file (empty: none)."""


NODES = [
    NodeSpec("nas", "server", 40 * TiB, True),
    NodeSpec("vault", "server", 30 * TiB, True),
    NodeSpec("seedbox", "seedbox", 16 * TiB, True),
    NodeSpec("desk", "desktop", 20 * TiB, False),
    NodeSpec("lap-a", "laptop", 2 * TiB, False),
    NodeSpec("lap-b", "laptop", 2 * TiB, False),
    NodeSpec("lap-c", "laptop", 2 * TiB, False),
    NodeSpec("tv-a", "tv", 4 * TiB, False),
    NodeSpec("tv-b", "tv", 4 * TiB, False),
    NodeSpec("nas2", "server", 40 * TiB, True),
]
JOINS = {"nas2": 200}
"""Day a node joins the fleet repo (and starts running)."""
DECOMMISSION = {"vault": 220}
"""Day a node leaves the fleet repo, with its data."""
DISK_DEATHS = {"lap-b": 100, "tv-a": 160}
"""Day a node's disk dies: it is away for two days and comes back empty."""
REPAIR = timedelta(days=2)


def key(i: int) -> str:
    import hashlib

    return hashlib.sha1(f"churn-item-{i}".encode()).hexdigest()


def write_fleet(root: Path, specs: list[NodeSpec], n_items: int, sizes: list[int], grace: str,
                stale_after: str, fleet_extra: str, max_pins: int = 20) -> None:
    (root / "devices").mkdir(parents=True)
    (root / "items").mkdir()
    (root / "custody").mkdir()
    (root / "fleet.yaml").write_text(
        "apiVersion: tva/v1\nkind: Fleet\nname: churn\npolicy:\n"
        f"  freshness: {{stale_after: {stale_after}, grace: {grace}}}\n"
        f"  custody: {{prune: true, max_new_pins_per_node: {max_pins}, settle: 30m, "
        "reserve: 20GiB}\n"
        f"{fleet_extra}")
    for s in specs:
        (root / "devices" / f"{s.name}.yaml").write_text(
            f"apiVersion: tva/v1\nkind: Device\nname: {s.name}\nclass: {s.cls}\n"
            f"always_on: {str(s.always_on).lower()}\n{s.presence}"
            f"storage: [{{path: /srv/{s.name}, capacity: {s.capacity}}}]\n"
            f"addresses: {{controller_api: 'http://{s.name}.lan:8700', peer: '{s.name}.lan:51413'}}\n")
    for c, (lo, hi) in enumerate(((0, n_items // 2), (n_items // 2, n_items))):
        lines = [f"apiVersion: tva/v1\nkind: Collection\nname: c{c}\nprovenance: fleet\nitems:"]
        for i in range(lo, hi):
            lines.append(f"  - {{name: 'item {i}', infohash: {key(i)}, size: {sizes[i]}}}")
        (root / "items" / f"c{c}.yaml").write_text("\n".join(lines) + "\n")
    (root / "custody" / "two.yaml").write_text(
        "apiVersion: tva/v1\nkind: CustodyRule\nname: two\nselect: {collections: [c0]}\n"
        "min: 2\nmax: 3\n")
    (root / "custody" / "three.yaml").write_text(
        "apiVersion: tva/v1\nkind: CustodyRule\nname: three\nselect: {collections: [c1]}\n"
        "min: 3\nmax: 4\n")


# --- schedules -----------------------------------------------------------------------------


def absences(spec: NodeSpec, days: int, rng: random.Random) -> list[tuple[datetime, datetime]]:
    """When the node is asleep or away (sorted, non-overlapping enough for a lookup)."""
    out: list[tuple[datetime, datetime]] = []
    if spec.always_on:
        return out
    for d in range(days + 1):
        day = START + timedelta(days=d)
        if spec.cls in ("laptop", "desktop"):
            sleep = day + timedelta(hours=rng.choice((23, 24, 24, 25)))
            wake = sleep + timedelta(hours=rng.choice((7, 8, 9)))
            out.append((sleep, wake))
        elif spec.cls == "tv":
            sleep = day + timedelta(hours=25)
            out.append((sleep, sleep + timedelta(hours=6)))
        if spec.cls == "laptop" and day.weekday() == 4 and rng.random() < 0.5:
            out.append((day + timedelta(hours=19), day + timedelta(days=2, hours=18)))
    if spec.cls == "laptop":
        for _ in range(2):
            d = rng.randrange(10, max(11, days - 20))
            out.append((START + timedelta(days=d), START + timedelta(days=d + 10)))
    return merged(out)


def merged(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Overlapping spans joined: a night's sleep inside a weekend away is one absence."""
    out: list[tuple[datetime, datetime]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def blips(days: int, rng: random.Random, per_year: int) -> list[tuple[datetime, datetime]]:
    """Spells in which a node cannot read the fleet's statuses (a few hours at most)."""
    out = []
    for _ in range(max(1, per_year * days // 365)):
        at = START + timedelta(hours=rng.randrange(days * 24))
        out.append((at, at + timedelta(hours=rng.choice((1, 1, 2, 3)))))
    return merged(out)


def inside(spans: list[tuple[datetime, datetime]], t: datetime) -> datetime | None:
    """The start of the span containing ``t``, if any."""
    for a, b in spans:
        if a <= t < b:
            return a
        if a > t:
            break
    return None


# --- state ---------------------------------------------------------------------------------


@dataclass
class Held:
    key: str
    size: int
    added: datetime
    have: int
    done: datetime | None
    error: int = 0
    error_string: str = ""
    labels: tuple[str, ...] = ("tva",)
    last_progress: datetime | None = None
    sending: bool = False
    status: TorrentStatus | None = None

    def torrent(self, node: str) -> TorrentStatus:
        if self.status is None:
            complete = self.done is not None
            self.status = TorrentStatus.model_construct(
                infohash=self.key, name=self.key[:8], size=self.size,
                percent_done=1.0 if complete else self.have / self.size,
                state=TorrentState.seeding if complete else TorrentState.downloading,
                error=self.error, error_string=self.error_string, labels=list(self.labels),
                download_dir=f"/srv/{node}", peers_connected=1 if self.sending else 0,
                peers_sending=1 if self.sending and not complete else 0,
                rate_download=RATE if self.sending and not complete else 0, rate_upload=0,
                uploaded=0, downloaded=self.have,
                last_activity=self.last_progress or self.added, done_date=self.done,
                added_date=self.added, trackers=[],
            )
        return self.status


@dataclass
class Node:
    spec: NodeSpec
    away: list[tuple[datetime, datetime]]
    blips: list[tuple[datetime, datetime]]
    held: dict[str, Held] = field(default_factory=dict)
    journal: list[JournalEntry] = field(default_factory=list)
    pruned: set[str] = field(default_factory=set)
    down_until: datetime | None = None
    in_fleet: bool = True
    view: list[NodeStatus] | None = None
    """The statuses it read last (what a daemon keeps when a read fails)."""
    present: tuple[datetime, datetime] | None = None
    """(present since, last published), as the daemon tracks it."""

    @property
    def name(self) -> str:
        return self.spec.name

    def used(self) -> int:
        return sum(h.have for h in self.held.values())

    def awake(self, t: datetime) -> bool:
        if not self.in_fleet or (self.down_until is not None and t < self.down_until):
            return False
        return inside(self.away, t) is None


@dataclass
class Figures:
    bytes_moved: int = 0
    bytes_minimum: int = 0
    adds: Counter[str] = field(default_factory=Counter)
    add_bytes: Counter[str] = field(default_factory=Counter)
    """Bytes of the items added, by cause (what the adds set out to move)."""
    prunes: int = 0
    prunes_per_item: Counter[str] = field(default_factory=Counter)
    readds_after_prune: int = 0
    below_floor_hours: float = 0.0
    unreachable_hours: float = 0.0
    lost_below: set[str] = field(default_factory=set)
    lost_above: set[str] = field(default_factory=set)
    restore_hours: list[float] = field(default_factory=list)
    moves_per_failure: list[int] = field(default_factory=list)
    plan_cpu: float = 0.0
    plan_calls: int = 0
    failed_downloads: int = 0
    blind_passes: int = 0


@dataclass
class Failure:
    node: str
    at: datetime
    known: datetime
    affected: dict[str, int]
    """Item -> its floor, for the items that fell below it."""
    restored: dict[str, datetime] = field(default_factory=dict)
    moves: Counter[str] = field(default_factory=Counter)
    """Adds of each affected item after the failure."""


class Sim:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        rng = random.Random(args.seed)
        self.rng = rng
        self.n = args.items
        self.sizes = [rng.randint(1, 20) * GiB for _ in range(self.n)]
        self.keys = [key(i) for i in range(self.n)]
        self.size_of = dict(zip(self.keys, self.sizes, strict=True))
        self.floor = {k: (2 if i < self.n // 2 else 3) for i, k in enumerate(self.keys)}
        self.grace = parse_duration(args.grace)
        self.step = parse_duration(args.pass_every)
        self.days = args.days
        self.end = START + timedelta(days=self.days)
        self.tmp = tempfile.TemporaryDirectory(prefix="tva-churn-")
        specs = [NodeSpec(s.name, s.cls, s.capacity, s.always_on, presence_of(s, args)) for s in NODES]
        self.specs = {s.name: s for s in specs}
        stale_after = str(int(self.step.total_seconds() * 1.5)) + "s"
        extra = args.fleet_extra
        self.fleets: dict[frozenset[str], DesiredState] = {}
        for members in self._memberships():
            root = Path(self.tmp.name) / "-".join(sorted(members))
            write_fleet(root, [s for s in specs if s.name in members], self.n, self.sizes,
                        args.grace, stale_after, extra, args.max_pins)
            loaded = load_fleet(str(root))
            self.fleets[members] = loaded.desired
        self.nodes: dict[str, Node] = {}
        for s in specs:
            self.nodes[s.name] = Node(s, absences(s, self.days, rng),
                                      blips(self.days, rng, args.blips))
        for name, day in JOINS.items():
            self.nodes[name].in_fleet = day <= 0
        self.figures = Figures()
        self.failures: list[Failure] = []
        self.status_store: dict[str, NodeStatus] = {}
        self._seed_placement()

    def _memberships(self) -> list[frozenset[str]]:
        out = []
        names = {s.name for s in NODES}
        for d in sorted({0, *JOINS.values(), *DECOMMISSION.values()}):
            members = {n for n in names if JOINS.get(n, 0) <= d and DECOMMISSION.get(n, 1 << 30) > d}
            out.append(frozenset(members))
        return out

    def members(self) -> frozenset[str]:
        return frozenset(n for n, node in self.nodes.items() if node.in_fleet)

    def desired(self) -> DesiredState:
        return self.fleets[self.members()]

    def _seed_placement(self) -> None:
        """Every item on the first ``min`` nodes of its order with room, as a settled fleet."""
        members = self.members()
        done = START - timedelta(days=30)
        reserve = 20 * GiB
        for k in self.keys:
            need = self.floor[k]
            for n in hrw_order(k, sorted(members)):
                if need == 0:
                    break
                node = self.nodes[n]
                if node.used() + self.size_of[k] + reserve > node.spec.capacity:
                    continue
                node.held[k] = Held(k, self.size_of[k], done, self.size_of[k], done,
                                    labels=("tva", f"tva:custody/{self.rule(k)}"),
                                    last_progress=done)
                need -= 1

    def rule(self, k: str) -> str:
        return "two" if self.floor[k] == 2 else "three"

    # --- ground truth --------------------------------------------------------------------

    def complete_copies(self, k: str) -> int:
        return sum(1 for n in self.nodes.values()
                   if n.in_fleet and (h := n.held.get(k)) is not None and h.done is not None
                   and h.error == 0)

    # --- one pass ------------------------------------------------------------------------

    def run(self) -> Figures:
        t = START
        end = self.end
        while t < end:
            self.events(t)
            self.progress(t)
            self.measure(t)
            self.publish(t)
            for name in sorted(self.nodes):
                node = self.nodes[name]
                if node.awake(t):
                    self.pass_of(node, t)
            t += self.step
        self.finish(end)
        return self.figures

    def events(self, t: datetime) -> None:
        day = (t - START).days
        if t.hour or t.minute:
            return
        for name, d in JOINS.items():
            if d == day:
                self.nodes[name].in_fleet = True
        for name, d in DECOMMISSION.items():
            if d == day:
                node = self.nodes[name]
                affected = self.affected_by(node)
                node.in_fleet = False
                node.held.clear()
                self.status_store.pop(name, None)
                self.failures.append(Failure(name, t, t, affected))
        for name, d in DISK_DEATHS.items():
            if d == day:
                node = self.nodes[name]
                affected = self.affected_by(node)
                node.held.clear()
                node.journal.clear()
                node.view = None
                node.down_until = t + REPAIR
                self.failures.append(Failure(name, t, t + min(self.grace_of(name), REPAIR),
                                             affected))

    def grace_of(self, name: str) -> timedelta:
        """The node's grace: the fleet's, or its declared expected absence when longer."""
        dev = self.desired().devices.get(name) or self.fleets[max(self.fleets, key=len)].devices[name]
        presence = getattr(dev, "presence", None)  # None before issue 17
        expected = presence.expected_absence if presence is not None else None
        return max(self.grace, expected) if expected is not None else self.grace

    def affected_by(self, node: Node) -> dict[str, int]:
        out = {}
        for k, h in node.held.items():
            if h.done is not None and h.error == 0 and self.complete_copies(k) - 1 < self.floor[k]:
                out[k] = self.floor[k]
                self.figures.bytes_minimum += h.size
        return out

    def progress(self, t: datetime) -> None:
        """Downloads of the last interval: 50 MB/s per node, shared, while a source is awake."""
        prev = t - self.step
        awake_complete: dict[str, int] = Counter()
        for n in self.nodes.values():
            if n.awake(prev):
                for k, h in n.held.items():
                    if h.done is not None and h.error == 0:
                        awake_complete[k] += 1
        secs = self.step.total_seconds()
        for n in self.nodes.values():
            if not n.awake(prev):
                continue
            active = [h for h in n.held.values() if h.done is None and h.error == 0]
            for h in active:
                src = awake_complete.get(h.key, 0) > 0
                if src != h.sending:
                    h.sending = src
                    h.status = None
            moving = [h for h in active if h.sending]
            budget = RATE * secs
            # Smallest remainder first: shared bandwidth finishes the short ones first.
            moving.sort(key=lambda h: (h.size - h.have, h.key))
            clock = 0.0
            left = len(moving)
            for h in moving:
                share = budget / left if left else 0
                take = min(share, h.size - h.have)
                used = n.used()
                if used + take > n.spec.capacity:
                    h.error, h.error_string = 3, "No space left on device"
                    h.status = None
                    self.figures.failed_downloads += 1
                    left -= 1
                    continue
                h.have += int(take)
                self.figures.bytes_moved += int(take)
                budget -= take
                left -= 1
                clock += take / RATE
                h.last_progress = prev + timedelta(seconds=min(clock, secs))
                h.status = None
                if h.have >= h.size:
                    h.have = h.size
                    h.done = prev + timedelta(seconds=min(clock, secs))
                    self.on_complete(h.key, h.done)

    def on_complete(self, k: str, at: datetime) -> None:
        for f in self.failures:
            floor = f.affected.get(k)
            if floor is not None and k not in f.restored and self.complete_copies(k) >= floor:
                f.restored[k] = at

    def measure(self, t: datetime) -> None:
        hours = self.step.total_seconds() / 3600
        counts: Counter[str] = Counter()
        reachable: set[str] = set()
        for n in self.nodes.values():
            if not n.in_fleet:
                continue
            up = n.awake(t)
            for k, h in n.held.items():
                if h.done is not None and h.error == 0:
                    counts[k] += 1
                    if up:
                        reachable.add(k)
        fails = self.permanent_failures(t)
        for k in self.keys:
            c = counts.get(k, 0)
            if c < self.floor[k]:
                self.figures.below_floor_hours += hours
            if c == 0:
                lost = self.figures.lost_below if fails < self.floor[k] else self.figures.lost_above
                lost.add(k)
        self.figures.unreachable_hours += hours * (self.n - len(reachable))

    def permanent_failures(self, t: datetime) -> int:
        """Real failures whose damage is not repaired yet, at ``t``."""
        return sum(1 for f in self.failures if len(f.restored) < len(f.affected) and f.at <= t)

    def publish(self, t: datetime) -> None:
        for n in self.nodes.values():
            if n.awake(t):
                self.status_store[n.name] = self.status(n, t)

    def status(self, n: Node, t: datetime) -> NodeStatus:
        """What the daemon publishes: observed state, present_since, its own verdicts."""
        used = n.used()
        gap = self.step * 1.5
        since = t if n.present is None or t - n.present[1] > gap else n.present[0]
        n.present = (since, t)
        status = NodeStatus.model_construct(
            present_since=since,
            format="tva.status/v1", node=n.name, observed_at=t, controller_version="churn",
            desired_revision=None, always_on=n.spec.always_on, on_ac_power=None,
            transmission=TransmissionStatus.model_construct(
                reachable=True, error="", rpc_version=None, version=None,
                torrents=[h.torrent(n.name) for h in n.held.values()], download_rate=0,
                upload_rate=0),
            storage=[StorageStatus.model_construct(path=f"/srv/{n.name}",
                                                   free=n.spec.capacity - used,
                                                   total=n.spec.capacity, reachable=True)],
            player=None, vpn=[], duties=[], conditions=[],
        )
        if with_verdicts is not None and any(h.done is None for h in n.held.values()):
            status = with_verdicts(self.desired(), status, t, n.journal)
        return status

    def read(self, n: Node, t: datetime) -> tuple[list[NodeStatus], bool]:
        """The statuses ``n`` plans with, and whether its read failed."""
        failed = inside(n.blips, t) is not None or self.rng.random() < self.args.read_failures
        own = self.status_store[n.name]
        if failed:
            self.figures.blind_passes += 1
            others = [] if self.args.blind else (n.view or [])
        else:
            others = [s for name, s in sorted(self.status_store.items()) if name != n.name]
            n.view = others
        return [s for s in others if s.node != n.name] + [own], failed

    def pass_of(self, n: Node, t: datetime) -> None:
        statuses, failed = self.read(n, t)
        horizon = t - timedelta(days=3)
        n.journal = [e for e in n.journal if e.at >= horizon]
        desired = self.desired()
        start = time.process_time()
        extra = {"unread": True} if failed and not self.args.blind else {}
        p = plan(desired, statuses, t, nodes=[n.name], journal=n.journal, **extra)
        self.figures.plan_cpu += time.process_time() - start
        self.figures.plan_calls += 1
        self.apply(n, p, t, failed)

    def apply(self, n: Node, p: Plan, t: datetime, failed: bool) -> None:
        if p.suspended:
            return
        for a in p.actions:
            if a.node != n.name:
                continue
            outcome = Outcome.ok
            progress = detail = None
            if a.kind is ActionKind.add:
                k = a.target
                if k in n.held:
                    continue
                cause = self.cause(n, k, t, failed)
                self.figures.adds[cause] += 1
                self.figures.add_bytes[cause] += self.size_of[k]
                if k in n.pruned:
                    self.figures.readds_after_prune += 1
                for f in self.failures:
                    if k in f.affected and f.at <= t and k not in f.restored:
                        f.moves[k] += 1
                n.held[k] = Held(k, self.size_of[k], t, 0, None,
                                 labels=tuple(a.params.get("labels", ["tva"])), last_progress=t)
            elif a.kind is ActionKind.remove_data:
                k = a.target
                if n.held.pop(k, None) is not None:
                    self.figures.prunes += 1
                    self.figures.prunes_per_item[k] += 1
                    n.pruned.add(k)
            elif a.kind is ActionKind.record_strike:
                progress = a.params.get("progress")
                detail = a.params.get("cause")
            n.journal.append(JournalEntry(at=t, node=n.name, action_id=a.id, kind=a.kind,
                                          target=a.target, outcome=outcome, progress=progress,
                                          detail=detail or ""))

    def cause(self, n: Node, k: str, t: datetime, failed: bool) -> str:
        """Why an add happened, from the ground truth."""
        if self.complete_copies(k) < self.floor[k] and any(
                k in f.affected and k not in f.restored for f in self.failures):
            return "real failure"
        if self.complete_copies(k) < self.floor[k]:
            return "below floor (other)"
        short = long = False
        for m in self.nodes.values():
            h = m.held.get(k)
            if m.in_fleet and h is not None and h.done is not None and not m.awake(t):
                # Away since its last status, as the fleet sees it (passes are coarse).
                since = m.present[1] if m.present is not None else (inside(m.away, t) or t)
                if t - since <= self.grace_of(m.name):
                    short = True
                else:
                    long = True
        if long:
            return "absence > grace"
        if failed:
            return "read failure"
        return "absence < grace" if short else "holders all present"

    def finish(self, end: datetime) -> None:
        for f in self.failures:
            for k in f.affected:
                done = f.restored.get(k)
                wait = (done if done is not None else end) - f.known
                self.figures.restore_hours.append(max(wait.total_seconds(), 0) / 3600)
            self.figures.moves_per_failure.extend(f.moves.get(k, 0) for k in f.affected)


def presence_of(spec: NodeSpec, args: argparse.Namespace) -> str:
    """Laptops declare how long they are normally away (``--laptop-absence``, '' for none)."""
    if spec.cls == "laptop" and args.laptop_absence:
        return f"presence: {{expected_absence: {args.laptop_absence}}}\n"
    return ""


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def report(sim: Sim, wall: float) -> None:
    f = sim.figures
    adds = sum(f.adds.values())
    needless = sum(v for c, v in f.adds.items() if c not in ("real failure", "below floor (other)"))
    print(f"churn: {sim.n} items, {sim.days} days, grace {sim.args.grace}, pass every "
          f"{sim.args.pass_every}, seed {sim.args.seed}, read failures {sim.args.read_failures:.0%}"
          f" + {sim.args.blips} blips/node/year{' (blind passes)' if sim.args.blind else ''}")
    print(f"  items lost: {len(f.lost_below)} while permanent failures < floor, "
          f"{len(f.lost_above)} at/above")
    ratio = f.bytes_moved / f.bytes_minimum if f.bytes_minimum else float("inf")
    print(f"  bytes moved: {f.bytes_moved / TiB:.2f} TiB; minimum {f.bytes_minimum / TiB:.2f} TiB;"
          f" ratio {ratio:.2f}")
    mpf = f.moves_per_failure
    print(f"  moves per affected item per real failure: mean {statistics.fmean(mpf) if mpf else 0:.2f}"
          f", max {max(mpf, default=0)} ({len(mpf)} item-failures)")
    print(f"  adds: {adds}; not required by any real failure: {needless}")
    for c, v in sorted(f.adds.items()):
        print(f"    {c}: {v} ({f.add_bytes[c] / TiB:.2f} TiB)")
    policy = f.add_bytes["absence > grace"]
    if f.bytes_minimum:
        print(f"  bytes moved less re-pins for absences past grace (by policy): "
              f"{(f.bytes_moved - policy) / f.bytes_minimum:.2f} x the minimum")
    print(f"  adds to a node that had pruned the item: {f.readds_after_prune}")
    print(f"  prunes: {f.prunes}; most for one item: {max(f.prunes_per_item.values(), default=0)}")
    print(f"  downloads failed for lack of space: {f.failed_downloads}")
    print(f"  item-hours below floor: {f.below_floor_hours:,.0f}; without a reachable complete "
          f"copy: {f.unreachable_hours:,.0f}")
    for fl in sim.failures:
        hours = [max(((fl.restored.get(k) or sim.end) - fl.known).total_seconds(), 0) / 3600
                 for k in fl.affected]
        kind = "decommission" if fl.known == fl.at else "disk death"
        print(f"    {kind} of {fl.node} on day {(fl.at - START).days}: {len(hours)} items below "
              f"floor, restored after (h) median {statistics.median(hours) if hours else 0:.1f}, "
              f"worst {max(hours, default=0):.1f}")
    r = f.restore_hours
    print(f"  time to restore a floor (h): median {statistics.median(r) if r else 0:.1f}, "
          f"p95 {pct(r, 0.95):.1f}, worst {max(r, default=0):.1f} ({len(r)} items)")
    print(f"  passes with a failed status read: {f.blind_passes}")
    per = f.plan_cpu / f.plan_calls if f.plan_calls else 0
    print(f"  planner CPU per node-pass: {per * 1000:.1f} ms ({f.plan_calls} passes); "
          f"wall {wall:.0f}s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--grace", default="12h")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pass-every", default="2h")
    ap.add_argument("--read-failures", type=float, default=0.02,
                    help="chance that a node's status read fails in a pass")
    ap.add_argument("--blips", type=int, default=12, help="spells of failed reads per node per year")
    ap.add_argument("--blind", action="store_true",
                    help="plan with no other statuses when a read fails (the daemon before issue "
                    "17); by default the statuses read last stay in force, as NodeRuntime.others")
    ap.add_argument("--max-pins", type=int, default=20,
                    help="policy.custody.max_new_pins_per_node (a daemon passes every few "
                    "seconds while busy; the simulation's passes are coarse)")
    ap.add_argument("--laptop-absence", default="3d",
                    help="laptops' presence.expected_absence ('' for none)")
    ap.add_argument("--fleet-extra", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    start = time.monotonic()
    sim = Sim(args)
    sim.run()
    report(sim, time.monotonic() - start)


if __name__ == "__main__":
    main()
