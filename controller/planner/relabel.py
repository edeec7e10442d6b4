"""Labels lost in a crash of Transmission are set again.

tva recognises its torrents by their labels (``labels.py``), and never removes data from a
torrent without ``tva``. Transmission writes a torrent's labels to its resume file some time
after the add, so a ``kill -9`` right after an add brings the torrent back without them: it
would then never be pruned, moved or counted as tva's. The journal is the planner's memory of
what this node added; a torrent it says the node tried to add, held there without ``tva``, gets
``tva`` and the labels of the custody rules that select it again (a ``set-labels`` action with
``labels_add``, so no label someone else put there is taken away).
"""

from __future__ import annotations

from controller.planner.context import Context
from controller.planner.labels import TVA_LABEL, custody_label
from controller.planner.ledger import Ledger
from schemas.plan import ActionKind

__all__ = ["plan_relabel"]


def plan_relabel(ctx: Context, ledger: Ledger) -> None:
    for node, nf in sorted(ctx.nodes.items()):
        if not nf.actionable:
            continue
        for key, t in sorted(nf.torrents.items()):
            if TVA_LABEL in t.labels or ctx.journal.last_tried(node, ActionKind.add, key) is None:
                continue
            if ledger.has(node, ActionKind.set_labels, key):
                continue  # another step already decides this torrent's labels
            rules = ctx.rules_by_item.get(key, [])
            want = sorted({TVA_LABEL, *(custody_label(r) for r in rules)} - set(t.labels))
            ledger.act(node, ActionKind.set_labels, key,
                       f"{node} added {t.name} (journal) but it has lost tva's labels (a crash of "
                       f"Transmission before it saved them?): set {', '.join(want)} again",
                       params={"labels_add": want},
                       rule=f"custody/{rules[0]}" if rules else None)
