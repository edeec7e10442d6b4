"""Acquisition: a watchlist's search policy, a release an indexer offers, and the record an
acquirer commits with what it chose (docs/acquisition.md).

The policy is the owner's word on what a good release is; the release is what a Torznab
indexer (Prowlarr, Jackett) answered, already parsed; the record travels in the committed item
file, so a reviewer sees why a release was chosen and what it satisfies or supersedes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from schemas.types import ByteSize, Duration, InfoHash, Name, parse_duration

__all__ = ["AcquiredRecord", "AcquisitionPolicy", "Release"]

_Word = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class AcquisitionPolicy(BaseModel):
    """What a watchlist accepts from an indexer, and what it prefers (``policy:``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resolutions: list[Annotated[str, StringConstraints(pattern=r"^[0-9]{3,4}p$")]] = Field(
        default_factory=list, max_length=16,
        description="Accepted resolutions, best first (e.g. [1080p, 720p]); a release whose "
        "title names none of them is refused. Empty: any, none preferred.",
    )
    min_size: ByteSize | None = Field(default=None, description="Smaller releases are refused.")
    max_size: ByteSize | None = Field(default=None, description="Larger releases are refused.")
    min_seeders: int = Field(default=1, ge=0, description="Releases with fewer seeders are refused.")
    preferred_groups: list[_Word] = Field(
        default_factory=list, max_length=64,
        description="Release groups preferred (the title's trailing -GROUP), best first.",
    )
    blocked_words: list[_Word] = Field(
        default_factory=list, max_length=256,
        description="A release whose title holds one of these words (case-insensitive) is refused.",
    )
    max_age: Duration | None = Field(
        default=None, description="Releases published longer ago than this are refused.")
    backoff: Duration = Field(
        default=parse_duration("30m"),
        description="After a failed search, the entry waits this long, doubling with each "
        "failure in a row up to the reaper's research_every.",
    )


class Release(BaseModel):
    """One result of a Torznab search, as parsed (every value came from the indexer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Name = Field(description="The Source whose indexer offered it.")
    title: str
    infohash: InfoHash | None = None
    size: int | None = None
    seeders: int | None = None
    published: datetime | None = None
    link: str | None = Field(default=None, description="The .torrent URL (the enclosure).")
    magnet: str | None = None
    categories: list[int] = Field(default_factory=list)


class AcquiredRecord(BaseModel):
    """``acquired:`` of a committed item file: what the acquirer chose, for what, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    watchlist: Name | None = Field(default=None, description="The watchlist it satisfies.")
    entry: Annotated[str, StringConstraints(max_length=512)] = Field(
        description="The search target: the watchlist entry, or the dead item re-searched.")
    source: Name = Field(description="The Source whose indexer offered the release.")
    release: Annotated[str, StringConstraints(max_length=512)] = Field(
        description="The release's title as the indexer gave it.")
    seeders: int | None = None
    published: datetime | None = None
    searched_at: datetime
    reason: Annotated[str, StringConstraints(max_length=2048)] = Field(
        description="Why this release was chosen over the others.")
    supersedes: InfoHash | None = Field(
        default=None, description="The dead item this release replaces (the reaper's last rung).")
