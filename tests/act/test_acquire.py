"""The acquirer's actuator end to end on one machine: a fake Torznab indexer on a real socket,
real ``.torrent`` files (torf), a real bare fleet repo, a signed commit (a real SSH key), and
the loader reading the result back."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from controller.act.acquire import AcquireActuator
from controller.act.writeback import GitProposer, ProposalInvalid
from controller.clients.torznab import IndexerError, TorznabClient
from controller.desired.loader import load_fleet
from controller.errors import PermanentError
from controller.lab.transmission import make_payload_torrent
from controller.nodeconfig import current, install
from controller.planner import plan
from schemas.desired import DesiredState, SecretRef
from schemas.node import AcquirerConfig, NodeConfig, PullRequestConfig
from schemas.plan import Action, ActionKind, action_id
from tests.clients.test_torznab import BOMB
from tests.planner.harness import node_status
from tests.support.gitrepo import (
    REFERENCE_FLEET,
    clone_checkout,
    git,
    make_fleet_remote,
    ssh_signer,
)
from tests.support.torznab import FakeIndexer, FakeRelease

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WATCHLIST = """apiVersion: tva/v1
kind: Watchlist
name: films-wanted
device: tv
search: [public]
policy: {resolutions: [1080p, 720p], min_seeders: 2, blocked_words: [CAM]}
entries:
  - {film: Night Film}
"""

DEAD = "d" * 40
OLD = f"""apiVersion: tva/v1
kind: Collection
name: old
source: public
items:
  - {{name: Old Film, infohash: {DEAD}, size: 65536}}
"""


@dataclass
class World:
    root: Path
    remote: Path
    indexer: FakeIndexer
    actuator: AcquireActuator
    allowed: Path
    results: Path

    def desired(self) -> DesiredState:
        work = self.root / f"read-{len(list(self.root.glob('read-*')))}"
        clone_checkout(self.remote, work, "reader")
        got = load_fleet(str(work)).desired
        assert got is not None
        return got

    def head(self) -> str:
        return git(self.remote, "rev-parse", "main")

    def release(self, title: str, *, seeders: int = 10, private: bool = False,
                lie: bool = False, size: int = 64 * 1024,
                trackers: tuple[str, ...] = ()) -> FakeRelease:
        torrent, infohash, _ = make_payload_torrent(self.root / "payloads", size,
                                                    name=f"{title}.bin", private=private,
                                                    trackers=trackers)
        return self.indexer.add(FakeRelease(
            title, torrent.read_bytes(), infohash, size, seeders=seeders,
            claimed_infohash=("f" * 40) if lie else None))


def research(target: str = "watch/films-wanted/film-night-film") -> Action:
    return Action(id=action_id("nas", ActionKind.research, target), node="nas",
                  kind=ActionKind.research, target=target, reason="watchlist/films-wanted: test",
                  params={"watchlist": "films-wanted", "mode": "movie", "query": "Night Film",
                          "season": None, "episode": None, "what": "film Night Film",
                          "sources": ["public"], "for": "tv", "collection": None,
                          "name": "Night Film"})


@pytest.fixture
def world(tmp_path: Path, git_env: None) -> Iterator[World]:
    indexer = FakeIndexer().start()
    fleet = tmp_path / "fleet-src"
    shutil.copytree(REFERENCE_FLEET, fleet)
    src = (fleet / "sources" / "public.yaml").read_text()
    (fleet / "sources" / "public.yaml").write_text(
        src.replace("http://127.0.0.1:9696/1/api", indexer.url)
        .replace("  api_key: {env: TVA_PROWLARR_API_KEY}\n", ""))
    (fleet / "watchlists" / "films-wanted.yaml").write_text(WATCHLIST)
    (fleet / "items" / "old.yaml").write_text(OLD)
    remote = make_fleet_remote(tmp_path / "remote" / "fleet.git", fleet)
    key, allowed = ssh_signer(tmp_path / "keys", "acquirer@tva.invalid")
    before = current()
    install(NodeConfig(acquirer=AcquirerConfig(signing_key=str(key))))
    w = World(tmp_path, remote, indexer, None, allowed, tmp_path / "nas.acquisitions.json")  # type: ignore[arg-type]
    client = TorznabClient(min_interval=0.0, sleep=lambda s: None)
    w.actuator = AcquireActuator(w.desired, client, GitProposer(str(remote), "main",
                                 str(tmp_path / "state" / "acquirer")), lambda: NOW,
                                 results_file=str(w.results))
    try:
        yield w
    finally:
        install(before)
        client.close()
        indexer.stop()


def test_the_best_release_is_committed_signed_and_loads(world: World) -> None:
    best = world.release("Night.Film.2024.1080p.WEB-GOOD", seeders=30)
    world.release("Night.Film.2024.720p.WEB-GOOD", seeders=300)
    world.release("Night.Film.2024.1080p.CAM-BAD", seeders=900)
    world.release("Night.Film.2024.1080p.WEB-LONELY", seeders=1)
    before = world.head()
    result = world.actuator.apply(research())
    assert result.startswith("proposed Night.Film.2024.1080p.WEB-GOOD")
    head = world.head()
    assert git(world.remote, "rev-parse", f"{head}^") == before  # one commit
    log = git(world.remote, "log", "-1", "--format=%an <%ae>%n%s", head)
    assert log.splitlines() == ["tva acquirer <acquirer@tva.invalid>",
                                "Acquire Night.Film.2024.1080p.WEB-GOOD"]
    git(world.remote, "-c", "gpg.format=ssh", "-c",
        f"gpg.ssh.allowedSignersFile={world.allowed}", "verify-commit", head)
    files = git(world.remote, "show", "--name-only", "--format=", head).splitlines()
    assert sorted(files) == [f"items/acquired/{best.infohash}.yaml",
                             f"torrents/acquired/{best.infohash}.torrent"]
    desired = world.desired()
    item = desired.items[best.infohash]
    assert (item.name, item.provenance.value, item.source, item.f2f_only) == (
        "Night Film", "public", "public", False)
    coll = desired.collections[item.collection or ""]
    assert coll.acquired is not None and coll.acquired.watchlist == "films-wanted"
    assert "1080p (#1 of 1080p, 720p)" in coll.acquired.reason
    # Why each other release was refused, for `tva fleet acquisitions`.
    kept = json.loads(world.results.read_text())["watch/films-wanted/film-night-film"]
    assert kept["outcome"] == "proposed" and kept["chosen"]["title"] == best.title
    refused = {r["title"]: r["why"] for r in kept["refused"]}
    assert refused["Night.Film.2024.1080p.CAM-BAD"] == "blocked word 'CAM'"
    assert "fewer than min_seeders 2" in refused["Night.Film.2024.1080p.WEB-LONELY"]
    # No duplicate: the same search again finds its proposal on the branch.
    assert world.actuator.apply(research()).startswith("already proposed")
    assert world.head() == head


def test_a_private_trackers_release_is_f2f_only(world: World) -> None:
    rel = world.release("Night.Film.2024.1080p.PRIV", private=True)
    world.actuator.apply(research())
    item = world.desired().items[rel.infohash]
    assert item.provenance.value == "private" and item.f2f_only and item.fleet_only


@pytest.mark.parametrize("private", [True, False], ids=["private-flag", "public"])
def test_an_acquired_private_release_never_reaches_the_face(world: World, private: bool) -> None:
    """The committed revision, planned with every node of the reference fleet live: the tv's
    watchlist wants the release. A public one is fetched by the face (seedbox) for the tv; one
    with the private flag is never placed on the face, and the tv's copy announces to its own
    fleet tracker only (not the private tracker its ``.torrent`` names)."""
    tracker = "http://tracker.private.example/announce"
    rel = world.release("Night.Film.2024.1080p.WEB-GRP", private=private, trackers=(tracker,))
    world.actuator.apply(research())
    desired = world.desired()
    statuses = [node_status(desired, n, {"age": "1m"}, NOW) for n in desired.devices]
    actions = [a for a in plan(desired, statuses, NOW).actions if a.target == rel.infohash]
    on_face = [a.id for a in actions if a.node == "seedbox"]
    tv_adds = [a for a in actions if a.node == "tv" and a.kind is ActionKind.add]
    assert len(tv_adds) == 1
    add = tv_adds[0]
    assert add.params["fleet_only"] is True
    assert tracker not in add.params["trackers"] and tracker not in add.params["magnet"]
    if private:
        assert on_face == [], on_face
        assert "public_swarm_face" not in add.reason
    else:
        assert on_face == [f"seedbox/add/{rel.infohash}"]


def test_hostile_xml_commits_nothing(world: World) -> None:
    world.release("Night.Film.2024.1080p.WEB-GOOD")
    world.indexer.answer(BOMB)
    before = world.head()
    with pytest.raises(IndexerError) as e:
        world.actuator.apply(research())
    assert "DTD or entities" in str(e.value)
    assert world.head() == before
    kept = json.loads(world.results.read_text())["watch/films-wanted/film-night-film"]
    assert kept["outcome"] == "failed" and "DTD or entities" in kept["error"]


def test_a_torrent_that_is_not_the_announced_one_is_refused(world: World) -> None:
    world.release("Night.Film.2024.1080p.LIAR", lie=True)
    before = world.head()
    with pytest.raises(PermanentError) as e:
        world.actuator.apply(research())
    assert "no acceptable release" in str(e.value) and "not the " in str(e.value)
    assert world.head() == before


def test_nothing_acceptable_is_a_failure_naming_the_reasons(world: World) -> None:
    world.release("Night.Film.2024.480p.X")
    with pytest.raises(PermanentError) as e:
        world.actuator.apply(research())
    assert "resolution 480p is not one of 1080p, 720p" in str(e.value)


def test_a_dead_item_is_re_searched_and_superseded_by_a_commit(world: World) -> None:
    """The reaper's last rung: matched by name and size; the commit names the dead item."""
    other = world.release("Old.Film.1999.1080p-BIG", size=200 * 1024)
    good = world.release("Old.Film.1999.720p-GRP")
    assert DEAD in world.desired().items
    action = Action(id=action_id("nas", ActionKind.research, DEAD), node="nas",
                    kind=ActionKind.research, target=DEAD, reason="reaper: Old Film is dead",
                    params={"query": "Old Film", "for": "tv"})
    assert world.actuator.apply(action).startswith("proposed Old.Film.1999.720p-GRP")
    subject = git(world.remote, "log", "-1", "--format=%s", "main")
    assert subject == f"Supersede dead item {DEAD[:12]} with Old.Film.1999.720p-GRP"
    desired = world.desired()
    assert DEAD not in desired.items and other.infohash not in desired.items
    new = desired.items[good.infohash]
    assert (new.name, new.collection) == ("Old Film", "old")
    record = next(c.acquired for c in desired.collections.values()
                  if c.acquired is not None and c.acquired.supersedes == DEAD)
    assert record is not None and record.watchlist is None
    kept = json.loads(world.results.read_text())[DEAD]
    assert any("not the dead item's" in r["why"] for r in kept["refused"])


def test_a_hostile_title_is_committed_escaped_and_the_revision_loads(world: World) -> None:
    # (XML 1.0 cannot carry C0 controls; bidi overrides and line breaks it can.)
    title = "Night.Film.2024.1080p.\u202eWEB-GOOD\nrm -rf"
    rel = world.release(title)
    world.actuator.apply(research())
    desired = world.desired()
    coll = desired.collections[desired.items[rel.infohash].collection or ""]
    assert coll.acquired is not None
    shown = coll.acquired.release
    assert "\u202e" not in shown and "\n" not in shown and "\\u202e" in shown
    subject = git(world.remote, "log", "-1", "--format=%s", "main")
    assert "\u202e" not in subject and subject.startswith("Acquire Night.Film.2024.1080p.")


def test_a_proposal_that_would_make_the_repo_invalid_is_not_committed(world: World) -> None:
    proposer = GitProposer(str(world.remote), "main", str(world.root / "other-acquirer"))
    before = world.head()
    with pytest.raises(ProposalInvalid) as e:
        proposer.propose({"items/acquired/bad.yaml": b"apiVersion: tva/v1\nkind: Collection\n"},
                         "a broken item file", "bad")
    assert "not be a valid revision" in str(e.value) and "bad.yaml" in str(e.value)
    assert world.head() == before


class FakeForge:
    """A forge's pull-request API (Forgejo, Gitea and GitHub share it) on a real socket."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.seen: set[str] = set()
        forge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                forge.posts.append((self.path, dict(self.headers), body))
                status = 409 if body["head"] in forge.seen else 201
                forge.seen.add(body["head"])
                data = json.dumps({"html_url": f"http://forge/pulls/{len(forge.posts)}"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/v1"


def test_a_pull_request_is_opened_instead_of_a_push_to_the_branch(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    forge = FakeForge()
    monkeypatch.setenv("TVA_TEST_FORGE_TOKEN", "forge-token")
    key = current().acquirer.signing_key
    install(NodeConfig(acquirer=AcquirerConfig(signing_key=key, pull_request=PullRequestConfig(
        api=forge.api, repo="owner/fleet", token=SecretRef(env="TVA_TEST_FORGE_TOKEN")))))
    try:
        rel = world.release("Night.Film.2024.1080p.WEB-GOOD")
        before = world.head()
        result = world.actuator.apply(research())
        assert "pull request http://forge/pulls/1" in result
        assert world.head() == before  # the followed branch is not touched
        branch = f"tva/acquire/{rel.infohash}"
        files = git(world.remote, "show", "--name-only", "--format=", branch).splitlines()
        assert f"items/acquired/{rel.infohash}.yaml" in files
        path, headers, body = forge.posts[0]
        assert path == "/api/v1/repos/owner/fleet/pulls"
        assert headers["Authorization"] == "token forge-token"
        assert (body["head"], body["base"]) == (branch, "main")
        assert body["title"] == "Acquire Night.Film.2024.1080p.WEB-GOOD"
        # Pending until merged: the same search does not propose it again.
        assert world.actuator.apply(research()).startswith("already proposed")
        assert len(forge.posts) == 1
    finally:
        forge.server.shutdown()
        forge.server.server_close()


def test_a_release_already_declared_under_another_name_is_not_proposed(world: World) -> None:
    rel = world.release("Night.Film.2024.1080p.WEB-GOOD")
    (world.root / "extra").mkdir()
    work = world.root / "extra" / "owner"
    clone_checkout(world.remote, work, "owner")
    (work / "items" / "mine.yaml").write_text(
        "apiVersion: tva/v1\nkind: Collection\nname: mine\nprovenance: public\n"
        f"items:\n  - {{name: My Copy, infohash: {rel.infohash}}}\n")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "--no-gpg-sign", "-m", "mine")
    git(work, "push", "--quiet", "origin", "HEAD")
    before = world.head()
    with pytest.raises(PermanentError) as e:
        world.actuator.apply(research())
    assert "already in the fleet repo as My Copy" in str(e.value)
    assert world.head() == before
