""""Paused means speed limits of 0" (the bandwidth policy's ``pause: true``), checked against
real Transmission daemons, 3.00 and 4.1: two daemons of the same version in a private network
namespace, one seeding a payload, one fetching it through a tracker.

The session settings are exactly what the planner asks for (``bandwidth.Limits.rpc``: both
limits 0 and their switches on). The story waits until the two are connected, then counts bytes
over ``QUIET`` seconds: none may move while either side is paused, whichever side it is, and the
download completes once neither is. Waits are generous; nothing is timed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from transmission_rpc.constants import RpcMethod

from controller.lab.lab import Lab
from controller.lab.netns import NamespaceRefused, available, run_isolated
from controller.lab.transmission import TransmissionDaemon, make_payload_torrent
from controller.planner.bandwidth import Limits
from controller.waiting import poll
from tests.support.transmission import Tracker

WHY = available()
pytestmark = [
    pytest.mark.lab,
    pytest.mark.transmission_versions,
    pytest.mark.slow,  # about 80 s per version: two quiet windows and the choking cycle
    pytest.mark.skipif(WHY is not None, reason=f"no private network namespace: {WHY}"),
]

MiB = 1 << 20
QUIET = 25.0
"""Seconds of counting while paused. Measured here unpaused: the first bytes arrive 9 to 11 s
after the two connect (Transmission's choking cycle), so the window covers that more than
twice; the story also checks that the seeder unchoked the fetcher (or that the fetcher wanted
data) inside it, so a transfer could really have run."""
FIELDS = ["hashString", "leftUntilDone", "downloadedEver", "uploadedEver", "peersConnected",
          "peers"]


def _fields(daemon: TransmissionDaemon, infohash: str) -> dict[str, Any]:
    return dict(daemon.client().get_torrent(infohash, arguments=FIELDS).fields)


def _limits(daemon: TransmissionDaemon, paused: bool) -> None:
    wanted = Limits(down=0, up=0, reason="pause").rpc() if paused else \
        Limits(down=None, up=None, reason="").rpc()
    daemon.client()._request(RpcMethod.SessionSet, wanted)


def _quiet(seeder: TransmissionDaemon, fetcher: TransmissionDaemon,
           infohash: str) -> dict[str, Any]:
    """Wait until the two are connected, then count what moves over ``QUIET`` seconds, and
    what the fetcher's peer entry said meanwhile."""
    connected = poll(lambda: _fields(fetcher, infohash)["peersConnected"] > 0, bool,
                     timeout=90, interval=0.5)
    before = (_fields(fetcher, infohash), _fields(seeder, infohash))
    seen: list[dict[str, Any]] = []

    def look() -> bool:
        seen.extend(_fields(fetcher, infohash)["peers"][:1])
        return False

    poll(look, bool, timeout=QUIET, interval=1.0)  # the whole window, on purpose
    after = (_fields(fetcher, infohash), _fields(seeder, infohash))
    return {"connected": bool(connected),
            "unchoked": any(not p["clientIsChoked"] for p in seen),
            "interested": any(p["clientIsInterested"] for p in seen),
            "received": after[0]["downloadedEver"] - before[0]["downloadedEver"],
            "sent": after[1]["uploadedEver"] - before[1]["uploadedEver"],
            "left_before": before[0]["leftUntilDone"], "left_after": after[0]["leftUntilDone"]}


def pause_story(root: str, version: str) -> dict[str, Any]:
    seed_ip, fetch_ip = Lab.addresses(2)
    base = Path(root)
    tracker = Tracker(host=seed_ip).start()
    daemons = [TransmissionDaemon(root=base / name, bind_ip=ip, version=version)
               for name, ip in (("seeder", seed_ip), ("fetcher", fetch_ip))]
    seeder, fetcher = daemons
    try:
        for d in daemons:
            d.start()
        torrent, infohash, data = make_payload_torrent(base / "payload", 8 * MiB,
                                                       trackers=[tracker.announce_url])
        (seeder.download_dir / data.name).write_bytes(data.read_bytes())
        seeder.client().add_torrent(torrent.read_bytes(), download_dir=str(seeder.download_dir))
        poll(lambda: _fields(seeder, infohash)["leftUntilDone"] == 0, bool, timeout=60,
             interval=0.5)
        out: dict[str, Any] = {"rpc": fetcher.client().get_session().rpc_version}
        _limits(fetcher, paused=True)  # the fetching node is paused before it adds the item
        fetcher.client().add_torrent(torrent.read_bytes(), download_dir=str(fetcher.download_dir))
        out["fetcher_paused"] = _quiet(seeder, fetcher, infohash)
        _limits(seeder, paused=True)  # now the seeding node is paused instead
        _limits(fetcher, paused=False)
        out["seeder_paused"] = _quiet(seeder, fetcher, infohash)
        _limits(seeder, paused=False)
        lifted = time.monotonic()
        poll(lambda: _fields(fetcher, infohash)["downloadedEver"] > 0, bool, timeout=180,
             interval=0.25)
        out["first_byte_after"] = round(time.monotonic() - lifted, 1)  # reported, not asserted
        out["completed"] = bool(poll(lambda: _fields(fetcher, infohash)["leftUntilDone"] == 0,
                                     bool, timeout=180, interval=0.5))
        out["size"] = 8 * MiB
        out["received_total"] = _fields(fetcher, infohash)["downloadedEver"]
        return out
    finally:
        for d in daemons:
            d.stop()
        tracker.stop()


def test_limits_of_zero_stop_every_byte_and_lifting_them_resumes(
        tmp_path: Path, transmission_version: str) -> None:
    try:
        r = run_isolated(pause_story, Lab.addresses(2), str(tmp_path), transmission_version,
                         timeout=600)
    except NamespaceRefused as e:
        pytest.skip(str(e))
    assert r["rpc"] >= 16
    print(f"Transmission {transmission_version}: {r}")
    for phase, could_run in (("fetcher_paused", "unchoked"), ("seeder_paused", "interested")):
        p = r[phase]
        # A transfer could have run: connected, and the seeder let the fetcher have data
        # (the paused fetcher never asks), or the unpaused fetcher asked for it.
        assert p["connected"] and p[could_run], (phase, p)
        assert (p["received"], p["sent"]) == (0, 0), (phase, p)
        assert p["left_after"] == p["left_before"] == r["size"], (phase, p)
    assert r["completed"] and r["received_total"] >= r["size"], r
