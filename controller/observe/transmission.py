"""Observe one Transmission daemon over its RPC: torrents, session rates and free space.

The only module that reads from Transmission (the actuator writes). It asks, converts to
``schemas.observed`` models and decides nothing. The choices that matter (figures in
docs/performance.md):

- **One ``torrent-get`` with only ``TORRENT_FIELDS``, in RPC 16's ``table`` format** (field
  names once, not once per torrent: a third of the bytes). The answer's shape says whether the
  daemon honoured it (an older one sends objects), and its header row, not the order asked for,
  says which column is which: Transmission 4.x leaves out a field it does not know, 3.00 sends 0
  for it; a missing field reads as empty. 4.x sends ``percentDone`` as a float (``1.0``). Tracker details (``trackerStats``,
  about 600 bytes per tracker, more than all other fields together) come from a second, small
  ``torrent-get`` for the torrents whose tracker reported an error or a warning (``error`` 1 or
  2) only: what the reaper reads (an "unregistered" answer, an outage, and from which tracker).
  Every other torrent has ``trackers == []``, except those in ``watch`` (the fleet-only items:
  the planner checks that no foreign tracker is on them); ``all_tracker_stats=True`` asks for
  all of them, at about twice the cost. A fleet tracker's token is redacted from every announce
  URL (``controller.announce``): statuses are published.
- **Deterministic output**: torrents sorted by infohash.
- **Unchanged torrents are not converted again**: each torrent's row is compared with the last
  pass's and the model reused when equal (``_Memory.known``).
- **Incremental passes** ask for ``ids="recently-active"``: torrents whose activity date is in
  the daemon's fixed 60-second window, plus the integer ids removed in it. Integer ids change
  when the daemon restarts, so the observer keeps an id -> infohash map and the daemon's session
  id from its last pass, and makes a full pass instead when: the daemon restarted; the last pass
  is older than ``max_gap`` (the window no longer covers the gap); the caller's snapshot is not
  the observer's last result; the merged result does not hold as many torrents as the daemon
  says it has; or the last full pass is older than ``full_every`` (changes that do not touch the
  activity date, such as a label edit, are only seen by full passes). A removed id missing from
  the map is ignored: every snapshot torrent's id is in the map, so that torrent was never in
  the snapshot, and a full pass would not find it either.
- **Unreachable is not empty.** Connection refused, timeout or an answer that is not Transmission
  RPC gives ``TransmissionStatus(reachable=False, error=...)``, never an empty list that a planner
  could read as "holds nothing".
- **Refused credentials raise ``AuthError``** (a ``PermanentError``): retrying cannot help, a
  person must fix the device's credentials reference or the daemon's ``rpc-whitelist``.
  :func:`unreachable` turns it into a status for a caller that publishes one anyway.
- **One client per daemon.** The connection, credentials and error translation are the
  node's ``TransmissionClient`` (``controller.clients.transmission``), shared with the actuator.
- **Free space** comes from the RPC ``free-space`` method, i.e. from the daemon's host. RPC 16
  (Transmission 3.00) reports no total size: the total is then the capacity the caller declares
  for the root (``StorageRoot.capacity``), else 0 (unknown). RPC 17+ ``total_size`` wins. A
  path the daemon cannot measure is unreachable storage: 3.00 refuses the request, 4.x answers
  "success" with ``size-bytes`` -1.
"""

from __future__ import annotations

import gc
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from controller.announce import redact
from controller.clients.transmission import (
    DEFAULT_TIMEOUT,
    ReadRefused,
    RpcMethod,
    TransmissionClient,
)
from controller.errors import PermanentError, TemporaryError, UnreachableError
from schemas.desired import SESSION_KEYS
from schemas.observed import (
    KNOWN_RPC_VERSIONS,
    SessionStatus,
    StorageStatus,
    TorrentState,
    TorrentStatus,
    TrackerResult,
    TransmissionStatus,
)

__all__ = [
    "DEFAULT_FULL_EVERY",
    "DEFAULT_MAX_GAP",
    "RECENTLY_ACTIVE_WINDOW",
    "TORRENT_FIELDS",
    "TRACKER_FIELDS",
    "Observation",
    "TransmissionObserver",
    "unreachable",
]

TORRENT_FIELDS: tuple[str, ...] = (
    "id",
    "hashString",
    "name",
    "sizeWhenDone",
    "percentDone",
    "status",
    "error",
    "errorString",
    "labels",
    "downloadDir",
    "peersConnected",
    "peersSendingToUs",
    "rateDownload",
    "rateUpload",
    "uploadedEver",
    "downloadedEver",
    "corruptEver",
    "webseeds",
    "activityDate",
    "doneDate",
    "addedDate",
)
"""The torrent fields every pass asks for; ``id`` only feeds the incremental bookkeeping."""

TRACKER_FIELDS: tuple[str, ...] = ("id", "hashString", "trackerStats")
"""Asked for only for torrents with a tracker error or warning (or all, if configured)."""

TRACKER_ERRORS = frozenset({1, 2})
"""Transmission's ``error`` codes for a tracker warning and a tracker error (3 is local)."""

RECENTLY_ACTIVE_WINDOW = 60.0
"""Seconds covered by ``ids="recently-active"`` (``RECENTLY_ACTIVE_SECONDS`` in Transmission)."""

DEFAULT_MAX_GAP = 45.0
"""Longest gap between passes for which an incremental pass is trusted: the 60-second window
minus margin for the daemon's one-second clock and the time a request takes."""

DEFAULT_FULL_EVERY = 300.0
"""Longest time between two full passes when the caller asks only for incremental ones."""

# Transmission's status codes (RPC >= 14), by index.
_STATES: tuple[TorrentState, ...] = (
    TorrentState.stopped,
    TorrentState.check_pending,
    TorrentState.checking,
    TorrentState.download_pending,
    TorrentState.downloading,
    TorrentState.seed_pending,
    TorrentState.seeding,
)

_Raw = dict[str, Any]
_Row = list[Any]


@dataclass(frozen=True)
class Observation:
    """One pass: the status, and what changed since the snapshot it was compared with.

    ``changed`` lists infohashes that are new or differ in any observed field, ``removed`` those
    no longer held; both sorted. ``session_changed`` is true when reachability, the error, the
    daemon's version or its session rates differ. ``full`` says whether the daemon was asked for
    every torrent (first pass, fallback) or only the recently active ones.
    """

    status: TransmissionStatus
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    session_changed: bool = False
    full: bool = True

    @property
    def nothing_changed(self) -> bool:
        return not (self.changed or self.removed or self.session_changed)


@dataclass(frozen=True)
class _Session:
    id: str
    rpc_version: int
    version: str
    settings: SessionStatus
    download_rate: int
    upload_rate: int
    torrent_count: int


@dataclass
class _Memory:
    """What the last successful pass leaves for the next one (all for one daemon session)."""

    status: TransmissionStatus
    session_id: str
    asked_at: float
    """Monotonic time at which the pass's torrent-get was sent."""
    full_at: float
    """Monotonic time at which the last full pass's torrent-get was sent."""
    ids: dict[int, str] = field(default_factory=dict)
    """Transmission's integer id -> infohash, for every torrent in ``status``."""
    known: dict[str, tuple[_Row, TorrentStatus]] = field(default_factory=dict)
    """Infohash -> the daemon's answer (a row) and its conversion, for every torrent in
    ``status``."""


@dataclass(frozen=True)
class _Answer:
    """One ``torrent-get`` answer as rows: one list of values per torrent, in ``header`` order.

    RPC 16's ``table`` format sends the field names once instead of once per torrent: a third of
    the bytes, a third less time for the daemon to write them and half the time to parse them,
    and rows compare faster than dicts. A daemon older than RPC 16 ignores ``format`` and sends
    objects, which ``parse`` turns into rows.
    """

    header: list[str]
    rows: list[_Row]
    removed: list[int]
    at_hash: int
    at_id: int

    @classmethod
    def parse(cls, arguments: _Raw, fields: list[str]) -> _Answer:
        torrents: list[Any] = arguments.get("torrents") or []
        if torrents and isinstance(torrents[0], list):
            header, rows = [str(f) for f in torrents[0]], torrents[1:]
        else:
            header = list(fields)
            rows = [[t.get(f) for f in header] for t in torrents]
        if "trackerStats" not in header:
            header.append("trackerStats")  # filled in only for rows that have tracker details
        return cls(
            header=header,
            rows=rows,
            removed=list(arguments.get("removed") or ()),
            at_hash=header.index("hashString"),
            at_id=header.index("id"),
        )

    def convert(self, row: _Row) -> TorrentStatus:
        return _torrent(dict(zip(self.header, row, strict=False)))

    def news(self, known: Mapping[str, tuple[_Row, TorrentStatus]], ids: Mapping[int, str]) -> bool:
        """Does this answer hold anything that ``known`` and ``ids`` do not?"""
        if any(i in ids for i in self.removed):
            return True
        for row in self.rows:
            infohash = row[self.at_hash]
            hit = known.get(infohash)
            if hit is None or hit[0] != row or ids.get(row[self.at_id]) != infohash:
                return True
        return False


def unreachable(error: str | BaseException) -> TransmissionStatus:
    """The status of a daemon that could not be observed (never an empty holding list)."""
    return TransmissionStatus(reachable=False, error=str(error))


class TransmissionObserver:
    """Read-only view of one Transmission daemon, through its ``TransmissionClient``.

    ``client`` is the node's client (shared with the actuator); a URL string makes a client of
    its own with ``username``, ``password`` and ``timeout`` (for one-off looks and tests).
    ``clock`` (monotonic seconds) is injectable so tests can age the last pass. Not
    thread-safe: one observer per daemon, used by one loop.
    """

    def __init__(
        self,
        client: TransmissionClient | str,
        username: str | None = None,
        password: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_gap: float = DEFAULT_MAX_GAP,
        full_every: float = DEFAULT_FULL_EVERY,
        all_tracker_stats: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(client, str):
            client = TransmissionClient(client, username, password, timeout=timeout)
        self.client = client
        self._max_gap = max_gap
        self._full_every = full_every
        self._fields = list(TORRENT_FIELDS)
        if all_tracker_stats:
            self._fields.append("trackerStats")
        self._all_tracker_stats = all_tracker_stats
        self._clock = clock
        self._memory: _Memory | None = None
        self.watch: frozenset[str] = frozenset()
        """Infohashes whose trackers are read on every pass (fleet-only items)."""

    @property
    def url(self) -> str:
        """The daemon's URL, without credentials."""
        return self.client.url

    # -- public passes ------------------------------------------------------------------------

    def full(self) -> TransmissionStatus:
        """Every torrent, the daemon's version and rates; ``reachable=False`` if it cannot look."""
        return self.observe_full().status

    def observe_full(self, previous: TransmissionStatus | None = None) -> Observation:
        """A full pass, with what changed since ``previous`` (everything, when there is none)."""
        try:
            return self._full_pass(previous, self._session())
        except (UnreachableError, ReadRefused) as e:
            return self._lost(previous, e)

    def incremental(self, previous: TransmissionStatus) -> Observation:
        """Only what changed since ``previous``, which must be this observer's last result.

        Falls back to a full pass whenever the recently-active window cannot be trusted (see the
        module docstring); ``Observation.full`` says which it was.
        """
        memory = self._memory
        if (
            memory is None
            or not previous.reachable
            or (memory.status is not previous and memory.status != previous)
            or self._clock() - memory.asked_at > self._max_gap
            or self._clock() - memory.full_at > self._full_every
        ):
            return self.observe_full(previous)
        try:
            return self._incremental_pass(memory)
        except (UnreachableError, ReadRefused) as e:
            return self._lost(previous, e)

    def free_space(
        self, paths: Iterable[str], capacity: Mapping[str, int] | None = None
    ) -> list[StorageStatus]:
        """Free (and, where known, total) bytes for each path, as the daemon's host sees them.

        ``capacity`` maps a path to its declared capacity, used as the total when the daemon
        does not report one (RPC 16). A path the daemon cannot measure (it does not exist
        there), or every path when the daemon is unreachable, comes back ``reachable=False``.
        """
        declared = capacity or {}
        out: list[StorageStatus] = []
        lost = False
        for path in paths:
            total = declared.get(path, 0)
            if not lost:
                try:
                    answer = self.client.request(RpcMethod.FreeSpace, {"path": path})
                except ReadRefused:
                    pass
                except UnreachableError:
                    lost = True
                else:
                    free = int(answer.get("size-bytes", -1))
                    reported = int(answer.get("total_size") or 0)
                    if free >= 0:  # 4.x answers a missing path with success and -1
                        out.append(
                            StorageStatus(
                                path=path,
                                free=free,
                                total=reported if reported > 0 else total,
                            )
                        )
                        continue
            out.append(StorageStatus(path=path, free=0, total=total, reachable=False))
        return out

    def close(self) -> None:
        """Drop the connection and the memory; the next pass reconnects and looks at everything."""
        self.client.reset()
        self._memory = None

    # -- passes -------------------------------------------------------------------------------

    def _full_pass(self, previous: TransmissionStatus | None, session: _Session) -> Observation:
        memory = self._memory if self._memory and self._memory.session_id == session.id else None
        known = memory.known if memory else {}
        asked_at = self._clock()
        with _gc_paused():
            answer = self._torrents(None)
            fresh: dict[str, tuple[_Row, TorrentStatus]] = {}
            ids: dict[int, str] = {}
            at_hash, at_id = answer.at_hash, answer.at_id
            for row in answer.rows:
                infohash = row[at_hash]
                hit = known.get(infohash)
                torrent = hit[1] if hit is not None and hit[0] == row else answer.convert(row)
                fresh[infohash] = (row, torrent)
                ids[row[at_id]] = infohash
            torrents = [fresh[h][1] for h in sorted(fresh)]
        status = TransmissionStatus(
            reachable=True,
            rpc_version=session.rpc_version,
            version=session.version,
            session=session.settings,
            torrents=torrents,
            download_rate=session.download_rate,
            upload_rate=session.upload_rate,
        )
        self._memory = _Memory(
            status=status,
            session_id=session.id,
            asked_at=asked_at,
            full_at=asked_at,
            ids=ids,
            known=fresh,
        )
        return _compare(previous, status)

    def _incremental_pass(self, memory: _Memory) -> Observation:
        previous = memory.status
        session = self._session()
        if session.id != memory.session_id:  # restarted: its integer ids mean other torrents now
            return self._full_pass(previous, session)
        asked_at = self._clock()
        answer = self._torrents("recently-active")
        if not answer.news(memory.known, memory.ids):  # the usual case: copy nothing
            known, ids = memory.known, memory.ids
            torrents = previous.torrents
            changed: list[str] = []
            removed: list[str] = []
        else:
            known, ids = dict(memory.known), dict(memory.ids)
            touched: set[str] = set()
            # Removals first: a torrent removed and added again between passes has a new id.
            for torrent_id in answer.removed:
                infohash = ids.pop(torrent_id, None)
                if infohash is not None:
                    known.pop(infohash, None)
                    touched.add(infohash)
            for row in answer.rows:
                infohash = row[answer.at_hash]
                ids[row[answer.at_id]] = infohash
                hit = known.get(infohash)
                if hit is None or hit[0] != row:
                    known[infohash] = (row, answer.convert(row))
                    touched.add(infohash)
            torrents, changed, removed = _merged(previous.torrents, known, touched)
        if len(known) != session.torrent_count:
            # Something the window does not explain (or a torrent added between the two
            # requests): look at everything.
            return self._full_pass(previous, self._session())
        status = previous.model_copy(
            update={
                "torrents": torrents,
                "rpc_version": session.rpc_version,
                "version": session.version,
                "session": session.settings,
                "download_rate": session.download_rate,
                "upload_rate": session.upload_rate,
            }
        )
        self._memory = _Memory(
            status=status,
            session_id=session.id,
            asked_at=asked_at,
            full_at=memory.full_at,
            ids=ids,
            known=known,
        )
        return Observation(
            status=status,
            changed=tuple(changed),
            removed=tuple(removed),
            session_changed=_session_differs(previous, status),
            full=False,
        )

    def _lost(self, previous: TransmissionStatus | None, error: TemporaryError) -> Observation:
        self.close()
        status = unreachable(error)
        return Observation(
            status=status,
            session_changed=previous is None or _session_differs(previous, status),
        )

    def _torrents(self, ids: str | None) -> _Answer:
        """One ``torrent-get`` (all torrents, or ``"recently-active"``) in RPC 16's ``table``
        format, plus tracker details for the torrents with a tracker error or warning."""
        arguments: _Raw = {"fields": list(self._fields), "format": "table"}
        if ids is not None:
            arguments["ids"] = ids
        answer = _Answer.parse(self.client.torrent_get(arguments), self._fields)
        if not self._all_tracker_stats:
            at_error = answer.header.index("error")
            watch = self.watch
            complaining: list[str | int] = [
                row[answer.at_hash] for row in answer.rows
                if row[at_error] in TRACKER_ERRORS or row[answer.at_hash] in watch
            ]
            if complaining:
                extra = _Answer.parse(
                    self.client.torrent_get(
                        {"fields": list(TRACKER_FIELDS), "ids": complaining, "format": "table"}
                    ),
                    list(TRACKER_FIELDS),
                )
                at_stats = extra.header.index("trackerStats")
                details = {row[extra.at_hash]: row[at_stats] for row in extra.rows}
                for row in answer.rows:
                    stats = details.get(row[answer.at_hash])
                    if stats is not None:
                        row.append(stats)  # read as "trackerStats": see _Answer.convert
        return answer

    def _session(self) -> _Session:
        """The daemon's session id (new on every start), version and rates: two small requests."""
        session = self.client.session()
        stats = self.client.read(lambda c: c.session_stats())
        return _Session(
            id=str(session.fields.get("session-id", "")),
            rpc_version=int(session.fields.get("rpc-version", 0)),
            version=str(session.fields.get("version", "")),
            settings=_settings(session.fields),
            download_rate=int(stats.fields.get("downloadSpeed", 0)),
            upload_rate=int(stats.fields.get("uploadSpeed", 0)),
            torrent_count=int(stats.fields.get("torrentCount", 0)),
        )


# -- conversion -------------------------------------------------------------------------------


def _torrent(raw: Mapping[str, Any]) -> TorrentStatus:
    """One torrent, from the daemon's field names to tva's (a missing field reads as empty)."""
    code = raw["status"]
    if not isinstance(code, int) or not 0 <= code < len(_STATES):
        raise PermanentError(
            f"Transmission reported status {code!r} for torrent {raw['hashString']}, which tva "
            f"does not know (it reads RPC versions {_known_versions()})"
        )
    return TorrentStatus(
        infohash=raw["hashString"].lower(),
        name=raw.get("name") or "",
        size=raw.get("sizeWhenDone") or 0,
        percent_done=min(max(float(raw.get("percentDone") or 0.0), 0.0), 1.0),
        state=_STATES[code],
        error=raw.get("error") or 0,
        error_string=raw.get("errorString") or "",
        labels=list(raw.get("labels") or ()),
        download_dir=raw.get("downloadDir") or "",
        peers_connected=raw.get("peersConnected") or 0,
        peers_sending=raw.get("peersSendingToUs") or 0,
        rate_download=raw.get("rateDownload") or 0,
        rate_upload=raw.get("rateUpload") or 0,
        uploaded=raw.get("uploadedEver") or 0,
        downloaded=raw.get("downloadedEver") or 0,
        corrupt=raw.get("corruptEver") or 0,
        webseeds=len(raw.get("webseeds") or ()),
        last_activity=_when(raw.get("activityDate")),
        done_date=_when(raw.get("doneDate")),
        added_date=_when(raw.get("addedDate")),
        trackers=[_tracker(t) for t in raw.get("trackerStats") or ()],
    )


def _settings(raw: Mapping[str, Any]) -> SessionStatus:
    """The session settings that decide what leaks (a missing flag reads as on: privacy first)."""
    port = raw.get("peer-port")
    encryption = raw.get("encryption")
    utp = raw.get("utp-enabled")
    return SessionStatus(
        settings={k: raw[k] for k in SESSION_KEYS if isinstance(raw.get(k), bool | int | float | str)},
        dht=bool(raw.get("dht-enabled", True)),
        pex=bool(raw.get("pex-enabled", True)),
        lpd=bool(raw.get("lpd-enabled", True)),
        utp=bool(utp) if utp is not None else None,
        encryption=str(encryption) if encryption is not None else None,
        peer_port=int(port) if isinstance(port, int) else None,
    )


def _known_versions() -> str:
    return f"{min(KNOWN_RPC_VERSIONS)} to {max(KNOWN_RPC_VERSIONS)}"


def _tracker(raw: Mapping[str, Any]) -> TrackerResult:
    announced = bool(raw.get("hasAnnounced"))
    return TrackerResult(
        announce=redact(raw.get("announce") or ""),
        last_announce_ok=bool(raw.get("lastAnnounceSucceeded")) if announced else None,
        last_announce_result=(raw.get("lastAnnounceResult") or "") if announced else "",
        last_announce_time=_when(raw.get("lastAnnounceTime")),
        seeders=_count(raw.get("seederCount")),
        leechers=_count(raw.get("leecherCount")),
    )


def _when(epoch: int | None) -> datetime | None:
    """Transmission's epoch seconds (0 = never) as an aware UTC datetime."""
    return datetime.fromtimestamp(epoch, UTC) if epoch and epoch > 0 else None


def _count(value: int | None) -> int | None:
    """Tracker counts: -1 means the tracker never said."""
    return value if value is not None and value >= 0 else None


def _merged(
    before: list[TorrentStatus],
    known: Mapping[str, tuple[_Row, TorrentStatus]],
    touched: Iterable[str],
) -> tuple[list[TorrentStatus], list[str], list[str]]:
    """``before`` (sorted by infohash) updated to ``known`` at the ``touched`` infohashes only.

    Returns the new sorted list, the infohashes changed or added, and those removed. A torrent
    whose answer differs only in what tva does not keep converts to an equal model: unchanged.
    """
    torrents = list(before)
    changed: list[str] = []
    removed: list[str] = []
    for infohash in sorted(touched):
        i = bisect_left(torrents, infohash, key=_by_infohash)
        present = i < len(torrents) and torrents[i].infohash == infohash
        hit = known.get(infohash)
        if hit is None:
            if present:
                del torrents[i]
                removed.append(infohash)
        elif not present:
            torrents.insert(i, hit[1])
            changed.append(infohash)
        elif torrents[i] != hit[1]:
            torrents[i] = hit[1]
            changed.append(infohash)
    return torrents, changed, removed


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Parsing a large answer allocates hundreds of thousands of objects and no cyclic garbage;
    pausing the cyclic collector meanwhile saves up to a fifth of a full pass over 10,000."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _by_infohash(torrent: TorrentStatus) -> str:
    return torrent.infohash


def _session_differs(old: TransmissionStatus, new: TransmissionStatus) -> bool:
    return (
        old.reachable != new.reachable
        or old.error != new.error
        or old.rpc_version != new.rpc_version
        or old.version != new.version
        or old.download_rate != new.download_rate
        or old.upload_rate != new.upload_rate
        or old.session != new.session
    )


def _compare(previous: TransmissionStatus | None, status: TransmissionStatus) -> Observation:
    if previous is None:
        return Observation(
            status=status,
            changed=tuple(t.infohash for t in status.torrents),
            session_changed=True,
        )
    before = {t.infohash: t for t in previous.torrents}
    changed = []
    for torrent in status.torrents:
        old = before.get(torrent.infohash)
        if old is not torrent and old != torrent:  # reused models make the usual case cheap
            changed.append(torrent.infohash)
    return Observation(
        status=status,
        changed=tuple(changed),
        removed=tuple(sorted(before.keys() - {t.infohash for t in status.torrents})),
        session_changed=_session_differs(previous, status),
    )
