"""One node's controller: a pass is observe -> read statuses -> plan -> apply.

Shared by ``tva run`` (every pass of the daemon) and ``tva apply`` (one pass, by hand). The
pass is level-triggered: it reads the whole desired and observed state each time. Only this
node's actions are applied; the plan for the other nodes is computed (so every node agrees)
and dropped. The caller reads the clock once per pass and gives that ``now`` to everything in
it (observation time, conditions, freshness, the plan).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from controller.act.acquire import AcquireActuator
from controller.act.apply import Applier, ApplyReport, Backend
from controller.act.confirm import Confirmer
from controller.act.player import PlayerActuator
from controller.act.transmission import TransmissionActuator
from controller.act.vpn import VpnActuator
from controller.act.writeback import GitProposer
from controller.announce import base_url, with_token
from controller.atomic import write_atomic
from controller.clients.peers import PeerApi
from controller.clients.torznab import TorznabClient
from controller.clients.transmission import TransmissionClient
from controller.errors import PermanentError, Problem, TvaError
from controller.journal import Journal
from controller.nodeconfig import refused_root
from controller.observe.node import attribute, observe_node
from controller.observe.transmission import TransmissionObserver
from controller.planner import FleetView, build_fleet_view, with_verdicts
from controller.planner import plan as make_plan
from controller.planner.alerts import FleetFacts, facts_of
from controller.planner.core import plan_of, run_pass
from controller.planner.searches import with_searches
from controller.player.host import PlayerHost
from controller.player.watched import WatchedStore
from controller.seeder import lane_budget, lanes_per_holder
from controller.status import StatusTransport
from schemas.desired import DesiredState, Device, Service
from schemas.observed import Condition, ConditionStatus, NodeStatus, TransmissionStatus
from schemas.plan import Action, Plan

__all__ = [
    "JOURNAL_HORIZON",
    "STORAGE_ALLOWED",
    "NodeRuntime",
    "PassOutcome",
    "condition",
    "problems_message",
    "tracker_token",
]

STORAGE_ALLOWED = "StorageAllowed"

log = logging.getLogger("tva.node")
JOURNAL_HORIZON = timedelta(days=30)
"""How far back the journal is read for planning (longer than any reaper interval)."""


@dataclass
class PassOutcome:
    desired: DesiredState
    now: datetime
    """The one instant of the pass."""
    status: NodeStatus
    """This node's status, observed in the pass."""
    statuses: list[NodeStatus]
    """Every node's status the pass planned with (this node's own included)."""
    view: FleetView
    """Freshness of every node at ``now``, as the planner saw it."""
    plan: Plan
    report: ApplyReport | None
    unread: bool = False
    """The fleet's statuses could not be read this pass (planned with those read last)."""
    facts: FleetFacts | None = None
    """The fleet's open conditions and custody figures, from the same planning pass."""


@dataclass
class NodeRuntime:
    """What one node keeps between passes (connections, the last observation)."""

    node: str
    state_dir: str
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    player_socket: str | None = None
    host_player: bool = False
    """Host the player in-process (the daemon does; ``tva apply`` observes only)."""
    should_stop: Callable[[], bool] = lambda: False
    sleep: Callable[[float], object] | None = None
    """Interruptible sleep (the daemon's wakeup), used between spaced actions."""
    journal: Journal = field(init=False)
    _device: Device | None = field(default=None, init=False)
    _client: TransmissionClient | None = field(default=None, init=False)
    _desired: DesiredState | None = field(default=None, init=False)
    peers: PeerApi = field(default_factory=PeerApi, init=False)
    """Other controllers' API: live confirmations and web seed URLs."""
    _observer: TransmissionObserver | None = field(default=None, init=False)
    _actuator: TransmissionActuator | None = field(default=None, init=False)
    _previous: TransmissionStatus | None = field(default=None, init=False)
    _player: PlayerHost | None = field(default=None, init=False)
    _view: list[NodeStatus] | None = field(default=None, init=False)
    _present: tuple[datetime, datetime] | None = field(default=None, init=False)
    """(present since, last observed): a gap longer than stale_after starts a new presence."""
    """The other nodes' statuses as read last: kept in force when a read fails."""
    watched: WatchedStore = field(init=False)
    metainfo_reader: Callable[[str], bytes | None] | None = None
    """Reads a committed .torrent by repo path (the source's revision), when there is one."""
    proposer: GitProposer | None = None
    """Commits the acquirer's finds to the fleet repo; None: research is not carried out here."""
    _searcher: TorznabClient | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.token = tracker_token(self.state_dir, self.node)
        self.journal = Journal(os.path.join(self.state_dir, f"{self.node}.journal.jsonl"))
        self.watched = WatchedStore(os.path.join(self.state_dir, f"{self.node}.watched.json"))
        if self.player_socket is None:
            self.player_socket = os.path.join(self.state_dir, f"{self.node}.player.sock")

    # ------------------------------------------------------------------ wiring

    def _configure(self, desired: DesiredState) -> Device:
        self._desired = desired
        device = desired.devices.get(self.node)
        if device is None:
            raise PermanentError(
                f"node {self.node!r} is not a device of the fleet (devices: {', '.join(desired.devices)})"
            )
        if device != self._device:
            self._device = device
            # One client per daemon, shared by the observer and the actuator.
            self._client = TransmissionClient.for_device(device)
            self._observer = TransmissionObserver(self._client) if self._client else None
            api = device.addresses.controller_api
            fleet = base_url(api) if api else None
            self._actuator = (
                TransmissionActuator(self._client, metainfo=self._metainfo, fleet_tracker=(
                    (fleet, with_token(fleet, self.token)) if fleet else None),
                    webseeds=self._webseeds, refused_roots=[self.state_dir])
                if self._client else None)
            self._previous = None
            if self.host_player and device.player is not None and Service.player in device.services:
                self._start_player(device)
        return device

    def _metainfo(self, action: Action) -> bytes | None:
        path = action.params.get("torrent")
        if path and self.metainfo_reader is not None:
            return self.metainfo_reader(str(path))
        return None

    def _webseeds(self, action: Action) -> list[str]:
        """The web seed URLs of the live holders an ``add`` names, asked of them now, at most
        ``lane_budget`` of this node's Transmission in all (``controller.seeder``: more in
        flight can hang Transmission 3.00); a holder that cannot answer is left out (the peer
        path still works)."""
        desired = self._desired
        if desired is None:
            return []
        try:
            rpc = self._client.capabilities().rpc_version if self._client else None
        except TvaError:
            rpc = None  # not known: the safe budget
        budget = lane_budget(rpc)
        holders = [device for source in action.params.get("sources", [])
                   if source.get("complete")
                   for device in [desired.devices.get(str(source.get("node")))] if device]
        urls: list[str] = []
        for device, lanes in zip(holders, lanes_per_holder(len(holders), budget), strict=True):
            if lanes == 0:
                break
            try:
                urls += self.peers.webseed(device, action.target, lanes=lanes)
            except TvaError as e:
                log.info("no web seed from %s for %s: %s", device.name, action.target[:12], e)
        return urls

    def _start_player(self, device: Device) -> None:
        assert device.player is not None and self.player_socket is not None
        if self._player is not None:
            self._player.close()
        self._player = PlayerHost(
            self.player_socket, dict(device.player.options), on_watched=self._on_watched
        )
        self._player.start()

    def _on_watched(self, path: str) -> None:
        if self._previous is not None:
            key = attribute(path, self._previous.torrents)
            if key is not None:
                self.watched.add(key)

    @property
    def client(self) -> TransmissionClient | None:
        """This node's Transmission client (None when it runs none)."""
        return self._client

    def close(self) -> None:
        if self._player is not None:
            self._player.close()
            self._player = None
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None

    # ------------------------------------------------------------------ a pass

    def observe(self, desired: DesiredState, now: datetime,
                conditions: list[Condition]) -> NodeStatus:
        device = self._configure(desired)
        if self._observer is not None:
            watch = frozenset(k for k, it in desired.items.items() if it.fleet_only)
            if watch != self._observer.watch:
                self._observer.watch = watch
                self._previous = None  # read their trackers in a full pass
        obs = observe_node(
            desired, self.node, now=now, observer=self._observer, previous=self._previous,
            player_socket=self.player_socket if device.player is not None else None,
            watched=self.watched.keys(), revision=desired.revision,
            conditions=[*conditions, self.roots_condition(device, now)],
        )
        self._previous = obs.status.transmission if obs.status.transmission.reachable else None
        stale_after = desired.fleet.policy.freshness.stale_after
        since = now if self._present is None or now - self._present[1] > stale_after \
            else self._present[0]
        self._present = (since, now)
        status = obs.status.model_copy(update={"present_since": since})
        # Its own verdict on its copies (dead by its journal's strikes) travels in its status,
        # so that every node plans the same (controller/planner/verdicts.py); so do its failing
        # searches, for whichever node tells the owner (controller/planner/searches.py).
        journal = self.journal.entries(now - JOURNAL_HORIZON)
        return with_searches(with_verdicts(desired, status, now, journal), journal)

    def roots_condition(self, device: Device, now: datetime) -> Condition:
        """``StorageAllowed``: whether this node accepts the storage roots and download dir the
        fleet repo gives it (its node.toml and state dir decide). Published, so every planner
        places nothing here while it is false."""
        paths = [r.path for r in device.storage]
        if device.download_dir is not None:
            paths.append(device.download_dir)
        refused = [why for p in paths if (why := refused_root(p, [self.state_dir])) is not None]
        if refused:
            return condition(STORAGE_ALLOWED, False, "RootRefused", "; ".join(refused), now)
        return condition(STORAGE_ALLOWED, True, "RootsAllowed", "", now)

    def plan(self, desired: DesiredState, statuses: list[NodeStatus], now: datetime,
             *, unread: bool = False) -> Plan:
        horizon = now - JOURNAL_HORIZON
        return make_plan(desired, statuses, now, nodes=[self.node],
                         journal=self.journal.entries(horizon), unread=unread)

    def plan_and_facts(self, desired: DesiredState, statuses: list[NodeStatus], now: datetime,
                       *, unread: bool = False) -> tuple[Plan, FleetFacts]:
        """This node's plan and the fleet's facts (``controller/planner/alerts.py``), from one
        planning pass."""
        journal = self.journal.entries(now - JOURNAL_HORIZON)
        ctx, ledger, entries = run_pass(desired, statuses, now, journal, unread=unread)
        return plan_of(ctx, ledger, [self.node]), facts_of(ctx, ledger, entries)

    def others(self, transport: StatusTransport | None) -> tuple[list[NodeStatus], bool]:
        """The other nodes' statuses to plan with, and whether this pass failed to read them.

        A failed read never means "everyone else is unknown": the statuses read last stay in
        force with their real ages (they turn stale and gone as usual), and with none read yet
        the planner makes no custody changes (``plan(..., unread=True)``)."""
        if transport is None:
            return [], False
        try:
            read = [s for s in transport.read_all() if s.node != self.node]
        except TvaError as e:
            kept = self._view
            log.warning("cannot read the fleet's statuses: %s; %s", e,
                        f"planning with the {len(kept)} read last" if kept is not None
                        else "none read yet: no custody changes this pass")
            return list(kept or []), True
        self._view = read
        return read, False

    def applier(self, desired: DesiredState) -> Applier:
        backends: list[Backend] = [VpnActuator(desired), PlayerActuator(self._player)]
        if self.proposer is not None:
            if self._searcher is None:
                self._searcher = TorznabClient()
            backends.append(AcquireActuator(
                lambda: self._desired, self._searcher, self.proposer, self.clock,
                results_file=self.acquisitions_file))
        if self._actuator is not None:
            backends.insert(0, self._actuator)
        actuator = self._actuator
        confirmer = Confirmer(
            desired, self.node, peers=self.peers,
            own_holds=(actuator.holds_complete if actuator is not None else (lambda _ih: False)),
            playing=self.playing,
        )
        return Applier(
            self.node, backends, journal=self.journal, confirmer=confirmer, clock=self.clock,
            should_stop=self.should_stop, sleep=self.sleep,
        )

    @property
    def acquisitions_file(self) -> str:
        """Where the acquirer keeps the last result of each search (``tva fleet acquisitions``)."""
        return os.path.join(self.state_dir, f"{self.node}.acquisitions.json")

    def playing(self) -> set[str]:
        """The item the hosted player has open right now, if any (checked before removals)."""
        path = self._player.current_path() if self._player is not None else None
        if path is None or self._previous is None:
            return set()
        key = attribute(path, self._previous.torrents)
        return {key} if key else set()

    def holds(self, infohash: str) -> bool | None:
        """Live answer for a peer's confirmation request; None when it cannot look."""
        if self._actuator is None:
            return None
        try:
            return self._actuator.holds_complete(infohash)
        except TvaError:
            return None

    def run_pass(
        self,
        desired: DesiredState,
        transport: StatusTransport | None,
        *,
        now: datetime | None = None,
        apply: bool = True,
        conditions: list[Condition] | None = None,
        select: Callable[[Action], bool] = lambda a: True,
        on_planned: Callable[[PassOutcome], None] | None = None,
    ) -> PassOutcome:
        """Observe, plan and (unless ``apply`` is false) apply, all as of ``now`` (the clock,
        read once, when not given). ``on_planned`` sees the outcome before anything is applied,
        so the API answers announces from the newest view."""
        now = now if now is not None else self.clock()
        own = self.observe(desired, now, conditions or [])
        others, unread = self.others(transport)
        statuses = [*others, own]
        p, facts = self.plan_and_facts(desired, statuses, now, unread=unread)
        view = build_fleet_view(desired, statuses, now)
        outcome = PassOutcome(desired, now, own, statuses, view, p, None, unread, facts)
        if on_planned is not None:
            on_planned(outcome)
        if apply and not desired.fleet.policy.suspend:
            outcome.report = self.applier(desired).apply(p, select=select)
            if outcome.report.changed:
                # Label and tracker edits are not "activity" to Transmission, so an incremental
                # pass would miss them: look at everything after changing something.
                self._previous = None
        return outcome


def tracker_token(state_dir: str, node: str) -> str:
    """This node's tracker token (``controller.announce``): made once, kept in the state dir
    readable by the daemon's user only, so a restart keeps the URLs in Transmission valid."""
    path = os.path.join(state_dir, f"{node}.tracker-token")
    try:
        with open(path, encoding="ascii") as f:
            token = f.read().strip()
        if len(token) >= 32:
            return token
    except (OSError, UnicodeDecodeError):
        pass
    token = secrets.token_urlsafe(32)
    write_atomic(path, token.encode() + b"\n", mode=0o600)
    return token


def condition(type_: str, ok: bool, reason: str = "", message: str = "", now: datetime | None = None) -> Condition:
    return Condition(
        type=type_, status=ConditionStatus.true if ok else ConditionStatus.false,
        reason=reason, message=message, since=now,
    )


def problems_message(problems: list[Problem], limit: int = 5) -> str:
    head = [str(p) for p in problems[:limit]]
    more = len(problems) - limit
    return "; ".join(head) + (f"; and {more} more" if more > 0 else "")
