"""Carry out Transmission actions idempotently: an action that is already true does nothing.

The plan says what; this module only speaks Transmission's verbs through the node's
``TransmissionClient`` (shared with the observer) and checks the current state first, so
applying the same plan twice changes nothing the second time. The client translates errors: a
daemon that cannot be reached is a ``TemporaryError`` (retried with backoff by the applier),
refused credentials and refused changes are permanent.

Trackers: the plan names this node's fleet tracker by its base URL (no token); the actuator
puts in the node's token (``controller.announce``) and removes stale URLs of the same tracker.
A fleet-only item (``fleet_only`` in the params) is added from metainfo whose only tracker is
the fleet's, or from a magnet with its ``tr=`` and ``ws=`` removed
(``controller/act/metainfo.py``), so no other tracker ever sees it.

Each verb uses the daemon's best way, by its capabilities (``TransmissionClient.capabilities``,
from the RPC version): labels go with ``torrent-add`` where it honours them (RPC 17+) and are
checked, and set if missing, afterwards on every version. A new torrent's trackers go in with
it, in the metainfo's announce list (outside the info dict, so the info-hash is unchanged) or
as ``tr=`` in a magnet link: Transmission 4.1 does not announce to a tracker added to a running
torrent, and did not connect to the peers that a tracker added over RPC returned, so a fleet
tracker set after the add would never bring a 4.x node its sources. Trackers for a torrent
already there are written in one ``trackerList`` (the torrent's tiers kept, a new tier per new
URL) where there is one (RPC 17+; 4.x deprecates ``trackerAdd``), one ``trackerAdd`` per URL on
3.00. (4.x files URLs of one host into one tier whichever way they come.)

Web seeds: an ``add`` of an item live holders have is given each holder's web seed URL
(``webseeds``, asked of the holders' controllers at the moment of the add;
``controller.seeder``) in its metainfo's ``url-list`` or its magnet's ``ws=``, so the bytes move
over HTTP at the speed of the link while the peer path stays the fallback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from controller.act.metainfo import (
    BadMetainfo,
    fleet_only_magnet,
    fleet_only_metainfo,
    magnet_with_trackers,
    magnet_with_webseeds,
    with_trackers,
    with_webseeds,
)
from controller.announce import is_fleet
from controller.clients.transmission import Torrent, TransmissionClient, WriteRefused
from controller.errors import PermanentError
from controller.nodeconfig import refused_root
from controller.waiting import poll
from schemas.desired import SESSION_KEYS
from schemas.plan import Action, ActionKind

__all__ = ["MetainfoSource", "TransmissionActuator"]

_FIELDS = ["id", "hashString", "status", "labels", "downloadDir", "trackers", "percentDone"]
_STOPPED = 0
_LIMITS = frozenset({"upload_limit", "upload_limited", "download_limit", "download_limited",
                     "seed_ratio_limit", "seed_ratio_mode", "peer_limit"})

MetainfoSource = Callable[[Action], bytes | None]
"""Returns the .torrent bytes for an ``add`` (from the repo or a holder), or None: use the magnet."""
WebseedSource = Callable[[Action], list[str]]
"""Returns the web seed URLs of an ``add``'s live holders (empty: none to be had now)."""


class TransmissionActuator:
    """The Transmission verbs of a plan, for one daemon."""

    KINDS = frozenset({
        ActionKind.add, ActionKind.start, ActionKind.stop, ActionKind.remove_torrent,
        ActionKind.remove_data, ActionKind.reannounce, ActionKind.verify, ActionKind.set_labels,
        ActionKind.set_location, ActionKind.set_limits, ActionKind.set_trackers,
        ActionKind.set_session, ActionKind.drop_webseeds, ActionKind.add_webseeds,
    })

    def __init__(self, client: TransmissionClient, metainfo: MetainfoSource | None = None, *,
                 fleet_tracker: tuple[str, str] | None = None,
                 webseeds: WebseedSource | None = None,
                 refused_roots: Sequence[str] = ()) -> None:
        """``fleet_tracker``: this node's tracker as (base URL, URL with the node's token)."""
        self.client = client
        self.metainfo = metainfo
        self.fleet_tracker = fleet_tracker
        self.webseeds = webseeds
        self._seeded: set[str] = set()
        """Info-hashes whose last add here carried web seeds."""
        self.refused_roots = tuple(refused_roots)
        """Refused besides the node configuration's (the state dir)."""

    def _announce_url(self, url: str) -> str:
        """The URL to give Transmission for a tracker the plan names."""
        if self.fleet_tracker is not None and url == self.fleet_tracker[0]:
            return self.fleet_tracker[1]
        return url

    def _check_dir(self, path: object) -> None:
        """A download dir or location comes from the fleet repo: this node's roots decide."""
        if path and (why := refused_root(str(path), self.refused_roots)) is not None:
            raise PermanentError(f"refused: {why}")

    @property
    def url(self) -> str:
        return self.client.url

    def _find(self, infohash: str) -> Torrent | None:
        found = self.client.read(lambda c: c.get_torrents([infohash], arguments=_FIELDS))
        return found[0] if found else None

    def peer_only(self, action: Action) -> bool:
        """An add fetches over the peer path alone unless its last add here had web seeds."""
        return action.kind is ActionKind.add and action.target not in self._seeded

    def holds_complete(self, infohash: str) -> bool:
        """Live: does this daemon hold a complete, error-free copy right now?"""
        t = self.client.read(
            lambda c: c.get_torrents([infohash], arguments=["hashString", "percentDone", "error"]))
        # A tracker complaint (error 1 or 2) does not make a complete copy less complete.
        return bool(t) and t[0].fields.get("percentDone") == 1 and t[0].fields.get("error") != 3

    def apply(self, action: Action) -> str:
        """Carry out ``action``; returns "done" or "no-op" (already true)."""
        handler: dict[ActionKind, Callable[[Action], str]] = {
            ActionKind.add: self._add,
            ActionKind.start: self._start,
            ActionKind.stop: self._stop,
            ActionKind.remove_torrent: lambda a: self._remove(a, delete_data=False),
            ActionKind.remove_data: lambda a: self._remove(a, delete_data=True),
            ActionKind.reannounce: self._reannounce,
            ActionKind.verify: self._verify,
            ActionKind.set_labels: self._set_labels,
            ActionKind.set_location: self._set_location,
            ActionKind.set_limits: self._set_limits,
            ActionKind.set_trackers: self._set_trackers,
            ActionKind.set_session: self._set_session,
            ActionKind.drop_webseeds: self._drop_webseeds,
            ActionKind.add_webseeds: self._add_webseeds,
        }
        return handler[action.kind](action)

    # ------------------------------------------------------------------ verbs

    def _add(self, a: Action, seeds: list[str] | None = None) -> str:
        """``seeds``: the web seeds to add it with; None: ask the holders the add names."""
        p = a.params
        ih = a.target
        labels = sorted(set(p.get("labels", [])))
        trackers = [self._announce_url(u) for u in p.get("trackers", [])]
        paused = bool(p.get("paused", False))
        start = False
        existing = self._find(ih)
        fleet_only = bool(p.get("fleet_only"))
        if existing is None:
            data = self.metainfo(a) if self.metainfo is not None else None
            magnet = str(p.get("magnet") or f"magnet:?xt=urn:btih:{ih}")
            if fleet_only:  # never anything but the fleet's trackers (a refusal is permanent)
                if data is not None:
                    data = fleet_only_metainfo(data, trackers[0] if trackers else None)
                magnet = fleet_only_magnet(magnet)
            if seeds is None:
                seeds = self.webseeds(a) if self.webseeds is not None else []
            (self._seeded.add if seeds else self._seeded.discard)(ih)
            source: Any
            if data is not None:
                # The trackers go in with the torrent: Transmission 4.x neither announces to a
                # tracker added to a running torrent nor connects to the peers a tracker added
                # over RPC returns (seen with 4.1).
                try:
                    source = with_webseeds(with_trackers(data, trackers), seeds)
                except BadMetainfo:
                    # Metainfo tva cannot read goes in as it is, paused, and is started once
                    # the trackers are set after the add (Transmission judges the bytes).
                    source, start = data, not paused and bool(trackers)
            else:
                source = magnet_with_webseeds(magnet_with_trackers(magnet, trackers), seeds)
            kwargs: dict[str, Any] = {"paused": paused or start}
            if p.get("download_dir"):
                self._check_dir(p["download_dir"])
                kwargs["download_dir"] = p["download_dir"]
            if labels and self.client.capabilities().labels_on_add:
                kwargs["labels"] = labels
            self.client.write(lambda c: c.add_torrent(source, **kwargs))
            changed = "done"
        else:
            changed = "no-op"
        # Labels are checked after adding (3.00 ignores them on add; a torrent may be there
        # without them), and trackers are set after adding on every version.
        current = self._find(ih)
        if current is not None:
            if self._add_labels(current, labels):
                changed = "done"
            if self._add_trackers(current, trackers):
                changed = "done"
            current = self._find(ih) if fleet_only else None
            if current is not None and self._remove_trackers(current, keep_fleet=True):
                changed = "done"
            if start:
                self.client.write(lambda c: c.start_torrent([ih]))
        return changed

    def _add_trackers(self, t: Torrent, urls: list[str]) -> bool:
        """Add the trackers the plan names that are missing; replace stale URLs of this node's
        own tracker (an old token, or none)."""
        trackers = t.fields.get("trackers") or []
        have = {tr.get("announce") for tr in trackers}
        missing = [u for u in dict.fromkeys(self._announce_url(u) for u in urls) if u not in have]
        if missing and self.client.capabilities().tracker_list:
            tiers: dict[int, list[str]] = {}
            for tr in sorted(trackers, key=lambda x: (x.get("tier", 0), x.get("id", 0))):
                tiers.setdefault(int(tr.get("tier", 0)), []).append(str(tr.get("announce")))
            tier_list = [*tiers.values(), *([url] for url in missing)]
            self.client.write(
                lambda c: c.change_torrent([t.hash_string], tracker_list=tier_list))
        else:
            for url in missing:  # one per call: a refusal then names the URL it is about
                self._tracker_add(t.hash_string, url)
        if missing:  # re-read: tracker ids are what a removal names
            t = self._find(t.hash_string) or t
        stale = self._stale_fleet(t)
        if stale:
            self._tracker_remove(t.hash_string, stale)
        return bool(missing or stale)

    def _stale_fleet(self, t: Torrent) -> list[int]:
        if self.fleet_tracker is None:
            return []
        base, current = self.fleet_tracker
        return [int(tr["id"]) for tr in t.fields.get("trackers") or []
                if is_fleet(str(tr.get("announce")), base) and tr.get("announce") != current]

    def _remove_trackers(self, t: Torrent, *, keep_fleet: bool, urls: list[str] | None = None) -> bool:
        """Remove trackers: those in ``urls`` (all but the fleet's when None)."""
        base = self.fleet_tracker[0] if self.fleet_tracker is not None else None
        drop = []
        for tr in t.fields.get("trackers") or []:
            url = str(tr.get("announce"))
            fleet = base is not None and is_fleet(url, base)
            if (urls is None and not (keep_fleet and fleet)) or (urls is not None and url in urls):
                drop.append(int(tr["id"]))
        if drop:
            self._tracker_remove(t.hash_string, drop)
        return bool(drop)

    def _tracker_add(self, infohash: str, url: str) -> None:
        self.client.write(lambda c: c.change_torrent([infohash], tracker_add=[url]))

    def _tracker_remove(self, infohash: str, ids: list[int]) -> None:
        self.client.write(lambda c: c.change_torrent([infohash], tracker_remove=ids))

    def _start(self, a: Action) -> str:
        t = self._find(a.target)
        if t is None:
            raise WriteRefused(f"cannot start {a.target}: Transmission does not hold it")
        changed = self._drop_labels(t, a.params.get("labels_remove", []))
        if t.fields.get("status") != _STOPPED:
            return "done" if changed else "no-op"
        self.client.write(lambda c: c.start_torrent([a.target]))
        return "done"

    def _stop(self, a: Action) -> str:
        t = self._find(a.target)
        if t is None:
            return "no-op"
        changed = self._add_labels(t, a.params.get("labels_add", []))
        if t.fields.get("status") == _STOPPED:
            return "done" if changed else "no-op"
        self.client.write(lambda c: c.stop_torrent([a.target]))
        return "done"

    def _remove(self, a: Action, *, delete_data: bool) -> str:
        if self._find(a.target) is None:
            return "no-op"
        self.client.write(lambda c: c.remove_torrent([a.target], delete_data=delete_data))
        return "done"

    def _drop_webseeds(self, a: Action) -> str:
        """Add an incomplete torrent again without web seeds (its params are an add's)."""
        if not self._webseeds_of(a.target):
            return "no-op"
        return self._readd(a, [])

    def _add_webseeds(self, a: Action) -> str:
        """Add an incomplete torrent again with the web seeds its live holders hand out now;
        none to be had leaves it as it is (the peer path goes on)."""
        found = self._webseeds_of(a.target)
        if found is None or found:
            return "no-op"
        seeds = self.webseeds(a) if self.webseeds is not None else []
        return self._readd(a, seeds) if seeds else "no-op"

    def _webseeds_of(self, infohash: str) -> list[str] | None:
        """The web seeds of an incomplete torrent here that is not stopped; None when there is
        no such torrent (a stopped one is left alone: it fetches nothing, and whatever stopped
        it, the kill switch or the privacy gate, decides when it starts)."""
        found = self.client.read(lambda c: c.get_torrents(
            [infohash], arguments=["hashString", "webseeds", "percentDone", "status"]))
        if not found or found[0].fields.get("percentDone") == 1 or \
                found[0].fields.get("status") == _STOPPED:
            return None
        return list(found[0].fields.get("webseeds") or [])

    def _readd(self, a: Action, seeds: list[str]) -> str:
        """Remove the torrent (its data kept), add it again with ``seeds`` as its web seeds
        (Transmission takes them only with the torrent) and verify the data in place, so that
        what was fetched counts whatever the version does on an add (a paused add of 3.00 was
        seen to sit at 0 % over data in place)."""
        ih = a.target
        self.client.write(lambda c: c.remove_torrent([ih], delete_data=False))
        # The daemon's event loop removes it after answering; the add waits for that.
        poll(lambda: self._find(ih), lambda t: t is None, timeout=5)
        self._add(a.model_copy(update={"kind": ActionKind.add}), seeds=seeds)
        self.client.write(lambda c: c.verify_torrent([ih]))
        return "done"

    def _reannounce(self, a: Action) -> str:
        if self._find(a.target) is None:
            return "no-op"
        self.client.write(lambda c: c.reannounce_torrent([a.target]))
        return "done"

    def _verify(self, a: Action) -> str:
        if self._find(a.target) is None:
            return "no-op"
        self.client.write(lambda c: c.verify_torrent([a.target]))
        return "done"

    def _set_labels(self, a: Action) -> str:
        t = self._find(a.target)
        if t is None:
            return "no-op"
        have = set(t.fields.get("labels") or [])
        if "labels" in a.params:
            want = set(a.params["labels"])
        else:
            want = (have | set(a.params.get("labels_add", []))) - set(a.params.get("labels_remove", []))
        return "done" if self._relabel(t, have, want) else "no-op"

    def _add_labels(self, t: Torrent, labels: list[str]) -> bool:
        have = set(t.fields.get("labels") or [])
        return self._relabel(t, have, have | set(labels))

    def _drop_labels(self, t: Torrent, labels: list[str]) -> bool:
        have = set(t.fields.get("labels") or [])
        return self._relabel(t, have, have - set(labels))

    def _relabel(self, t: Torrent, have: set[str], want: set[str]) -> bool:
        if want == have:
            return False
        self.client.write(lambda c: c.change_torrent([t.hash_string], labels=sorted(want)))
        return True

    def _set_location(self, a: Action) -> str:
        t = self._find(a.target)
        location = a.params["location"]
        self._check_dir(location)
        if t is None or t.fields.get("downloadDir") == location:
            return "no-op"
        self.client.write(lambda c: c.move_torrent_data([a.target], location, move=True))
        return "done"

    def _set_limits(self, a: Action) -> str:
        if self._find(a.target) is None:
            return "no-op"
        kwargs = {k: v for k, v in a.params.items() if k in _LIMITS}
        self.client.write(lambda c: c.change_torrent([a.target], **kwargs))
        return "done"

    def _set_session(self, a: Action) -> str:
        """Set the session settings the action names that differ now (Transmission's names)."""
        have = self.client.session_get()
        changes = {k: v for k, v in a.params.items() if k in SESSION_KEYS and have.get(k) != v}
        if not changes:
            return "no-op"
        self.client.session_set(changes)
        return "done"

    def _set_trackers(self, a: Action) -> str:
        t = self._find(a.target)
        if t is None:
            return "no-op"
        added = self._add_trackers(t, list(a.params.get("add", [])))
        if added:
            t = self._find(a.target) or t
        removed = False
        if a.params.get("only_fleet"):
            removed = self._remove_trackers(t, keep_fleet=True)
        elif a.params.get("remove"):
            removed = self._remove_trackers(t, keep_fleet=True, urls=list(a.params["remove"]))
        return "done" if added or removed else "no-op"
