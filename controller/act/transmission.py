"""Carry out Transmission actions idempotently: an action that is already true does nothing.

The plan says what; this module only speaks Transmission's verbs (transmission-rpc) and checks
the current state first, so applying the same plan twice changes nothing the second time.
Errors are translated at this edge: a daemon that cannot be reached is a ``TemporaryError``
(retried with backoff by the applier), refused credentials and refused arguments are permanent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import transmission_rpc
from transmission_rpc.error import TransmissionError

from controller.errors import PermanentError, TemporaryError
from controller.observe.transmission import translate
from schemas.plan import Action, ActionKind

_T = TypeVar("_T")

_FIELDS = ["id", "hashString", "status", "labels", "downloadDir", "trackers", "percentDone"]
_STOPPED = 0


class TransmissionRefused(PermanentError):
    """Transmission answered, but refused the request (bad argument, missing file...)."""


def connect(url: str, username: str | None, password: str | None, timeout: float = 30.0) -> transmission_rpc.Client:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PermanentError(f"Transmission RPC URL {url!r} is not an http(s) URL with a host")
    return guarded(
        url,
        lambda: transmission_rpc.Client(
            protocol=parts.scheme,  # type: ignore[arg-type]
            host=parts.hostname or "",
            port=parts.port or (443 if parts.scheme == "https" else 80),
            path=parts.path or "/transmission/rpc",
            username=username if username is not None else (unquote(parts.username) if parts.username else None),
            password=password if password is not None else (unquote(parts.password) if parts.password else None),
            timeout=timeout,
        ),
    )


def guarded(url: str, call: Callable[[], _T], timeout: float = 30.0) -> _T:
    """Run an RPC call, translating errors as the observer does (``observe.transmission.translate``);
    an answer with an error result is permanent here: retrying the same write cannot help."""
    try:
        return call()
    except (TransmissionError, OSError) as e:
        raise translate(e, url=url, timeout=timeout, password=None, refused=TransmissionRefused) from e


MetainfoSource = Callable[[Action], bytes | None]
"""Returns the .torrent bytes for an ``add`` (from the repo or a holder), or None: use the magnet."""


class TransmissionActuator:
    def __init__(
        self,
        client_factory: Callable[[], transmission_rpc.Client],
        url: str,
        metainfo: MetainfoSource | None = None,
    ) -> None:
        self._factory = client_factory
        self._client: transmission_rpc.Client | None = None
        self.url = url
        self.metainfo = metainfo

    KINDS = frozenset({
        ActionKind.add, ActionKind.start, ActionKind.stop, ActionKind.remove_torrent,
        ActionKind.remove_data, ActionKind.reannounce, ActionKind.verify, ActionKind.set_labels,
        ActionKind.set_location, ActionKind.set_limits, ActionKind.set_trackers,
    })

    @property
    def client(self) -> transmission_rpc.Client:
        if self._client is None:
            self._client = self._factory()
        return self._client

    def reset(self) -> None:
        """Forget the connection (after an unreachable error: reconnect next time)."""
        self._client = None

    def _call(self, fn: Callable[[transmission_rpc.Client], _T]) -> _T:
        try:
            return guarded(self.url, lambda: fn(self.client))
        except TemporaryError:
            self.reset()
            raise

    def _find(self, infohash: str) -> transmission_rpc.Torrent | None:
        found = self._call(lambda c: c.get_torrents([infohash], arguments=_FIELDS))
        return found[0] if found else None

    def holds_complete(self, infohash: str) -> bool:
        """Live: does this daemon hold a complete, error-free copy right now?"""
        t = self._call(lambda c: c.get_torrents([infohash], arguments=["hashString", "percentDone", "error"]))
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
        existing = self._find(ih)
        if existing is None:
            data = self.metainfo(a) if self.metainfo is not None else None
            source: Any = data if data is not None else p.get("magnet") or f"magnet:?xt=urn:btih:{ih}"
            kwargs: dict[str, Any] = {"paused": bool(p.get("paused", False))}
            if p.get("download_dir"):
                kwargs["download_dir"] = p["download_dir"]
            self._call(lambda c: c.add_torrent(source, **kwargs))
            changed = "done"
        else:
            changed = "no-op"
        # Labels and trackers are set after adding: Transmission 3.00 ignores labels on add.
        current = self._find(ih)
        if current is not None:
            have = set(current.fields.get("labels") or [])
            if labels and not set(labels) <= have:
                merged = sorted(have | set(labels))
                self._call(lambda c: c.change_torrent([ih], labels=merged))
                changed = "done"
            if self._add_trackers(current, p.get("trackers", [])):
                changed = "done"
        return changed

    def _add_trackers(self, t: transmission_rpc.Torrent, urls: list[str]) -> bool:
        have = {tr.get("announce") for tr in t.fields.get("trackers") or []}
        missing = [u for u in urls if u not in have]
        for url in missing:  # one per call: RPC 16 refuses a batch holding an existing one
            self._tracker_add(t.hash_string, url)
        return bool(missing)

    def _tracker_add(self, infohash: str, url: str) -> None:
        self._call(lambda c: c.change_torrent([infohash], tracker_add=[url]))

    def _start(self, a: Action) -> str:
        t = self._find(a.target)
        if t is None:
            raise TransmissionRefused(f"cannot start {a.target}: Transmission does not hold it")
        changed = self._drop_labels(t, a.params.get("labels_remove", []))
        if t.fields.get("status") != _STOPPED:
            return "done" if changed else "no-op"
        self._call(lambda c: c.start_torrent([a.target]))
        return "done"

    def _stop(self, a: Action) -> str:
        t = self._find(a.target)
        if t is None:
            return "no-op"
        changed = self._add_labels(t, a.params.get("labels_add", []))
        if t.fields.get("status") == _STOPPED:
            return "done" if changed else "no-op"
        self._call(lambda c: c.stop_torrent([a.target]))
        return "done"

    def _remove(self, a: Action, *, delete_data: bool) -> str:
        if self._find(a.target) is None:
            return "no-op"
        self._call(lambda c: c.remove_torrent([a.target], delete_data=delete_data))
        return "done"

    def _reannounce(self, a: Action) -> str:
        if self._find(a.target) is None:
            return "no-op"
        self._call(lambda c: c.reannounce_torrent([a.target]))
        return "done"

    def _verify(self, a: Action) -> str:
        if self._find(a.target) is None:
            return "no-op"
        self._call(lambda c: c.verify_torrent([a.target]))
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
        if want == have:
            return "no-op"
        self._call(lambda c: c.change_torrent([a.target], labels=sorted(want)))
        return "done"

    def _add_labels(self, t: transmission_rpc.Torrent, labels: list[str]) -> bool:
        have = set(t.fields.get("labels") or [])
        if set(labels) <= have:
            return False
        self._call(lambda c: c.change_torrent([t.hash_string], labels=sorted(have | set(labels))))
        return True

    def _drop_labels(self, t: transmission_rpc.Torrent, labels: list[str]) -> bool:
        have = set(t.fields.get("labels") or [])
        if not (set(labels) & have):
            return False
        self._call(lambda c: c.change_torrent([t.hash_string], labels=sorted(have - set(labels))))
        return True

    def _set_location(self, a: Action) -> str:
        t = self._find(a.target)
        location = a.params["location"]
        if t is None or t.fields.get("downloadDir") == location:
            return "no-op"
        self._call(lambda c: c.move_torrent_data([a.target], location, move=True))
        return "done"

    def _set_limits(self, a: Action) -> str:
        if self._find(a.target) is None:
            return "no-op"
        allowed = {"upload_limit", "upload_limited", "download_limit", "download_limited",
                   "seed_ratio_limit", "seed_ratio_mode", "peer_limit"}
        kwargs = {k: v for k, v in a.params.items() if k in allowed}
        self._call(lambda c: c.change_torrent([a.target], **kwargs))
        return "done"

    def _set_trackers(self, a: Action) -> str:
        t = self._find(a.target)
        if t is None:
            return "no-op"
        return "done" if self._add_trackers(t, list(a.params.get("add", []))) else "no-op"
