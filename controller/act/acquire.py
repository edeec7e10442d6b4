"""The acquirer's actuator: carry out ``research`` actions (docs/acquisition.md).

One action is one search: query the action's sources (their Torznab indexers), judge every
release by the watchlist's policy (``controller.planner.ranking``), fetch the best one's
metainfo (its ``.torrent``, checked against the info-hash the indexer gave, or its magnet), and
commit an item file for it to the fleet repo (``writeback``). Nothing is committed unless all
of that worked: a malformed or hostile answer, an unreachable or refused indexer, or no
acceptable release is an error of the action (the journal records it, and the planner backs
the entry off).

The gates hold whatever the indexer or the fleet repo say: the item's provenance is its
source's, so an f2f_only source's release is f2f_only; a ``.torrent`` with the private flag
(BEP 27, a private tracker's release) is committed as ``provenance: private``, which the
loader always makes f2f_only (never on the public_swarm_face, never announced publicly).

Every search's result (the chosen release and why, the refused ones and why) is kept in
``<state>/<node>.acquisitions.json`` for ``tva fleet acquisitions``.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import torf
import yaml

from controller.atomic import write_atomic
from controller.clients.torznab import Query
from controller.display import safe
from controller.errors import PermanentError, TemporaryError, TvaError
from controller.planner.ranking import SIZE_TOLERANCE, Judged, Wanted, judge
from schemas.acquisition import AcquiredRecord, AcquisitionPolicy, Release
from schemas.desired import (
    API_VERSION,
    DesiredState,
    Indexer,
    Provenance,
    Source,
    infohash_from_magnet,
)
from schemas.plan import Action, ActionKind

__all__ = ["AcquireActuator", "Proposer", "Searcher", "committed", "item_file", "read_results"]

log = logging.getLogger("tva.acquire")

_PROPOSED = "proposed "
"""How the result of a search that committed begins (``committed``)."""
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
MAX_SHOWN = 20
"""Refused releases kept per result (the views show why each was refused)."""


class Searcher(Protocol):
    def search(self, source: str, indexer: Indexer, query: Query) -> list[Release]: ...

    def torrent(self, url: str) -> bytes | str: ...


class Proposer(Protocol):
    def pending(self, path: str, topic: str) -> bool: ...

    def propose(self, files: dict[str, bytes], message: str, topic: str) -> Any: ...


@dataclass(frozen=True)
class _Fetched:
    infohash: str
    size: int | None
    private: bool
    torrent: bytes | None
    magnet: str | None


@dataclass
class AcquireActuator:
    KINDS = frozenset({ActionKind.research})

    desired: Callable[[], DesiredState | None]
    searcher: Searcher
    proposer: Proposer
    clock: Callable[[], datetime]
    results_file: str | None = None
    _results: dict[str, Any] = field(default_factory=dict)

    def peer_only(self, action: Action) -> bool:
        return False

    def apply(self, action: Action) -> str:
        desired = self.desired()
        if desired is None:
            raise TemporaryError("no desired state yet")
        now = self.clock()
        try:
            result = self._search(desired, action, now)
        except TvaError as e:
            self._remember(action, now, {"outcome": "failed", "error": safe(str(e))})
            raise
        return result

    # -- one search -----------------------------------------------------------------------------

    def _search(self, desired: DesiredState, action: Action, now: datetime) -> str:
        p = action.params
        dead = action.target if _HEX40.match(action.target) else None
        episode_of: int | None = None
        if dead is not None:
            query, wanted, policy, sources, watchlist, collection = self._dead(desired, dead)
            what = f"a replacement for dead item {desired.items[dead].name} ({dead[:12]})"
            episode_of = desired.items[dead].episode
        else:
            watchlist = str(p["watchlist"])
            wl = desired.watchlists.get(watchlist)
            if wl is None:
                raise PermanentError(f"watchlist {watchlist} is no longer in the fleet repo")
            policy = wl.policy
            season = p.get("season")
            episode = p.get("episode")
            query = Query(str(p["mode"]), str(p["query"]),
                          int(season) if season is not None else None,
                          int(episode) if episode is not None else None)
            wanted = Wanted(query.q, query.season, query.episode)
            sources = [desired.sources[n] for n in p.get("sources", []) if n in desired.sources]
            collection = p.get("collection")
            what = str(p.get("what", action.target))
        sources = [s for s in sources if s.indexer is not None and s.effective_search
                   and s.provenance is not Provenance.private]
        if not sources:
            raise PermanentError(f"no source may be searched for {what}")
        releases, errors = self._query(sources, query)
        if not releases and errors:
            first = errors[0]
            raise first if len(errors) == len(sources) else PermanentError(str(first))
        judged = judge(releases, wanted, policy, now)
        by_source = {s.name: s for s in sources}
        for j in (j for j in judged if j.accepted):
            try:
                fetched = self._fetch(j.release)
            except TvaError as e:
                j_err = f"its metainfo could not be used: {e}"
                judged = [Judged(x.release, j_err) if x is j else x for x in judged]
                continue
            if wanted.size is not None and (fetched.size is None or abs(
                    fetched.size - wanted.size) > wanted.size * SIZE_TOLERANCE):
                judged = [Judged(x.release, "its .torrent's size is not the dead item's")
                          if x is j else x for x in judged]
                continue
            src = by_source[j.release.source]
            path = f"items/acquired/{fetched.infohash}.yaml"
            if self.proposer.pending(path, fetched.infohash):
                self._remember(action, now, self._summary(judged, j, policy, "pending"))
                return f"already proposed: {j.release.title} ({fetched.infohash[:12]})"
            known = desired.items.get(fetched.infohash)
            if known is not None:  # the dead item itself, or an item declared under another name
                judged = [Judged(x.release, f"already in the fleet repo as {known.name}")
                          if x is j else x for x in judged]
                continue
            record = AcquiredRecord(  # every string from the indexer shown safely, one line
                watchlist=watchlist, entry=what, source=src.name,
                release=_one_line(j.release.title),
                seeders=j.release.seeders, published=j.release.published, searched_at=now,
                reason=f"best of {sum(1 for x in judged if x.accepted)} acceptable of "
                       f"{len(judged)} results: {j.why(policy)}", supersedes=dead,
            )
            # The item's name is what the entry matches by (a film's), or the dead item's; else
            # the release's title (a show's episodes are matched by collection and number).
            name = (desired.items[dead].name if dead in desired.items else None) if dead else p.get("name")
            files = item_file(fetched, record, src, collection=collection, name=name,
                              episode=episode_of if dead else (
                                  query.episode if query.mode == "tvsearch" else None))
            verb = f"Supersede dead item {dead[:12]} with" if dead else "Acquire"
            message = (f"{verb} {_one_line(j.release.title)}\n\n"
                       f"For {what} ({'watchlist ' + watchlist if watchlist else 'the reaper'}); "
                       f"from source {src.name}.\n{record.reason}\n")
            proposal = self.proposer.propose(files, message, fetched.infohash)
            commit = getattr(proposal, "commit", None)
            pull = getattr(proposal, "pull_request", None)
            self._remember(action, now, self._summary(judged, j, policy, "proposed",
                                                      infohash=fetched.infohash, commit=commit,
                                                      pull_request=pull))
            return (f"{_PROPOSED}{j.release.title} ({fetched.infohash[:12]})"
                    + (f" in {str(commit)[:12]}" if commit else "")
                    + (f", pull request {pull}" if pull else ""))
        summary = self._summary(judged, None, policy, "nothing")
        summary["errors"] = [safe(str(e)) for e in errors]
        self._remember(action, now, summary)
        reasons = "; ".join(f"{_one_line(j.release.title)[:60]}: {j.refused}"
                            for j in judged[:3])
        raise PermanentError(f"no acceptable release for {what} among {len(judged)} results"
                             + (f" ({reasons})" if reasons else "")
                             + (f"; {len(errors)} source(s) failed: {errors[0]}" if errors else ""))

    def _dead(self, desired: DesiredState, key: str) -> tuple[
            Query, Wanted, AcquisitionPolicy, list[Source], str | None, str | None]:
        """The reaper's last rung: the dead item's name and size, from its own source (or
        every public searchable one when it names none). The replacement joins the dead item's
        collection under its name and episode, and names the item it supersedes."""
        item = desired.items.get(key)
        if item is None:
            raise PermanentError(f"{key} is no longer in the fleet repo")
        if item.f2f_only:
            raise PermanentError(f"{item.name} is f2f_only: never re-searched publicly")
        if item.source is not None and item.source in desired.sources:
            sources = [desired.sources[item.source]]
        else:
            sources = [s for s in desired.sources.values() if s.provenance is Provenance.public]
        sources.sort(key=lambda s: s.name)
        wanted = Wanted(item.name, size=item.size)
        return (Query("search", item.name), wanted, AcquisitionPolicy(min_seeders=1), sources,
                None, item.collection)

    def _query(self, sources: list[Source], query: Query) -> tuple[list[Release], list[TvaError]]:
        releases: list[Release] = []
        errors: list[TvaError] = []
        for src in sources:
            assert src.indexer is not None
            try:
                releases += self.searcher.search(src.name, src.indexer, query)
            except TvaError as e:
                log.warning("source %s: %s", src.name, e, extra={"event": "search-failed"})
                errors.append(e)
        return releases, errors

    def _fetch(self, r: Release) -> _Fetched:
        if r.link is not None:
            got = self.searcher.torrent(r.link)
            if isinstance(got, str):
                return self._magnet(r, got)
            try:
                t = torf.Torrent.read_stream(io.BytesIO(got), validate=True)
                infohash = str(t.infohash).lower()
            except (torf.TorfError, ValueError, TypeError) as e:
                raise PermanentError(f"not a valid .torrent ({e})") from None
            if r.infohash is not None and r.infohash != infohash:
                raise PermanentError(f"its .torrent has info-hash {infohash}, not the {r.infohash} "
                                     "the indexer announced")
            return _Fetched(infohash, int(t.size), bool(t.private), got, None)
        assert r.magnet is not None
        return self._magnet(r, r.magnet)

    @staticmethod
    def _magnet(r: Release, magnet: str) -> _Fetched:
        infohash = infohash_from_magnet(magnet)
        if infohash is None:
            raise PermanentError("its magnet link has no info-hash")
        if r.infohash is not None and r.infohash != infohash:
            raise PermanentError(f"its magnet has info-hash {infohash}, not {r.infohash}")
        # A magnet says nothing of the private flag: tr= parameters of a private tracker are
        # dropped by the f2f rules only when the source says so; keep only the info-hash.
        return _Fetched(infohash, r.size, False, None, f"magnet:?xt=urn:btih:{infohash}")

    # -- results for the views --------------------------------------------------------------------

    def _summary(self, judged: list[Judged], chosen: Judged | None, policy: AcquisitionPolicy,
                 outcome: str, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"outcome": outcome, **{k: v for k, v in extra.items() if v is not None}}
        if chosen is not None:
            out["chosen"] = {"title": safe(chosen.release.title), "source": chosen.release.source,
                             "why": safe(chosen.why(policy))}
        out["refused"] = [{"title": safe(j.release.title), "why": safe(j.refused or "")}
                          for j in judged if not j.accepted][:MAX_SHOWN]
        out["results"] = len(judged)
        return out

    def _remember(self, action: Action, now: datetime, result: dict[str, Any]) -> None:
        if self.results_file is None:
            return
        self._results = read_results(self.results_file) if not self._results else self._results
        self._results[action.target] = {"at": now.isoformat(), "reason": safe(action.reason),
                                        **result}
        try:
            write_atomic(self.results_file, json.dumps(self._results, indent=1, sort_keys=True).encode())
        except OSError as e:
            log.warning("cannot keep the search's result: %s", e)


def committed(result: str) -> bool:
    """Whether a ``research`` action's result says it committed (or proposed) a release."""
    return result.startswith(_PROPOSED)


def read_results(path: str) -> dict[str, Any]:
    """The last result per search target, as the acquirer kept them ({} when none)."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read(4 * 1024 * 1024))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _one_line(text: str) -> str:
    return " ".join(safe(text).split())[:200]


def item_file(fetched: _Fetched, record: AcquiredRecord, source: Source, *,
              collection: str | None, episode: int | None, name: str | None = None,
              ) -> dict[str, bytes]:
    """The files of one acquired item: ``items/acquired/<infohash>.yaml`` (a Collection of one
    item, ``part_of`` the watchlist entry's collection) and its ``.torrent`` when there is one."""
    key = fetched.infohash
    item: dict[str, Any] = {"name": _one_line(name or record.release)[:256] or key, "infohash": key}
    files: dict[str, bytes] = {}
    if fetched.torrent is not None:
        rel = f"torrents/acquired/{key}.torrent"
        item["torrent"] = rel
        files[rel] = fetched.torrent
    elif fetched.magnet is not None:
        item["magnet"] = fetched.magnet
    if fetched.size is not None:
        item["size"] = fetched.size
    if episode is not None:
        item["episode"] = episode
    if fetched.private:  # a private tracker's release: f2f_only, whatever the source says
        item["provenance"] = Provenance.private.value
    provenance = Provenance.private if fetched.private else source.provenance
    doc: dict[str, Any] = {
        "apiVersion": API_VERSION, "kind": "Collection", "name": f"acquired-{key[:16]}",
        "description": f"Acquired by tva from source {source.name}.",
        "provenance": provenance.value, "source": source.name, "labels": ["acquired"],
    }
    if collection:
        doc["part_of"] = collection
    doc["items"] = [item]
    doc["acquired"] = record.model_dump(mode="json", exclude_none=True)
    text = "# Written by the tva acquirer (docs/acquisition.md).\n" + yaml.safe_dump(
        doc, sort_keys=False, allow_unicode=False, width=100)
    files[f"items/acquired/{key}.yaml"] = text.encode()
    return files
