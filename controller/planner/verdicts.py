"""A node's own verdict on its copies, to publish in its status so every node plans the same.

Reaper strikes live in the journal of the node that recorded them; only that node can tell that
its copy is dead. Were the verdict kept there, the other nodes would count the copy as pending
(held) and nobody would restore the floor, and two nodes with different journals would compute
different plans. So the node computes the verdict here, from its own status and journal (the
same classifier the planner uses), and publishes it on the torrent (``TorrentStatus.verdict``);
every planner then treats a copy with a verdict as broken (``context.CopyState.broken``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from controller.planner.context import LOCAL_ERROR
from controller.planner.health import Classifier, Health
from controller.planner.memory import JournalIndex
from schemas.desired import DesiredState
from schemas.journal import JournalEntry
from schemas.observed import CopyVerdict, NodeStatus

__all__ = ["verdicts", "with_verdicts"]


def verdicts(
    desired: DesiredState, status: NodeStatus, now: datetime, journal: Sequence[JournalEntry]
) -> dict[str, CopyVerdict]:
    """The node's verdict on each of its incomplete copies that has one, by info-hash:
    ``dead`` (reaper strikes exhausted, as its journal records them) or ``broken`` (a local
    data error). Complete, error-free copies never get one."""
    classifier = Classifier(desired.fleet.policy.reaper, now, JournalIndex(journal))
    out: dict[str, CopyVerdict] = {}
    if not status.transmission.reachable:
        return out
    for t in status.transmission.torrents:
        if classifier.plainly_healthy(t) or (t.percent_done >= 1.0 and t.error != LOCAL_ERROR):
            continue
        if t.error == LOCAL_ERROR:
            out[t.infohash.lower()] = CopyVerdict.broken
        elif classifier.assess(status.node, t).health is Health.dead:
            out[t.infohash.lower()] = CopyVerdict.dead
    return out


def with_verdicts(
    desired: DesiredState, status: NodeStatus, now: datetime, journal: Sequence[JournalEntry]
) -> NodeStatus:
    """``status`` with the node's verdicts set on its torrents (and none left from before)."""
    found = verdicts(desired, status, now, journal)
    torrents = status.transmission.torrents
    if not found and all(t.verdict is None for t in torrents):
        return status
    marked = [t if t.verdict == found.get(t.infohash.lower())
              else t.model_copy(update={"verdict": found.get(t.infohash.lower())})
              for t in torrents]
    return status.model_copy(
        update={"transmission": status.transmission.model_copy(update={"torrents": marked})})
