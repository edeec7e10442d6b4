"""Ranking an indexer's releases by a watchlist's policy: a pure function, no I/O, no clock.

Each release is either refused, with the first rule it fails (it does not match what is
wanted, a blocked word, outside the size bounds, too few seeders, too old, a resolution the
policy does not accept, no way to fetch it), or ranked. The order is, best first: the policy's
resolution order, its preferred groups, more seeders, newer, then title and info-hash so the
same answer always gives the same choice. The acquirer commits the first; ``tva fleet
acquisitions`` shows the rest with their reasons.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from controller.planner.text import size as size_text
from schemas.acquisition import AcquisitionPolicy, Release

__all__ = ["SIZE_TOLERANCE", "Judged", "Wanted", "group_of", "judge", "normalise", "resolution_of"]

_RES = re.compile(r"(?<![0-9])([0-9]{3,4})[pP](?![a-zA-Z0-9])")
_GROUP = re.compile(r"-([A-Za-z0-9]{2,32})$")
_EXT = re.compile(r"\.(mkv|mp4|avi|torrent)$", re.IGNORECASE)
SIZE_TOLERANCE = 0.02
"""A re-search matches the dead item's size within 2 % (a re-pack of the same release)."""


def normalise(text: str) -> str:
    """Lower case, words separated by single spaces (dots, dashes and brackets are spaces)."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.casefold()).split())


def resolution_of(title: str) -> str | None:
    m = _RES.search(title)
    return f"{m.group(1)}p" if m else None


def group_of(title: str) -> str | None:
    m = _GROUP.search(_EXT.sub("", title.strip()))
    return m.group(1) if m else None


@dataclass(frozen=True)
class Wanted:
    """What a search is for: every word of ``words`` in the title; for an episode, its
    SxxEyy tag; for a re-search, a size within ``SIZE_TOLERANCE`` of ``size``."""

    words: str
    season: int | None = None
    episode: int | None = None
    size: int | None = None

    def mismatch(self, title: str) -> str | None:
        norm = f" {normalise(title)} "
        missing = [w for w in normalise(self.words).split() if f" {w} " not in norm]
        if missing:
            return f"the title lacks {' '.join(missing)!r}"
        if self.episode is not None:
            tag = f"s{self.season or 1:02d}e{self.episode:02d}"
            if f" {tag} " not in norm:
                return f"not {tag.upper()}"
        return None


@dataclass(frozen=True)
class Judged:
    release: Release
    refused: str | None
    """The first rule the release fails, or None when it is acceptable."""
    key: tuple[int, int, int, float, str, str] = (0, 0, 0, 0.0, "", "")

    @property
    def accepted(self) -> bool:
        return self.refused is None

    def why(self, policy: AcquisitionPolicy) -> str:
        """The reasons it ranks where it does, for the commit and the views."""
        r = self.release
        parts = []
        res = resolution_of(r.title)
        if res and policy.resolutions:
            parts.append(f"{res} (#{policy.resolutions.index(res) + 1} of {', '.join(policy.resolutions)})")
        group = group_of(r.title)
        if group and group.casefold() in [g.casefold() for g in policy.preferred_groups]:
            parts.append(f"preferred group {group}")
        parts.append(f"{r.seeders if r.seeders is not None else '?'} seeders")
        if r.size is not None:
            parts.append(size_text(r.size))
        if r.published is not None:
            parts.append(f"published {r.published.date().isoformat()}")
        return ", ".join(parts)


def _refusal(r: Release, wanted: Wanted, policy: AcquisitionPolicy, now: datetime) -> str | None:
    miss = wanted.mismatch(r.title)
    if miss is not None:
        return f"does not match: {miss}"
    norm = f" {normalise(r.title)} "
    for word in policy.blocked_words:
        w = normalise(word)
        if w and f" {w} " in norm:
            return f"blocked word {word!r}"
    if r.link is None and r.magnet is None:
        return "no .torrent link and no magnet"
    if wanted.size is not None:
        if r.size is None or abs(r.size - wanted.size) > wanted.size * SIZE_TOLERANCE:
            return (f"size {size_text(r.size) if r.size is not None else 'unknown'} is not the "
                    f"dead item's {size_text(wanted.size)}")
    if policy.min_size is not None and (r.size is None or r.size < policy.min_size):
        return f"smaller than min_size {size_text(policy.min_size)}"
    if policy.max_size is not None and (r.size is None or r.size > policy.max_size):
        return f"larger than max_size {size_text(policy.max_size)}"
    if (r.seeders or 0) < policy.min_seeders:
        return f"{r.seeders or 0} seeders, fewer than min_seeders {policy.min_seeders}"
    if policy.max_age is not None:
        if r.published is None:
            return "no publication date, and the policy has max_age"
        if now - r.published > policy.max_age:
            return "older than max_age"
    if policy.resolutions:
        res = resolution_of(r.title)
        if res not in policy.resolutions:
            return f"resolution {res or 'unknown'} is not one of {', '.join(policy.resolutions)}"
    return None


def _key(r: Release, policy: AcquisitionPolicy) -> tuple[int, int, int, float, str, str]:
    res = resolution_of(r.title)
    res_rank = policy.resolutions.index(res) if res in policy.resolutions else len(policy.resolutions)
    groups = [g.casefold() for g in policy.preferred_groups]
    group = (group_of(r.title) or "").casefold()
    group_rank = groups.index(group) if group in groups else len(groups)
    published = -r.published.timestamp() if r.published is not None else 0.0
    return (res_rank, group_rank, -(r.seeders or 0), published, r.title, r.infohash or "")


def judge(releases: list[Release], wanted: Wanted, policy: AcquisitionPolicy,
          now: datetime) -> list[Judged]:
    """Every release judged: the acceptable ones first, best first; then the refused ones."""
    accepted: list[Judged] = []
    refused: list[Judged] = []
    seen: set[str] = set()
    # Sorted first, so which of two duplicates is kept does not depend on the answer's order.
    for r in sorted(releases, key=lambda r: (r.source, r.title, r.infohash or "", r.link or "")):
        ident = r.infohash or r.link or r.magnet or r.title
        if ident in seen:
            refused.append(Judged(r, "a duplicate of another result"))
            continue
        seen.add(ident)
        why = _refusal(r, wanted, policy, now)
        if why is None:
            accepted.append(Judged(r, None, _key(r, policy)))
        else:
            refused.append(Judged(r, why))
    accepted.sort(key=lambda j: j.key)
    refused.sort(key=lambda j: (j.release.title, j.release.infohash or ""))
    return accepted + refused
