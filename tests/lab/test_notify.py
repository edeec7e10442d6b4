"""Notifications from a three-node lab (issue 15): a holder goes away past its grace, the fleet
tells its owner once that the item is below its floor, and once that it is resolved after the
re-pin, whichever node is the notifier. The owner's services are local servers that speak the
Discord webhook and ntfy protocols, inside the lab's namespace."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from controller.lab import scenario as story_mod
from controller.lab.lab import wait
from controller.lab.netns import NamespaceRefused, available, run_isolated
from controller.nodeconfig import install
from schemas.node import EgressConfig, NodeConfig
from tests.support.notify import _serve

WHY = available()
pytestmark = [pytest.mark.skipif(WHY is not None, reason=f"no private network namespace: {WHY}"),
              pytest.mark.slow]

TOKEN = "labTOKEN-0b7f3c9d"
NOTIFY = """\
notify:
  below_floor_after: 6s
  targets:
    - name: chat
      url: {env: TVA_DISCORD_URL}
      events: [below-floor, copy-lost]
    - name: phone
      url: {env: TVA_NTFY_URL}
      events: [below-floor]
"""


def notify_story(root: str) -> dict[str, Any]:
    install(NodeConfig(egress=EgressConfig(allow=["127.0.0.1"])))
    discord_gen, ntfy_gen = _serve("discord"), _serve("ntfy")
    discord, ntfy = next(discord_gen), next(ntfy_gen)
    os.environ["TVA_DISCORD_URL"] = f"discord://1234567890/{TOKEN}"
    os.environ["TVA_NTFY_URL"] = f"ntfy://127.0.0.1:{ntfy.port}/lab-topic"
    s = story_mod.set_up(Path(root), film_sizes=(2 * story_mod.MiB,),
                         private_size=1 * story_mod.MiB,
                         notify_endpoints={"discord": discord.base + "/api/webhooks"})
    lab, film = s.lab, s.films[0]
    out: dict[str, Any] = {"film": film.name}
    try:
        story_mod.raise_floors(s, films=2, videos=1)
        holders = story_mod.wait_copies(s, film, 2)
        # and every controller counts both copies (a new copy counts once its status is out)
        wait(lambda: all(n.daemon and n.daemon.facts and not n.daemon.facts.alerts
                         for n in lab.nodes.values()), 60, "no open condition anywhere")
        # The film's holders may send: the one that sends now is the one that goes away.
        notify = NOTIFY + f"  senders: [{', '.join(holders)}]\n"
        lab.repo.commit({"fleet.yaml": str(lab.base_files()["fleet.yaml"]) + notify},
                        "tell the owner on Discord and ntfy")
        wait(lambda: all(n.daemon and n.daemon.last and n.daemon.last.desired.fleet.notify.targets
                         for n in lab.nodes.values()), 60, "every node to read notify:")
        out["before"] = discord.texts() + ntfy.texts()

        def senders() -> list[str] | None:
            now = sorted(n.name for n in lab.nodes.values()
                         if n.daemon and n.daemon.notifier.sending)
            return now if len(now) == 1 else None

        out["sender_before"] = wait(senders, 60, "one notifier")

        away = out["sender_before"][0] if out["sender_before"] else holders[0]
        out["away"], out["holders"] = away, holders
        lab.stop(away)  # the notifier, holding the film: its copy stops counting
        observer = next(n for n in holders if n != away)
        story_mod.wait_gone(s, away, observer=observer)
        story_mod.wait_copies(s, film, 2)  # the baton rolled: re-pinned on the third node
        wait(lambda: any("resolved: below floor" in t for t in ntfy.texts()), 90,
             "the resolution on ntfy")
        wait(lambda: any("resolved: below floor" in t for t in discord.texts()), 90,
             "the resolution on Discord")
        out["sender_after"] = wait(senders, 60, "one notifier")
        before = {n: lab.nodes[n].daemon.passes for n in lab.nodes if lab.nodes[n].daemon}  # type: ignore[union-attr]
        wait(lambda: all(lab.nodes[n].daemon.passes >= before[n] + 5 for n in before), 90,  # type: ignore[union-attr]
             "five more passes on the live nodes")
        out["discord"] = discord.texts()
        out["ntfy"] = ntfy.texts()
        out["discord_paths"] = sorted({r.path for r in discord.delivered()})
    finally:
        lab.stop()
        for gen in (discord_gen, ntfy_gen):
            gen.close()
    return out


def _lines(texts: list[str], start: str) -> list[str]:
    return [line for t in texts for line in t.replace("\r\n", "\n").splitlines()
            if line.startswith(start)]


def test_a_holder_gone_is_told_once_and_resolved_once(tmp_path: Path) -> None:
    try:
        r = run_isolated(notify_story, story_mod.Lab.addresses(3), str(tmp_path), timeout=600)
    except NamespaceRefused as e:  # pragma: no cover - depends on the kernel
        pytest.skip(str(e))
    film = r["film"]
    assert r["before"] == [], "nothing to tell while every floor holds"
    # The notifier went away; the other holder took over, with no vote.
    assert r["sender_before"] == [r["away"]]
    assert r["sender_after"] == [n for n in r["holders"] if n != r["away"]]
    for target in ("discord", "ntfy"):
        texts = r[target]
        below = _lines(texts, f"- below floor: {film} is down to 1 of 2 copies")
        resolved = _lines(texts, f"- resolved: below floor: {film}")
        assert len(below) == 1, "\n====\n".join(texts)
        assert len(resolved) == 1, (target, texts)
    assert _lines(r["discord"], f"- copy lost: {r['away']} is gone"), r["discord"]
    assert not _lines(r["ntfy"], "- copy lost"), "ntfy's target does not take copy-lost"
    assert r["discord_paths"] == [f"/api/webhooks/1234567890/{TOKEN}"]
    print(f"notifier before: {r['sender_before']}, after it went away: {r['sender_after']}")
