"""A fetch whose web seeds serve bad bytes goes on over the peer path alone.

A re-pin is added with the live holders' web seeds (``controller.seeder``), and Transmission
hash-checks every piece whatever it came from, so bad bytes never land. But Transmission does
not drop a web seed whose pieces fail: 3.00 asks it again without end (measured: 482 MB fetched
in 60 s for an item with two flipped bytes on its holder's disk). The peer path is different:
Transmission bans a peer that sends bad pieces.

So when an incomplete tva torrent that lists web seeds has thrown away at least
:data:`CORRUPT_LIMIT` bytes (``corruptEver``), its node re-adds it without web seeds, keeping the
data it has and verifying it (``drop-webseeds``). Which holder is bad cannot be told from the
torrent, so every web seed goes; the peer path of every holder stays.
"""

from __future__ import annotations

from controller.planner.context import Context
from controller.planner.labels import TVA_LABEL
from controller.planner.ledger import Ledger
from controller.planner.placement import add_params
from controller.planner.text import size
from schemas.plan import ActionKind

__all__ = ["CORRUPT_LIMIT", "plan_webseed_drops"]

CORRUPT_LIMIT = 48 << 20
"""Bytes thrown away before the web seeds go: three of the fleet's largest pieces (16 MiB)."""


def plan_webseed_drops(ctx: Context, ledger: Ledger) -> None:
    for node, nf in sorted(ctx.nodes.items()):
        if not nf.actionable:
            continue
        for key, t in sorted(nf.torrents.items()):
            if (t.complete or not t.webseeds or t.corrupt < CORRUPT_LIMIT
                    or TVA_LABEL not in t.labels or ctx.item(key) is None):
                continue
            rules = ctx.rules_by_item.get(key, [])
            params = add_params(ctx, node, key, TVA_LABEL)
            params["labels"] = sorted({*params["labels"], *t.labels})
            params["webseeds"] = False
            ledger.act(node, ActionKind.drop_webseeds, key,
                       f"{size(t.corrupt)} of {t.name} failed Transmission's hash check while it "
                       f"listed {t.webseeds} web seed(s): a holder serves bad bytes; {node} "
                       f"fetches it over the peer path alone (Transmission bans a peer that "
                       f"sends bad pieces), keeping and verifying what it has",
                       params=params, rule=rules[0] if rules else None)
