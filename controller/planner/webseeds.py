"""A fetch goes on with the right web seeds: bad ones dropped, missing ones added.

A re-pin is added with the live holders' web seeds (``controller.seeder``): between fleet
nodes that is what moves bytes at the link's speed (the peer path levels off near 8 MB/s).
Transmission takes web seeds only with the torrent, so whatever was true at the add stays:

- **Bad web seeds are dropped.** Transmission hash-checks every piece, so bad bytes never land,
  but it does not drop a web seed whose pieces fail: 3.00 asks it again without end (measured:
  482 MB fetched in 60 s for an item with two flipped bytes on its holder's disk). When an
  incomplete tva torrent that lists web seeds has thrown away at least :data:`CORRUPT_LIMIT`
  bytes (``corruptEver``), its node adds it again without web seeds, keeping and verifying the
  data it has (``drop-webseeds``), and goes on over the peer path, where Transmission bans a
  peer that sends bad pieces. Which holder is bad cannot be told from the torrent, so every web
  seed goes.
- **Missing web seeds are added.** A torrent added when no holder could hand out a web seed
  (none complete yet, its controller restarting, its status not seen yet) would fetch over the
  peer path for the rest of its life: a 20 GiB film at 8 MB/s takes 45 minutes. When such a
  torrent is downloading, still lacks at least :data:`MIN_REMAINING`, and a live fleet holder
  now has it complete, its node adds it again with the holders' web seeds, keeping and
  verifying its data (``add-webseeds``); at most once per :data:`RETRY`, and never for a
  torrent whose web seeds were dropped as bad.
"""

from __future__ import annotations

from datetime import timedelta

from controller.planner.context import Context
from controller.planner.gates import sources
from controller.planner.labels import TVA_LABEL
from controller.planner.ledger import Ledger
from controller.planner.placement import add_params
from controller.planner.text import names, size
from schemas.observed import TorrentState, TorrentStatus
from schemas.plan import ActionKind

__all__ = ["CORRUPT_LIMIT", "MIN_REMAINING", "RETRY", "RULE", "plan_webseeds"]

CORRUPT_LIMIT = 48 << 20
"""Bytes thrown away before the web seeds go: three of the fleet's largest pieces (16 MiB)."""
MIN_REMAINING = 64 << 20
"""Bytes still to fetch for web seeds to be worth a re-add and a verify (one lane's worth)."""
RETRY = timedelta(minutes=10)
"""How often a node asks its holders again for web seeds of one torrent."""
RULE = "webseeds"
"""What asked for these actions (``Action.rule``)."""


def plan_webseeds(ctx: Context, ledger: Ledger) -> None:
    for node, nf in sorted(ctx.nodes.items()):
        if not nf.actionable:
            continue
        for key, t in sorted(nf.torrents.items()):
            if (t.complete or t.state is TorrentState.stopped or TVA_LABEL not in t.labels
                    or ctx.item(key) is None):
                continue  # a stopped torrent fetches nothing; what stopped it decides
            if t.webseeds and t.corrupt >= CORRUPT_LIMIT:
                kind = ActionKind.drop_webseeds
                why = (f"{size(t.corrupt)} of {t.name} failed Transmission's hash check while it "
                       f"listed {t.webseeds} web seed(s): a holder serves bad bytes; {node} "
                       f"fetches it over the peer path alone (Transmission bans a peer that sends "
                       f"bad pieces), keeping and verifying what it has")
            elif not t.webseeds and (holders := _new_holders(ctx, node, key, t)):
                kind = ActionKind.add_webseeds
                left = int(t.size * (1 - t.percent_done))
                why = (f"{t.name} on {node} has no web seed and {size(left)} still to fetch; "
                       f"{names(holders)} {'holds' if len(holders) == 1 else 'hold'} it complete "
                       f"now: {node} adds it again with their web seeds, keeping and verifying "
                       f"what it has")
            else:
                continue
            ledger.act(node, kind, key, why, params=_params(ctx, node, key, t.labels), rule=RULE)


def _new_holders(ctx: Context, node: str, key: str, t: TorrentStatus) -> list[str]:
    """The live holders whose web seeds a torrent without any should get now (none: not now)."""
    if t.state is not TorrentState.downloading or t.size * (1 - t.percent_done) < MIN_REMAINING:
        return []
    journal = ctx.journal
    if journal.last_tried(node, ActionKind.drop_webseeds, key) is not None:
        return []  # its web seeds served bad bytes once: the peer path it is
    last = journal.last_tried(node, ActionKind.add_webseeds, key)
    if last is not None and ctx.now - last < RETRY:
        return []
    return [s["node"] for s in sources(ctx, node, key) if s["complete"]]


def _params(ctx: Context, node: str, key: str, labels: list[str]) -> dict[str, object]:
    """An add's params for the same torrent, its labels kept."""
    params = add_params(ctx, node, key, TVA_LABEL)
    params["labels"] = sorted({*params["labels"], *labels})
    return params
