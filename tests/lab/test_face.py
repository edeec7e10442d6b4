"""Public items enter through the face (issue 13), tried with a real public swarm: a stock
BitTorrent client from Debian (aria2c), not part of the fleet, seeds two public episodes at its
own address, announcing to its own public tracker.

The fleet: nas and laptop (home nodes) and seedbox (the public_swarm_face). Nobody in the fleet
holds the episodes.

1. A custody rule puts episode 1 on both home nodes. The face fetches it from the outsider; the
   home nodes take it from the fleet only. Throughout, a watcher records every TCP connection in
   the namespace (``ss``) and every peer each node's Transmission reports: no home node ever
   talks to the outsider, the public tracker hears of the episode only from the face, and the
   outsider's log names only the face.
2. The face stops and stays away past its grace; then a rule puts episode 2 on both home nodes.
   With the fallback off (the default), nothing is fetched: the home nodes plan no add, say why
   (``face-away``), hold no copy, and the outsider never sees them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.lab import scenario as story_mod
from controller.lab.fleet import Payload, collection_yaml, duties_yaml
from controller.lab.lab import Lab, wait
from controller.lab.netns import NamespaceRefused, available, run_isolated
from tests.support.swarm import Outsider, Watcher
from tests.support.transmission import Tracker

WHY = available()
pytestmark = [
    pytest.mark.lab,
    pytest.mark.slow,
    pytest.mark.skipif(WHY is not None, reason=f"no private network namespace: {WHY}"),
]

OUTSIDER = "10.77.0.4"
HOME = ("nas", "laptop")
MiB = story_mod.MiB


def home_rule(name: str, p: Payload) -> str:
    return f"""\
apiVersion: tva/v1
kind: CustodyRule
name: {name}
select: {{infohashes: [{p.infohash}]}}
min: 2
placement: {{devices: [{", ".join(HOME)}]}}
"""


def _plan_of(lab: Lab, node: str) -> Any:
    d = lab.nodes[node].daemon
    return d.last.plan if d is not None and d.last is not None else None


def face_story(root: str) -> dict[str, Any]:
    base = Path(root)
    public = Tracker(host=OUTSIDER, interval=2).start()
    lab = Lab(base / "lab", story_mod.SPECS)
    outsiders: list[Outsider] = []
    watcher = Watcher(lab)
    try:
        ep1 = lab.repo.payload("episode-1.bin", 4 * MiB, trackers=(public.announce_url,))
        ep2 = lab.repo.payload("episode-2.bin", 2 * MiB, trackers=(public.announce_url,))
        files = lab.base_files()
        files["items/shows.yaml"] = collection_yaml("shows", [ep1, ep2], provenance="public")
        files["duties.yaml"] = duties_yaml("seedbox")
        lab.repo.commit(files, "two public episodes nobody in the fleet has")
        for i, p in enumerate((ep1, ep2)):
            outsiders.append(Outsider(p.data, lab.repo.checkout / p.torrent_rel,
                                      base / f"outsider-{i + 1}", f"{6901 + 10 * i}-{6909 + 10 * i}",
                                      OUTSIDER))
        wait(lambda: all(public.announcers(p.infohash) == {OUTSIDER} for p in (ep1, ep2)), 60,
             "the outsider to seed both episodes")
        lab.start()
        watcher.start()
        planned = lab.record_plans()  # every action a node planned, by id: its reasons
        wait(lambda: all(
            n.daemon and n.daemon.last and all(
                v.status is not None and v.status.transmission.reachable
                for v in n.daemon.last.view.nodes.values())
            for n in lab.nodes.values()), 120, "every node to see every Transmission reachable")

        # 1. The face fetches episode 1 from the outsider; the home nodes from the fleet.
        lab.repo.commit({"custody/episode-1.yaml": home_rule("episode-1", ep1)},
                        "episode 1 on both home nodes")
        try:
            wait(lambda: set(HOME) <= set(lab.holders(ep1.infohash)), 240,
                 "both home nodes to hold episode 1")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\n{lab.describe()}") from None
        face_holds = lab.percent("seedbox", ep1.infohash)
        home_trackers = {n: sorted(tr["announce"] for tr in lab.nodes[n].torrents()[ep1.infohash]["trackers"])
                         for n in HOME}
        face_trackers = sorted(tr["announce"] for tr in
                               lab.nodes["seedbox"].torrents()[ep1.infohash]["trackers"])
        reasons = {aid: sorted(set(r)) for aid, r in planned.items() if ep1.infohash in aid}

        # 2. The face goes away past its grace; episode 2 is then wanted at home.
        lab.stop("seedbox")
        for observer in HOME:
            wait(lambda o=observer: (p := _plan_of(lab, o)) is not None
                 and p.revision is not None
                 and lab.nodes[o].daemon.last.view.nodes["seedbox"].freshness.value == "gone",
                 120, f"{observer} to see the seedbox gone")
        revision = lab.repo.commit({"custody/episode-2.yaml": home_rule("episode-2", ep2)},
                                   "episode 2 on both home nodes, with the face away")

        def waiting(node: str) -> bool:
            p = _plan_of(lab, node)
            return bool(p is not None and p.revision == revision and any(
                w.code == "face-away" and ep2.name in w.message for w in p.warnings))

        # Two passes each on the new revision, both deciding to wait.
        for node in HOME:
            wait(lambda n=node: waiting(n), 120, f"{node} to plan on the new revision")
            first = lab.nodes[node].daemon.last
            wait(lambda n=node, f=first: lab.nodes[n].daemon.last is not f and waiting(n), 60,
                 f"{node} to plan once more")
        ep2_plans = {n: [a.id for a in _plan_of(lab, n).actions if a.target == ep2.infohash]
                     for n in HOME}
        ep2_warnings = [w.message for n in HOME for w in _plan_of(lab, n).warnings
                        if w.code == "face-away"]
        watcher.stop()
        ips = {name: node.ip for name, node in lab.nodes.items()}
        logs = [o.peer_log() for o in outsiders]
        return {
            "ips": ips,
            "ep1": ep1.infohash,
            "face_holds": face_holds,
            "home_trackers": home_trackers,
            "face_trackers": face_trackers,
            "public_tracker": public.announce_url,
            "reasons": reasons,
            "ep1_announcers": sorted(public.announcers(ep1.infohash)),
            "ep2_announcers": sorted(public.announcers(ep2.infohash)),
            "ep1_log_names": sorted(n for n, ip in ips.items() if ip in logs[0]),
            "ep2_log_names": sorted(n for n, ip in ips.items() if ip in logs[1]),
            "pairs": sorted(watcher.pairs),
            "peers": {n: sorted(v) for n, v in watcher.peers.items()},
            "ep2_holders": lab.holders(ep2.infohash, complete=False),
            "ep2_plans": ep2_plans,
            "ep2_warnings": ep2_warnings,
        }
    finally:
        watcher.stop()
        lab.stop()
        for o in outsiders:
            o.stop()
        public.stop()


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    try:
        return run_isolated(face_story, [*Lab.addresses(3), OUTSIDER],
                            str(tmp_path_factory.mktemp("face")), timeout=900)
    except NamespaceRefused as e:  # pragma: no cover - depends on the kernel
        pytest.skip(str(e))


def test_public_items_enter_through_the_face(story: dict[str, Any]) -> None:
    ips = story["ips"]
    home_ips = {ips[n] for n in HOME}
    # The face fetched episode 1 from the outsider (nobody in the fleet had it)...
    assert story["face_holds"] == 1.0
    assert story["public_tracker"] in story["face_trackers"]
    reasons = story["reasons"]
    face_add = f"seedbox/add/{story['ep1']}"
    assert face_add in reasons and any("seedbox fetches it from the public swarm" in r
                                       for r in reasons[face_add]), reasons
    for node in HOME:
        assert any("seedbox, the public_swarm_face, fetches it from the public swarm and "
                   f"{node} takes it from the fleet only" in r
                   for r in reasons.get(f"{node}/add/{story['ep1']}", [])), reasons
    # ...and only the face ever met the public swarm: the public tracker heard of episode 1
    # from the face and the outsider alone, the outsider's log names only the face.
    assert story["ep1_announcers"] == sorted([ips["seedbox"], OUTSIDER])
    assert story["ep1_log_names"] == ["seedbox"]
    # The home copies announce to their own fleet tracker only.
    for node, trackers in story["home_trackers"].items():
        assert trackers and all("/announce/" in t and ips[node] in t for t in trackers), trackers
    # No home node ever connected to the outsider, in either direction, or saw it as a peer.
    assert not [(a, b) for a, b in story["pairs"]
                if {a, b} & home_ips and OUTSIDER in (a, b)], story["pairs"]
    for node in HOME:
        assert OUTSIDER not in story["peers"][node], story["peers"]
        assert set(story["peers"][node]) <= set(ips.values())
    # The watcher did see the face talk to the outsider (it is not blind).
    assert (ips["seedbox"], OUTSIDER) in story["pairs"] or (OUTSIDER, ips["seedbox"]) in story["pairs"]


def test_with_the_face_away_nothing_public_is_fetched_at_home(story: dict[str, Any]) -> None:
    assert story["ep2_holders"] == []
    assert story["ep2_plans"] == {"nas": [], "laptop": []}
    assert story["ep2_warnings"] and all(
        "seedbox, the public_swarm_face, is away past its grace" in w
        and "fallback_behind_vpn is off" in w for w in story["ep2_warnings"])
    assert story["ep2_announcers"] == [OUTSIDER]
    assert story["ep2_log_names"] == []
