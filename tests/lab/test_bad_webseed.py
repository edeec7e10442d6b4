"""A holder whose disk rotted serves bad bytes as a web seed: the fetching node drops its web
seeds and goes on over the peer path, keeping the good pieces it has (issue 18).

``nas`` holds the only copy of an item of two pieces, and its Transmission still believes it
complete after a byte of the second piece was flipped on disk. A floor of 2 makes ``laptop``
fetch it with ``nas``'s web seed; Transmission throws the bad piece away and, without tva, asks
the web seed for it again without end. Asserted: ``laptop`` planned and applied
``drop-webseeds``, its torrent no longer lists a web seed, the good piece it has is the
original's, and nothing bad was kept.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from controller.lab.fleet import collection_yaml, rule_yaml
from controller.lab.lab import Lab, NodeSpec, wait
from controller.lab.netns import NamespaceRefused, available, run_isolated
from schemas.journal import Outcome
from schemas.plan import ActionKind
from tests.support.transmission import VERSIONS, require_version

WHY = available()
pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(WHY is not None, reason=f"no private network namespace: {WHY}"),
]

MiB = 1 << 20
PIECE = 4 * MiB


def bad_seed_story(root: str, transmission: str) -> dict[str, Any]:
    lab = Lab(Path(root), [NodeSpec("nas", "server", ["home"], transmission=transmission),
                           NodeSpec("laptop", "laptop", ["home"], transmission=transmission)])
    try:
        item = lab.repo.payload("rotten.bin", 2 * PIECE)
        files = lab.base_files()
        files["items/films.yaml"] = collection_yaml("films", [item])
        lab.repo.commit(files, "one film on the nas")
        lab.start()
        lab.seed("nas", item)
        on_disk = lab.nodes["nas"].transmission.download_dir / item.name
        with on_disk.open("r+b") as f:  # the disk rots after Transmission checked the copy
            f.seek(PIECE + 12345)
            byte = f.read(1)
            f.seek(PIECE + 12345)
            f.write(bytes([byte[0] ^ 0xFF]))
        lab.wait_settled({"nas": {item.infohash}})  # the laptop's add gets nas's web seed
        planned = lab.record_plans()
        lab.repo.commit({"custody/films.yaml": rule_yaml("films", "films", 2)}, "films: 2 copies")
        laptop = lab.nodes["laptop"]

        drop = f"laptop/drop-webseeds/{item.infohash}"

        def dropped() -> bool:  # applied (the journal), and the pass that planned it finished
            return laptop.daemon is not None and drop in planned and any(
                e.kind is ActionKind.drop_webseeds and e.outcome is Outcome.ok
                for e in laptop.daemon.runtime.journal.entries())

        try:
            wait(dropped, 180, "laptop to drop the web seeds")
            wait(lambda: (lab.percent("laptop", item.infohash) or 0) >= 0.5, 120,
                 "the good piece verified on the laptop")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\n{lab.describe()}") from None
        got = laptop.transmission.client().get_torrents([item.infohash], arguments=[
            "hashString", "webseeds", "percentDone", "labels"])[0].fields
        where = laptop.transmission.download_dir / item.name
        partial = where.with_name(where.name + ".part")  # rename-partial-files
        fetched = (where if where.exists() else partial).read_bytes()[:PIECE]
        reasons = planned[drop]
        return {"webseeds": got["webseeds"], "percent": got["percentDone"],
                "labels": sorted(got["labels"]), "reasons": reasons,
                "first_piece": hashlib.sha256(fetched).hexdigest(),
                "original": hashlib.sha256(item.data.read_bytes()[:PIECE]).hexdigest()}
    finally:
        lab.stop()


@pytest.mark.parametrize("transmission", VERSIONS)
def test_a_web_seed_serving_bad_bytes_is_dropped(tmp_path: Path, transmission: str) -> None:
    require_version(transmission)
    try:
        r = run_isolated(bad_seed_story, Lab.addresses(2), str(tmp_path), transmission,
                         timeout=600)
    except NamespaceRefused as e:
        pytest.skip(str(e))
    assert r["webseeds"] == [], "the torrent was added again without web seeds"
    assert any("failed Transmission's hash check" in why for why in r["reasons"])
    assert "tva" in r["labels"]
    assert r["first_piece"] == r["original"], "the good piece is the original's"
    assert r["percent"] < 1, "the only copy is bad: the item cannot complete from it"
