"""Rendezvous (highest-random-weight) order of devices for an item.

Every controller must compute the same order with no coordination, and adding or removing a
device must change the order of as few items as possible. HRW does both: each (item, device)
pair gets a pseudo-random score from a stable hash, and an item's order is its devices sorted by
score. Adding a device only changes the items for which the new device scores highest (about
1/N of them); removing one only affects the items it held.

The score is an integer (64 bits of BLAKE2b), not a float: weighted variants of HRW need
logarithms, and a one-ulp difference between two platforms' ``log`` could make two nodes disagree.
Capacity is handled by the free-space filter instead of by weights.
"""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import blake2b

__all__ = ["hrw_order", "score"]


def score(item: str, node: str) -> int:
    """The weight of ``node`` for ``item``: 64 bits of BLAKE2b over both names."""
    digest = blake2b(f"{item}\x00{node}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def hrw_order(item: str, nodes: Iterable[str]) -> list[str]:
    """``nodes`` in ``item``'s rendezvous order: highest score first, ties by name."""
    return sorted(nodes, key=lambda n: (-score(item, n), n))
