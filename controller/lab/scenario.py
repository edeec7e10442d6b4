"""The lab's story, shared by the demo (narrated) and the lab tests (asserted).

Three nodes — ``nas`` (server), ``laptop`` and ``seedbox`` (the public_swarm_face) — follow one
fleet repo. ``nas`` starts with the only copies; custody floors then move real data over
BitTorrent between the nodes, found through each controller's announce endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from controller.lab.fleet import Payload, collection_yaml, duties_yaml, rule_yaml
from controller.lab.lab import Lab, NodeSpec, wait
from controller.lab.transmission import TRANSMISSION_3

__all__ = ["Lab", "NodeSpec", "Story", "raise_floors", "set_up", "wait", "wait_copies", "wait_gone"]
from controller.planner.hashing import hrw_order

SPECS = [
    NodeSpec("nas", "server", ["home"]),
    NodeSpec("laptop", "laptop", ["home"]),
    NodeSpec("seedbox", "seedbox", ["remote"]),
]

MiB = 1 << 20

Say = Callable[[str], None]


@dataclass
class Story:
    lab: Lab
    films: list[Payload] = field(default_factory=list)
    private: Payload | None = None
    marks: dict[str, float] = field(default_factory=dict)

    def order(self, p: Payload) -> list[str]:
        """The item's rendezvous order over the lab's nodes (what the planner follows)."""
        return hrw_order(p.infohash, self.lab.nodes)

    def downloaded(self, p: Payload) -> int:
        total = 0
        for node in self.lab.nodes.values():
            t = node.torrents().get(p.infohash)
            if t is not None:
                total += int(t.get("downloadedEver") or 0)
        return total


def set_up(root: Path, *, film_sizes: tuple[int, ...] = (6 * MiB, 4 * MiB), private_size: int = 3 * MiB,
           grace: str = "20s", stale_after: str = "8s", transmission: str = TRANSMISSION_3,
           notify_endpoints: dict[str, str] | None = None) -> Story:
    """Write the lab fleet (no custody rules yet), start every node, seed ``nas`` by hand.

    Every node runs the ``transmission`` version (``controller.lab.transmission.VERSIONS``)."""
    specs = [replace(spec, transmission=transmission) for spec in SPECS]
    lab = Lab(root, specs, grace=grace, stale_after=stale_after,
              notify_endpoints=notify_endpoints)
    story = Story(lab)
    story.films = [lab.repo.payload(f"film-{i + 1}.bin", size) for i, size in enumerate(film_sizes)]
    story.private = lab.repo.payload("home-video.bin", private_size)
    files = lab.base_files()
    files["items/films.yaml"] = collection_yaml("films", story.films, provenance="public")
    files["items/home-videos.yaml"] = collection_yaml("home-videos", [story.private], provenance="private")
    files["duties.yaml"] = duties_yaml("seedbox")
    lab.repo.commit(files, "the lab fleet: three nodes, two collections, no floors yet")
    lab.start()
    for p in [*story.films, story.private]:
        lab.seed("nas", p)
    # The floors raised next go where the rendezvous order says (``Lab.wait_settled``).
    lab.wait_settled({"nas": {p.infohash for p in [*story.films, story.private]}})
    return story


def raise_floors(story: Story, films: int = 2, videos: int = 2) -> str:
    return story.lab.repo.commit({
        "custody/films.yaml": rule_yaml("films", "films", films),
        "custody/home-videos.yaml": rule_yaml("home-videos", "home-videos", videos),
    }, f"custody: films {films} copies, home videos {videos}")


def wait_copies(story: Story, p: Payload, count: int, timeout: float = 90) -> list[str]:
    try:
        return wait(lambda: (h if len(h := story.lab.holders(p.infohash)) >= count else None),
                    timeout, f"{count} complete copies of {p.name}")
    except TimeoutError as e:
        raise TimeoutError(f"{e}\n{story.lab.describe()}") from None


def wait_gone(story: Story, node: str, observer: str, timeout: float = 120) -> None:
    """Until ``observer``'s controller sees ``node`` as gone (past the grace period)."""
    def gone() -> bool:
        d = story.lab.nodes[observer].daemon
        last = d.last if d else None
        return bool(last and last.view.nodes[node].freshness.value == "gone")
    wait(gone, timeout, f"{observer} to see {node} gone")


def now() -> float:
    return time.monotonic()
