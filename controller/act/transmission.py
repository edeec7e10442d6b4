"""Carry out Transmission actions idempotently: an action that is already true does nothing.

The plan says what; this module only speaks Transmission's verbs through the node's
``TransmissionClient`` (shared with the observer) and checks the current state first, so
applying the same plan twice changes nothing the second time. The client translates errors: a
daemon that cannot be reached is a ``TemporaryError`` (retried with backoff by the applier),
refused credentials and refused changes are permanent.

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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from fastbencode import bdecode, bencode  # type: ignore[attr-defined]

from controller.clients.transmission import Torrent, TransmissionClient, WriteRefused
from schemas.plan import Action, ActionKind

__all__ = ["MetainfoSource", "TransmissionActuator"]

_FIELDS = ["id", "hashString", "status", "labels", "downloadDir", "trackers", "percentDone"]
_STOPPED = 0
_LIMITS = frozenset({"upload_limit", "upload_limited", "download_limit", "download_limited",
                     "seed_ratio_limit", "seed_ratio_mode", "peer_limit"})

MetainfoSource = Callable[[Action], bytes | None]
"""Returns the .torrent bytes for an ``add`` (from the repo or a holder), or None: use the magnet."""


class TransmissionActuator:
    """The Transmission verbs of a plan, for one daemon."""

    KINDS = frozenset({
        ActionKind.add, ActionKind.start, ActionKind.stop, ActionKind.remove_torrent,
        ActionKind.remove_data, ActionKind.reannounce, ActionKind.verify, ActionKind.set_labels,
        ActionKind.set_location, ActionKind.set_limits, ActionKind.set_trackers,
    })

    def __init__(self, client: TransmissionClient, metainfo: MetainfoSource | None = None) -> None:
        self.client = client
        self.metainfo = metainfo

    @property
    def url(self) -> str:
        return self.client.url

    def _find(self, infohash: str) -> Torrent | None:
        found = self.client.read(lambda c: c.get_torrents([infohash], arguments=_FIELDS))
        return found[0] if found else None

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
        }
        return handler[action.kind](action)

    # ------------------------------------------------------------------ verbs

    def _add(self, a: Action) -> str:
        p = a.params
        ih = a.target
        labels = sorted(set(p.get("labels", [])))
        trackers = list(p.get("trackers", []))
        paused = bool(p.get("paused", False))
        start = False
        existing = self._find(ih)
        if existing is None:
            data = self.metainfo(a) if self.metainfo is not None else None
            # The trackers go in with the torrent: Transmission 4.x neither announces to a
            # tracker added to a running torrent nor connects to the peers a tracker added
            # over RPC returns (seen with 4.1), so the fleet's tracker must be in the metainfo
            # (outside the info dict: the info-hash is unchanged) or in the magnet link.
            source: Any = (
                _with_trackers(data, trackers) if data is not None
                else _magnet_with_trackers(p.get("magnet") or f"magnet:?xt=urn:btih:{ih}", trackers)
            )
            # Metainfo tva cannot read goes in as it is, paused, and is started once the
            # trackers are set after the add (Transmission refuses it if it is not metainfo).
            start = not paused and bool(trackers) and source is data
            kwargs: dict[str, Any] = {"paused": paused or start}
            if p.get("download_dir"):
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
            if start:
                self.client.write(lambda c: c.start_torrent([ih]))
        return changed

    def _add_trackers(self, t: Torrent, urls: list[str]) -> bool:
        trackers = t.fields.get("trackers") or []
        have = {tr.get("announce") for tr in trackers}
        missing = [u for u in dict.fromkeys(urls) if u not in have]
        if not missing:
            return False
        if self.client.capabilities().tracker_list:
            tiers: dict[int, list[str]] = {}
            for tr in sorted(trackers, key=lambda x: (x.get("tier", 0), x.get("id", 0))):
                tiers.setdefault(int(tr.get("tier", 0)), []).append(str(tr.get("announce")))
            tier_list = [*tiers.values(), *([url] for url in missing)]
            self.client.write(
                lambda c: c.change_torrent([t.hash_string], tracker_list=tier_list))
        else:
            for url in missing:  # one per call: a refusal then names the URL it is about
                self._tracker_add(t.hash_string, url)
        return True

    def _tracker_add(self, infohash: str, url: str) -> None:
        self.client.write(lambda c: c.change_torrent([infohash], tracker_add=[url]))

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

    def _set_trackers(self, a: Action) -> str:
        t = self._find(a.target)
        if t is None:
            return "no-op"
        return "done" if self._add_trackers(t, list(a.params.get("add", []))) else "no-op"


def _with_trackers(metainfo: bytes, urls: Sequence[str]) -> bytes:
    """``metainfo`` with ``urls`` added to its announce list, a tier each (the info dict, and so
    the info-hash, untouched); unchanged when it is not a bencoded dict or has them already."""
    try:
        meta = bdecode(metainfo)
    except Exception:  # hostile or broken input: Transmission will judge it
        return metainfo
    if not isinstance(meta, dict) or not urls:
        return metainfo
    listed = meta.get(b"announce-list")
    tiers: list[list[bytes]] = [
        [u for u in tier if isinstance(u, bytes)]
        for tier in (listed if isinstance(listed, list) else []) if isinstance(tier, list)
    ]
    tiers = [tier for tier in tiers if tier]
    announce = meta.get(b"announce")
    if not tiers and isinstance(announce, bytes):
        tiers = [[announce]]  # BEP 12: an announce-list replaces announce, so keep it in
    have = {u for tier in tiers for u in tier}
    missing = [u.encode() for u in dict.fromkeys(urls) if u.encode() not in have]
    if not missing:
        return metainfo
    meta[b"announce-list"] = [*tiers, *([u] for u in missing)]
    if not isinstance(announce, bytes):
        meta[b"announce"] = meta[b"announce-list"][0][0]
    out: bytes = bencode(meta)
    return out


def _magnet_with_trackers(magnet: str, urls: Sequence[str]) -> str:
    """A magnet link with a ``tr=`` parameter for each of ``urls`` it lacks."""
    missing = [u for u in dict.fromkeys(urls) if f"tr={quote(u, safe='')}" not in magnet]
    return magnet + "".join(f"&tr={quote(u, safe='')}" for u in missing)
