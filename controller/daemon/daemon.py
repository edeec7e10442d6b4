"""``tva run``: the controller daemon of one node.

Wires the pieces: the git source (last good revision), the node runtime (observe, plan, apply),
the status transport, the triggers, the HTTP API and the reconcile loop. Drivable from tests:
``Daemon(...).start()`` runs it in a thread, ``stop()`` ends it, ``passes``/``last`` expose
progress, and the clock is injectable.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from controller.act.fabric import FabricActuator
from controller.act.writeback import GitProposer
from controller.clients.notify import NotifyClient
from controller.clients.transmission import runs_transmission
from controller.clients.wireguard import FabricLink
from controller.daemon.api import ApiServer, ConnectionLimits, TlsFiles, create_app
from controller.daemon.board import DashboardHooks
from controller.daemon.lock import NodeLock
from controller.daemon.metrics import FleetSnapshot, Metrics
from controller.daemon.node import (
    JOURNAL_HORIZON,
    NodeRuntime,
    PassOutcome,
    condition,
    problems_message,
)
from controller.daemon.notifier import Notifier
from controller.daemon.runner import Backoff, PassResult, Runner
from controller.daemon.triggers import CheckoutWatcher, LinkWatcher, Poller, remote_heads
from controller.daemon.wakeup import Wakeup
from controller.desired.checks import MAX_TORRENT_BYTES
from controller.errors import PermanentError, TemporaryError, TvaError, UnreachableError
from controller.observe.host import observe_vpn, profiles_for
from controller.planner.alerts import FleetFacts, fleet_facts
from controller.planner.removals import HOLD_CODE
from controller.secrets import resolve
from controller.seeder import Seeder
from controller.source.git import GitSource, Revision
from controller.status import StatusTransport, open_transport
from controller.tracker import Tracker
from schemas.desired import DesiredState
from schemas.observed import Condition, NodeStatus
from schemas.plan import Plan

__all__ = ["BUSY_REQUEUE", "IDLE_CAP", "TUNNEL_LOOK", "Daemon", "DaemonConfig"]

log = logging.getLogger("tva.daemon")

BUSY_REQUEUE = 5.0
"""Look again this soon while something is moving (transfers, actions just applied)."""
IDLE_CAP = 3600.0
"""The loop's longest sleep; each pass asks for the fleet's resync period (see _idle_requeue)."""
TUNNEL_LOOK = 2.0
"""Seconds between looks at this node's tunnels: a WireGuard handshake that ages out raises no
kernel event for the link watch to see."""


@dataclass
class DaemonConfig:
    node: str
    repo: str
    """A git URL or path of the fleet repo's remote; or a local checkout with ``local=True``."""
    state_dir: str
    branch: str = "main"
    local: bool = False
    status_dir: str | None = None
    """Publish and read statuses in this directory instead of the repo's status refs."""
    listen: str | None = None
    """host:port for the API; default: the device's controller_api address; "off" for none."""
    player_socket: str | None = None
    allowed_signers: str | None = None
    host_player: bool = True
    poll: float | None = None
    """Seconds between remote polls; default: the fleet's policy.sync.poll."""
    tls_cert: str | None = None
    """Certificate (chain) for the API; with ``tls_key``, the API is served over TLS."""
    tls_key: str | None = None
    api_limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    fabric_link: FabricLink | None = None
    """Who does the fabric's privileged work (create tva0, wg syncconf, wg show); default: as
    node.toml's ``[tunnels] via`` says (this process, or the root helper)."""
    notify_endpoints: dict[str, str] = field(default_factory=dict)
    """Service -> base URL replacing its fixed endpoint (tests: a local Discord)."""
    notify_backoff: tuple[float, float] = (5.0, 600.0)
    """First and longest wait after a failed notification."""


class Daemon(DashboardHooks):
    def __init__(self, config: DaemonConfig, *, clock: Callable[[], datetime] | None = None) -> None:
        self.config = config
        self.clock = clock or (lambda: datetime.now(UTC))
        self.wakeup = Wakeup()
        self.metrics = Metrics()
        os.makedirs(config.state_dir, exist_ok=True)
        self.lock = NodeLock(config.state_dir, config.node)
        self.source = GitSource(
            config.repo, os.path.join(config.state_dir, "fleet"), branch=config.branch,
            local=config.local, allowed_signers=config.allowed_signers,
            applied_file=os.path.join(config.state_dir, f"{config.node}.applied-revision"),
            on_validated=lambda: self.wakeup.notify("validated"),
        )
        self.runtime = NodeRuntime(
            config.node, config.state_dir, clock=self.clock, player_socket=config.player_socket,
            host_player=config.host_player, should_stop=lambda: self.wakeup.stopped,
            sleep=self.wakeup.sleep,
        )
        self.runtime.metainfo_reader = self._read_committed
        if not config.local:  # the acquirer commits its finds to the fleet repo (docs/acquisition.md)
            self.runtime.proposer = GitProposer(config.repo, config.branch,
                                                os.path.join(config.state_dir, "acquirer"))
        self.notifier = Notifier(config.node, config.state_dir,
                                 NotifyClient(config.notify_endpoints), clock=self.clock,
                                 backoff=config.notify_backoff,
                                 on_result=lambda target, outcome: self.metrics.notifications.labels(
                                     target=target, outcome=outcome).inc())
        self._applied_since: tuple[str | None, float] = (None, time.monotonic())
        self._refused_seen: str | None = None
        self.facts: FleetFacts | None = None
        """The open conditions and custody figures of the last pass."""
        self.last: PassOutcome | None = None
        self.listeners: list[Callable[[PassOutcome], None]] = []
        """Called after every successful pass (the demo narrates from here)."""
        self.last_revision: Revision | None = None
        self.last_error: str | None = None
        self.passes = 0
        self.planned = 0
        """Passes that reached a plan (the dashboard rebuilds its view when this changes)."""
        self.tracker = Tracker(config.node, self.runtime.token)
        self.seeder = Seeder(self.runtime.token)
        self.fabric = FabricActuator(config.node, config.fabric_link)
        self._transport: StatusTransport | None = None
        self._transport_key: object = None
        self._published: tuple[Any, float] | None = None
        self._api: ApiServer | None = None
        self._api_token: str | None = None
        self._api_refused: str | None = None
        self._threads: list[threading.Thread] = []
        self._checkout_watcher: CheckoutWatcher | None = None
        self.link_watcher = LinkWatcher(self.wakeup)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> None:
        """Run until ``stop()`` (or SIGTERM, wired by the CLI). Holds the node lock."""
        with self.lock:
            try:
                self._start_triggers()
                self.notifier.start()
                runner = Runner(
                    self.reconcile, self.wakeup, resync=IDLE_CAP,
                    backoff=Backoff(base=0.5, cap=60.0), on_error=self._on_error,
                )
                runner.run()
            finally:
                self._shutdown()

    def start(self) -> None:
        """Run in a background thread (for tests and the demo)."""
        self._thread = threading.Thread(target=self.run, name=f"tva-daemon-{self.config.node}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        self.wakeup.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def _shutdown(self) -> None:
        self.wakeup.stop()
        self.notifier.stop()
        if self._checkout_watcher is not None:
            self._checkout_watcher.stop()
        self.link_watcher.stop()
        if self._api is not None:
            self._api.stop()
            self._api = None
        self.runtime.close()
        self.source.close()
        if self._transport is not None:
            self._transport.close()
        log.info("stopped", extra={"event": "stopped", "node": self.config.node})

    def _start_triggers(self) -> None:
        poll = self.config.poll or 60.0
        self.link_watcher.start()
        tunnels = Poller("tunnels", self.wakeup, TUNNEL_LOOK, self._tunnels_up, "tunnel")
        tunnels.start()
        self._threads.append(tunnels)
        if self.config.local:
            watcher = CheckoutWatcher(os.path.join(self.config.repo, ".git"), self.wakeup)
            watcher.start()
            self._checkout_watcher = watcher
        else:
            patterns = [f"refs/heads/{self.config.branch}", "refs/tva/*"]
            p = Poller("remote", self.wakeup, poll, lambda: remote_heads(self.config.repo, patterns), "remote")
            p.start()
            self._threads.append(p)

    def _tunnels_up(self) -> tuple[tuple[str, bool], ...] | None:
        """Which of this node's VPN profiles are up (as the last pass's revision declares
        them); None before the first pass or for a node without one."""
        with self._lock:
            last = self.last
        device = last.desired.devices.get(self.config.node) if last else None
        if last is None or device is None:
            return None
        profiles = profiles_for(device, last.desired.vpn)
        if not profiles:
            return None
        return tuple((v.profile, v.up) for v in observe_vpn(profiles))

    def _idle_requeue(self, desired: DesiredState) -> float:
        """The resync period, short enough that this node's status never goes stale."""
        policy = desired.fleet.policy
        return min(policy.sync.resync.total_seconds(), policy.freshness.stale_after.total_seconds() / 3)

    # ------------------------------------------------------------------ one pass

    def reconcile(self, reasons: list[str]) -> PassResult:
        started = time.monotonic()
        now = self.clock()  # the one instant of this pass
        self.metrics.passes.inc()
        rev = self.source.refresh()
        self.last_revision = rev
        if rev.desired is None:
            why = rev.error or problems_message(rev.problems) or "no revision yet"
            raise PermanentError(f"no valid revision of the fleet repo to apply: {why}")
        desired = rev.desired
        # The network under the pass comes first: the API may listen on a fabric address.
        fabric = self.fabric.reconcile(desired, now)
        self._ensure_api(desired)
        conditions = self._conditions(rev, desired, now)
        if fabric is not None:
            conditions.append(fabric)
        outcome = self.runtime.run_pass(desired, self._status_transport(desired), now=now,
                                        conditions=conditions, on_planned=self._planned)
        with self._lock:
            self.last_error = None
        self._publish(desired, outcome.status)
        self._tell(outcome)
        self._metrics(outcome, rev, time.monotonic() - started)
        for listener in self.listeners:
            listener(outcome)
        self.passes += 1
        applied = outcome.report.applied if outcome.report else []
        log.info(
            "pass %d (%s): %d actions planned, %d applied", self.passes, ",".join(reasons),
            len(outcome.plan.actions), sum(1 for a in applied if a.result == "done"),
            extra={"event": "pass", "revision": rev.applied, "reasons": reasons},
        )
        moving = any(  # data flowing in; a stalled download or a verification queue is not a reason
            not t.complete and (t.rate_download > 0 or t.peers_sending > 0)
            for t in outcome.status.transmission.torrents
        )
        busy = bool(outcome.report and outcome.report.changed) or moving
        if self.config.poll is None:
            for t in self._threads:
                if isinstance(t, Poller) and t.reason == "remote":
                    t.interval = desired.fleet.policy.sync.poll.total_seconds()
        retry = [a for a in (outcome.report.failed if outcome.report else []) if a.temporary]
        if retry:
            # Level-triggered: the next pass plans these again; back off until it can succeed.
            raise TemporaryError(f"{len(retry)} action(s) failed for now: {retry[0].error}")
        device = desired.devices[self.config.node]
        if not outcome.status.transmission.reachable and runs_transmission(device):
            # Published as unreachable (never as "holds nothing"); back off and look again soon.
            raise UnreachableError(f"Transmission is unreachable: {outcome.status.transmission.error}")
        return PassResult(changed=bool(outcome.report and outcome.report.changed),
                          requeue_after=BUSY_REQUEUE if busy else self._idle_requeue(desired))

    def _tell(self, outcome: PassOutcome) -> None:
        """The fleet's open conditions of this pass: to the notifier's book (the worker sends)
        and to the metrics. Never fails the pass."""
        try:
            facts = outcome.facts
            if facts is None:
                journal = self.runtime.journal.entries(outcome.now - JOURNAL_HORIZON)
                facts = fleet_facts(outcome.desired, outcome.statuses, outcome.now, journal,
                                    unread=outcome.unread)
            with self._lock:
                self.facts = facts
            self.notifier.update(outcome.desired, facts, outcome.now)
        except Exception as e:  # notifications are a surface: they never fail a pass
            log.warning("cannot record the open conditions: %s: %s", type(e).__name__, e,
                        extra={"event": "notify-book"})

    def _planned(self, outcome: PassOutcome) -> None:
        with self._lock:
            self.last = outcome
            self.planned += 1
        self.tracker.update(outcome.desired, outcome.statuses, outcome.now)
        self.seeder.refresh(self.runtime.client, frozenset(outcome.desired.items))

    def _on_error(self, error: BaseException, failures: int) -> None:
        self.metrics.pass_errors.inc()
        with self._lock:
            self.last_error = str(error)

    def _conditions(self, rev: Revision, desired: DesiredState, now: datetime) -> list[Condition]:
        if rev.current:
            synced = condition("Synced", True, "RevisionApplied", f"revision {rev.applied}", now)
        elif rev.validating:
            synced = condition(
                "Synced", False, "Validating",
                f"revision {(rev.seen or '')[:12]} is being validated; "
                f"{(rev.applied or '')[:12]} stays in force meanwhile", now,
            )
        elif rev.problems:
            synced = condition(
                "Synced", False, "InvalidRevision",
                f"revision {(rev.seen or '')[:12]} is invalid; {(rev.applied or '')[:12]} stays in force: "
                + problems_message(rev.problems), now,
            )
        elif rev.refused:
            synced = condition("Synced", False, rev.refused, rev.error or "", now)
        else:
            synced = condition("Synced", False, "SourceUnavailable",
                               rev.error or "the fleet repo could not be read", now)
        out = [synced]
        if desired.fleet.policy.suspend:
            out.append(condition("Suspended", True, "PolicySuspend", "policy.suspend is set", now))
        with self._lock:
            err = self.last_error
        out.append(condition("Ready", err is None, "PassFailed" if err else "PassSucceeded", err or "", now))
        with self._lock:
            last = self.last
        held = [w for w in last.plan.warnings if w.code == HOLD_CODE] if last is not None else []
        if held:  # from the previous pass's plan: this pass's is computed after observing
            out.append(condition("RemovalsHeld", True, "RemovalBudget", held[0].message, now))
        if self._api_refused is not None:
            out.append(condition("ApiServed", False, "TlsNotConfigured", self._api_refused, now))
        return out

    # ------------------------------------------------------------------ status transport

    def _status_transport(self, desired: DesiredState) -> StatusTransport:
        key = (self.config.status_dir, desired.fleet.status, self.source.generation)
        if self._transport is None or key != self._transport_key:
            if self._transport is not None:
                self._transport.close()
            transport = open_transport(status_dir=self.config.status_dir,
                                       checkout=self.source.checkout,
                                       policy=desired.fleet.status, node=self.config.node)
            assert transport is not None  # there is always a checkout
            self._transport = transport
            self._transport_key = key
        return self._transport

    def _publish(self, desired: DesiredState, status: NodeStatus) -> None:
        """Publish when the status changed in substance, or when the last one nears staleness."""
        substance = status.model_dump(mode="json", exclude={"observed_at"})
        for t in substance["transmission"]["torrents"]:
            for k in ("rate_download", "rate_upload", "uploaded", "downloaded", "last_activity",
                      "peers_connected", "peers_sending"):
                t.pop(k, None)
        substance["transmission"].pop("download_rate", None)
        substance["transmission"].pop("upload_rate", None)
        for c in substance["conditions"]:
            c.pop("since", None)
        refresh = desired.fleet.policy.freshness.stale_after.total_seconds() / 3
        now = time.monotonic()
        if self._published is not None:
            last, at = self._published
            if last == substance and now - at < refresh:
                return
        transport = self._status_transport(desired)
        try:
            transport.publish(status)
        except TvaError as e:
            log.warning("cannot publish the status: %s", e, extra={"event": "publish-failed"})
            return
        self._published = (substance, now)

    # ------------------------------------------------------------------ API

    def _ensure_api(self, desired: DesiredState) -> None:
        """Start the API once; resolve its token again on every pass (rotation, revocation)."""
        device = desired.devices.get(self.config.node)
        if device is None or self.config.listen == "off":
            return
        token = None
        if device.credentials.api_token is not None:
            try:
                token = resolve(device.credentials.api_token)
            except TvaError as e:
                log.warning("API token unavailable (%s): the API serves only /healthz and /announce", e)
        with self._lock:
            self._api_token = token
        if self._api is not None or self._api_refused is not None:
            return
        address = self.config.listen
        url = device.addresses.controller_api
        tls = (TlsFiles(self.config.tls_cert, self.config.tls_key)
               if self.config.tls_cert and self.config.tls_key else None)
        if address is None:
            if url is None:
                return
            parts = urlsplit(url)
            if parts.scheme == "https" and tls is None:
                # Serving plain HTTP where peers expect TLS would send their token in clear.
                self._api_refused = (f"controller_api {url} is https but this node has no TLS "
                                     "certificate (--tls-cert/--tls-key): the API is not served")
                log.error("%s", self._api_refused, extra={"event": "api-refused"})
                return
            address = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        host, _, port = address.rpartition(":")
        app = create_app(self, self._current_token, self.metrics)
        self.install_dashboard(app, secure=tls is not None)
        self._api = ApiServer(app, host.strip("[]") or "127.0.0.1", int(port),
                              limits=self.config.api_limits, tls=tls)
        self._api.start()
        log.info("API listening on %s%s", address, " (TLS)" if tls else "",
                 extra={"event": "api", "listen": address})

    def _current_token(self) -> str | None:
        with self._lock:
            return self._api_token

    def _metrics(self, outcome: PassOutcome, rev: Revision, seconds: float) -> None:
        self.metrics.pass_duration.observe(seconds)
        self.metrics.drift.set(len(outcome.plan.actions))
        self.metrics.last_success.set(time.time())
        self.metrics.revision_valid.set(1 if rev.current else 0)
        self.metrics.count(outcome.report.applied if outcome.report else [])
        refused = "InvalidRevision" if rev.problems else rev.refused
        if refused is not None and rev.seen is not None and rev.seen != self._refused_seen:
            self._refused_seen = rev.seen  # counted once per refused revision
            self.metrics.revisions_refused.labels(reason=refused).inc()
        mono = time.monotonic()
        if rev.applied != self._applied_since[0]:
            self._applied_since = (rev.applied, mono)
        with self._lock:
            facts = self.facts
        if facts is not None:
            view = outcome.view.nodes
            self.metrics.fleet.set(FleetSnapshot(
                facts=facts,
                node_ages={n: v.age.total_seconds() if v.age is not None else None
                           for n, v in view.items()},
                freshness={n: v.freshness.value for n, v in view.items()},
                applied_age=mono - self._applied_since[1] if rev.applied else None,
                notifier=facts.notifier == self.config.node,
            ))

    # ApiBackend ---------------------------------------------------------------------------

    def status_json(self) -> dict[str, Any] | None:
        with self._lock:
            last = self.last
        return None if last is None else last.status.model_dump(mode="json")

    def plan_json(self) -> dict[str, Any] | None:
        with self._lock:
            last = self.last
        return None if last is None else last.plan.model_dump(mode="json")

    def announce(self, query: bytes, asking: str | None, token: str | None) -> bytes:
        return self.tracker.announce(query, asking, token)

    def holds(self, infohash: str) -> bool | None:
        return self.runtime.holds(infohash)

    def metainfo(self, infohash: str) -> bytes | None:
        with self._lock:
            last = self.last
        if last is None:
            return None
        item = last.desired.items.get(infohash)
        if item is None or item.torrent is None:
            return None
        return self._read_committed(item.torrent)

    def webseed_urls(self, infohash: str, lanes: int) -> list[str] | None:
        with self._lock:
            last = self.last
        device = last.desired.devices.get(self.config.node) if last else None
        if device is None or device.addresses.controller_api is None:
            return None
        return self.seeder.urls(device.addresses.controller_api, infohash, lanes)

    def seed_file(self, infohash: str, capability: str, relative: str) -> str | None:
        found = self.seeder.open(infohash, capability, relative)
        return str(found.path) if found is not None else None

    def wake(self, reason: str) -> None:
        self.wakeup.notify(reason)

    def _read_committed(self, path: str) -> bytes | None:
        rev = self.last_revision
        if rev is None or rev.applied is None:
            return None
        return self.source.read_committed(rev.applied, path, MAX_TORRENT_BYTES)

    @property
    def plan(self) -> Plan | None:
        with self._lock:
            return self.last.plan if self.last else None
