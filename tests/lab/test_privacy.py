"""Private stays private, tried as an outsider would (issue 11): a stock BitTorrent client from
Debian (aria2c), not part of the fleet, at its own address next to three real nodes.

The fleet: nas, laptop and seedbox (the public_swarm_face). Both items were committed with a
stand-in public tracker in their .torrent (as a release from elsewhere would be): a public film
and a private home video. The floors make the fleet copy both.

- The outsider announces the home video to every node's tracker (with no token, with a guessed
  one) and to the public tracker: it gets no fleet address and downloads nothing.
- The public tracker records no announce of the home video from any node, while the film (the
  control) is announced there and the same outsider downloads it completely.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from controller.lab import scenario as story_mod
from controller.lab.fleet import collection_yaml, duties_yaml, rule_yaml
from controller.lab.lab import Lab, wait
from controller.lab.netns import NamespaceRefused, available, run_isolated
from tests.support.transmission import Tracker

WHY = available()
pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(WHY is not None, reason=f"no private network namespace: {WHY}"),
]

OUTSIDER = "10.77.0.4"
ARIA2 = "aria2c"


def aria2(torrent: Path, workdir: Path, trackers: list[str], stop_after: int) -> dict[str, Any]:
    """Run aria2c as an outsider: only ``trackers`` (the torrent's own removed), no DHT, PEX or
    LPD, giving up after ``stop_after`` seconds without a byte. Returns what it got."""
    out = workdir / "out"
    out.mkdir(parents=True)
    log = workdir / "aria2.log"
    cmd = [
        ARIA2, f"--dir={out}", f"--log={log}", "--log-level=debug", "--console-log-level=error",
        "--summary-interval=0", "--enable-dht=false", "--enable-dht6=false",
        "--bt-enable-lpd=false", "--enable-peer-exchange=false", "--bt-exclude-tracker=*",
        f"--bt-tracker={','.join(trackers)}", "--seed-time=0", f"--bt-stop-timeout={stop_after}",
        f"--interface={OUTSIDER}", "--listen-port=6991-6999", "--file-allocation=none",
        "--bt-tracker-interval=2", str(torrent),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=stop_after + 120,
                          check=False)
    files = [p for p in out.rglob("*") if p.is_file() and not p.name.endswith(".aria2")]
    assert log.exists(), f"aria2c did not run: {done.stdout[-500:]} {done.stderr[-500:]}"
    return {"code": done.returncode, "bytes": sum(p.stat().st_size for p in files),
            "log": log.read_text(errors="replace")}


def privacy_story(root: str) -> dict[str, Any]:
    base = Path(root)
    public = Tracker(host=OUTSIDER, interval=5).start()
    lab = Lab(base / "lab", story_mod.SPECS)
    try:
        film = lab.repo.payload("film.bin", 4 * story_mod.MiB, trackers=(public.announce_url,))
        video = lab.repo.payload("home-video.bin", 2 * story_mod.MiB,
                                 trackers=(public.announce_url,))
        files = lab.base_files()
        files["items/films.yaml"] = collection_yaml("films", [film], provenance="public")
        files["items/home-videos.yaml"] = collection_yaml("home-videos", [video],
                                                          provenance="private")
        files["duties.yaml"] = duties_yaml("seedbox")
        lab.repo.commit(files, "a public film and a private home video, both from elsewhere")
        lab.start()
        lab.seed("nas", film)
        lab.seed("nas", video, fleet_only=True)
        lab.repo.commit({"custody/films.yaml": rule_yaml("films", "films", 3),
                         "custody/home-videos.yaml": rule_yaml("home-videos", "home-videos", 2)},
                        "floors")
        wait(lambda: len(lab.holders(film.infohash)) >= 3, 120, "three copies of the film")
        wait(lambda: len(lab.holders(video.infohash)) >= 2, 120, "two copies of the video")
        nodes = list(lab.nodes.values())
        fleet_peers = [f"{n.ip}:{n.transmission.peer_port}" for n in nodes]
        announces = [f"http://{n.ip}:{n.api_port}/announce" for n in nodes]
        guessed = [f"{a}/{'A' * 43}" for a in announces]
        video_torrent = lab.repo.checkout / video.torrent_rel
        film_torrent = lab.repo.checkout / film.torrent_rel
        stolen = aria2(video_torrent, base / "outsider-video", [*announces, *guessed,
                                                                public.announce_url], 20)
        control = aria2(film_torrent, base / "outsider-film", [public.announce_url], 40)
        time.sleep(1)
        return {
            "video_holders": lab.holders(video.infohash, complete=False),
            "stolen_bytes": stolen["bytes"],
            "stolen_peers": [p for p in fleet_peers if p in stolen["log"]],
            "video_announced_by": sorted(public.announcers(video.infohash) - {OUTSIDER}),
            "film_announced_by": sorted(public.announcers(film.infohash) - {OUTSIDER}),
            "control_code": control["code"], "control_bytes": control["bytes"],
            "control_log": control["log"][-6000:],
            "film_size": film.size,
            "video_trackers": sorted(tr["announce"] for n in nodes
                                     for t in [n.torrents().get(video.infohash)] if t
                                     for tr in t["trackers"]),
        }
    finally:
        lab.stop()
        public.stop()


@pytest.mark.slow  # about a minute: CI runs it, a local run leaves it out (README)
def test_an_outsider_gets_nothing_of_a_private_item(tmp_path: Path) -> None:
    try:
        r = run_isolated(privacy_story, [*Lab.addresses(3), OUTSIDER], str(tmp_path),
                         timeout=600)
    except NamespaceRefused as e:  # pragma: no cover - depends on the kernel
        pytest.skip(str(e))
    assert len(r["video_holders"]) >= 2 and "seedbox" not in r["video_holders"]
    # The outsider: no fleet address, not a byte.
    assert r["stolen_peers"] == [] and r["stolen_bytes"] == 0
    # The public tracker never heard of the private item from any node...
    assert r["video_announced_by"] == []
    assert all("/announce/" in t for t in r["video_trackers"]), r["video_trackers"]
    # ...while the control shows the same tracker and client work: the film was announced
    # there, and the outsider downloaded all of it.
    assert r["film_announced_by"] != []
    assert r["control_code"] == 0 and r["control_bytes"] == r["film_size"], r["control_log"]
