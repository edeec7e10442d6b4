"""A mixed-version fleet: a Transmission 3.00 node and a 4.1 node re-pin real data both ways.

``nas`` runs the host's 3.00, ``laptop`` 4.1 from the Debian 13 root (chrooted, inside the lab's
network namespace). Each starts with the only copy of one item; a floor of 2 makes each fetch
the other's item from it over BitTorrent, through the controllers' announce endpoints. The
copies are compared byte for byte with the originals. Needs root and the 4.1 root (skips with
the reason otherwise; fails in CI).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from controller.lab.fleet import collection_yaml, rule_yaml
from controller.lab.lab import Lab, NodeSpec, wait
from controller.lab.netns import NamespaceRefused, available, run_isolated
from schemas.plan import ActionKind
from tests.support.transmission import TRANSMISSION_3, TRANSMISSION_4, require_version

WHY = available()
pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(WHY is not None, reason=f"no private network namespace: {WHY}"),
]

MiB = 1 << 20
SPECS = [
    NodeSpec("nas", "server", ["home"], transmission=TRANSMISSION_3),
    NodeSpec("laptop", "laptop", ["home"], transmission=TRANSMISSION_4),
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mixed_story(root: str) -> dict[str, Any]:
    lab = Lab(Path(root), SPECS)
    try:
        old = lab.repo.payload("from-3.00.bin", 5 * MiB)
        new = lab.repo.payload("from-4.1.bin", 4 * MiB)
        files = lab.base_files()
        files["items/films.yaml"] = collection_yaml("films", [old, new])
        lab.repo.commit(files, "two nodes, one Transmission 3.00 and one 4.1; no floor yet")
        lab.start()
        versions = {name: n.transmission.client().get_session().rpc_version
                    for name, n in lab.nodes.items()}
        lab.seed("nas", old)
        lab.seed("laptop", new)
        lab.repo.commit({"custody/films.yaml": rule_yaml("films", "films", 2)}, "films: 2 copies")
        for p in (old, new):
            try:
                wait(lambda p=p: len(lab.holders(p.infohash)) >= 2, 180, f"2 copies of {p.name}")
            except TimeoutError as e:
                raise TimeoutError(f"{e}\n{lab.describe()}") from None
        out: dict[str, Any] = {"versions": versions}
        out["holders"] = {p.name: lab.holders(p.infohash) for p in (old, new)}
        out["same_bytes"] = {
            (p.name, name): sha256(n.transmission.download_dir / p.name) == sha256(p.data)
            for p in (old, new) for name, n in lab.nodes.items()
        }
        out["adds"] = sorted(
            (n.name, e.target) for n in lab.nodes.values() if n.daemon
            for e in n.daemon.runtime.journal.entries()
            if e.kind is ActionKind.add and e.outcome.value == "ok")
        out["labels"] = {name: sorted(n.torrents()[p.infohash]["labels"])
                         for p, name in ((old, "laptop"), (new, "nas"))
                         for n in [lab.nodes[name]]}
        out["hashes"] = {"old": old.infohash, "new": new.infohash}
        return out
    finally:
        lab.stop()


def test_a_3_00_node_and_a_4_1_node_repin_both_ways(tmp_path: Path) -> None:
    require_version(TRANSMISSION_4)
    try:
        r = run_isolated(mixed_story, Lab.addresses(len(SPECS)), str(tmp_path), timeout=600)
    except NamespaceRefused as e:  # pragma: no cover - depends on the kernel
        pytest.skip(str(e))
    assert r["versions"] == {"nas": 16, "laptop": 18}
    assert r["holders"] == {"from-3.00.bin": ["laptop", "nas"], "from-4.1.bin": ["laptop", "nas"]}
    assert all(r["same_bytes"].values()), r["same_bytes"]
    # Each copy was made by the controller of the node that lacked it.
    assert ("laptop", r["hashes"]["old"]) in r["adds"] and ("nas", r["hashes"]["new"]) in r["adds"]
    # tva's labels arrived on both versions (with the add on 4.1, after it on 3.00).
    assert all("tva" in labels for labels in r["labels"].values()), r["labels"]
