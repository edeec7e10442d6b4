"""Fleet status through git, against a real bare remote and real clones (issue 3, part 5).

Each node is a clone of the bare fleet repo with its own transport; they publish to and read
from the same remote, as nodes do through a hosted fleet repo.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.errors import PermanentError, TemporaryError, UnreachableError
from controller.status import GitStatusTransport, RetryPolicy
from schemas.desired import StatusPolicy
from schemas.observed import (
    NodeStatus,
    StorageStatus,
    TorrentState,
    TorrentStatus,
    TransmissionStatus,
)
from tests.support.gitrepo import git

pytestmark = pytest.mark.timeout(180)

NODES = ("nas", "laptop", "tv")
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FAST = RetryPolicy(attempts=3, initial=0.05, max_wait=0.2, timeout=30)
PATIENT = RetryPolicy(attempts=8, initial=0.05, max_wait=0.5, timeout=30)

Clone = Callable[[Path, str], Path]


def status(node: str, seq: int) -> NodeStatus:
    """A status whose ``controller_version`` names the publish (``seq-N``)."""
    return NodeStatus(
        node=node,
        observed_at=T0 + timedelta(seconds=seq),
        controller_version=f"seq-{seq}",
        transmission=TransmissionStatus(
            reachable=True,
            rpc_version=16,
            torrents=[
                TorrentStatus(
                    infohash="ab" * 20,
                    name="Big Buck Bunny",
                    size=276_134_947,
                    percent_done=1.0,
                    state=TorrentState.seeding,
                    labels=["films"],
                )
            ],
        ),
        storage=[StorageStatus(path="/srv/media", free=10**12, total=8 * 10**12)],
        duties=["custodian"],
    )


def chain(repo: Path, ref: str) -> list[str]:
    """The commits reachable from ``ref``, newest first."""
    return git(repo, "rev-list", ref).split()


def write_raw_status(repo: Path, ref: str, content: bytes, *, name: str = "status.json") -> None:
    """Put a hand-made commit holding one file on ``ref`` (what a broken node might push)."""
    blob = git(repo, "hash-object", "-w", "--stdin", input=content)
    tree = git(repo, "mktree", input=f"100644 blob {blob}\t{name}\n".encode())
    commit = git(
        repo, "-c", "user.name=broken", "-c", "user.email=broken@example.invalid",
        "commit-tree", tree, "-m", "hand-made status",
    )
    git(repo, "update-ref", ref, commit)


@pytest.fixture
def nodes(fleet_remote: Path, clone: Clone) -> Iterator[dict[str, GitStatusTransport]]:
    """One clone and one publishing transport per node, all on the same remote."""
    transports = {
        n: GitStatusTransport(clone(fleet_remote, n), node=n, retry=PATIENT) for n in NODES
    }
    yield transports
    for t in transports.values():
        t.close()


def test_a_published_status_reads_back_equal_on_another_node(
    nodes: dict[str, GitStatusTransport], fleet_remote: Path
) -> None:
    sent = status("nas", 1)
    nodes["nas"].publish(sent)

    got = nodes["laptop"].read_all()

    assert got == [sent]
    assert nodes["laptop"].skipped == []
    tree = git(fleet_remote, "ls-tree", "--name-only", "refs/tva/status/nas")
    assert tree == "status.json"


def test_three_nodes_publishing_at_once_lose_nothing(nodes: dict[str, GitStatusTransport]) -> None:
    rounds = 4
    barrier = threading.Barrier(len(NODES), timeout=120)
    seen: dict[str, list[dict[str, str]]] = {n: [] for n in NODES}

    def run(node: str) -> None:
        transport = nodes[node]
        try:
            for r in range(rounds):
                barrier.wait()  # everyone publishes at once ...
                transport.publish(status(node, r))
                barrier.wait()  # ... then everyone reads at once
                seen[node].append({s.node: s.controller_version for s in transport.read_all()})
        except BaseException:
            barrier.abort()
            raise

    with ThreadPoolExecutor(len(NODES)) as pool:
        for future in [pool.submit(run, n) for n in NODES]:
            future.result(timeout=170)

    # Every node read every node's latest publish, in every round.
    expected = [{n: f"seq-{r}" for n in NODES} for r in range(rounds)]
    for node in NODES:
        assert seen[node] == expected, node


def test_history_stays_bounded_after_1000_publishes(fleet_remote: Path, clone: Clone) -> None:
    # 1,000 publishes recorded on the node's ref; pushed every 50 to keep the test quick.
    # The bound must hold both locally and on the remote, at every push.
    history = 10
    checkout = clone(fleet_remote, "nas")
    with GitStatusTransport(checkout, node="nas", history=history, retry=FAST) as nas:
        for seq in range(1, 1001):
            nas.record(status("nas", seq))
            if seq % 50 == 0:
                nas.push()
                assert len(chain(fleet_remote, "refs/tva/status/nas")) <= history

    remote_chain = chain(fleet_remote, "refs/tva/status/nas")
    assert len(remote_chain) == history
    assert chain(checkout, "refs/tva/status/nas") == remote_chain
    published = [
        json.loads(git(fleet_remote, "show", f"{c}:status.json"))["controller_version"]
        for c in remote_chain
    ]
    assert published == [f"seq-{n}" for n in range(1000, 1000 - history, -1)]

    with GitStatusTransport(clone(fleet_remote, "tv")) as reader:
        assert [s.controller_version for s in reader.read_all()] == ["seq-1000"]


def test_publishing_never_touches_the_users_branches_index_or_worktree(
    nodes: dict[str, GitStatusTransport],
) -> None:
    checkout = nodes["nas"].checkout
    (checkout / "notes.txt").write_text("uncommitted\n")
    (checkout / "fleet.yaml").write_text((checkout / "fleet.yaml").read_text() + "# staged edit\n")
    git(checkout, "add", "fleet.yaml")
    before = (
        git(checkout, "for-each-ref", "refs/heads", "refs/remotes"),
        git(checkout, "rev-parse", "HEAD"),
        git(checkout, "status", "--porcelain"),
        git(checkout, "diff", "--cached"),
    )

    nodes["nas"].publish(status("nas", 1))
    nodes["nas"].read_all()

    after = (
        git(checkout, "for-each-ref", "refs/heads", "refs/remotes"),
        git(checkout, "rev-parse", "HEAD"),
        git(checkout, "status", "--porcelain"),
        git(checkout, "diff", "--cached"),
    )
    assert after == before
    new_refs = set(git(checkout, "for-each-ref", "--format=%(refname)").split()) - set(
        git(checkout, "for-each-ref", "--format=%(refname)", "refs/heads", "refs/remotes").split()
    )
    assert new_refs == {"refs/tva/status/nas", "refs/tva-fetched/origin/tva/status/nas"}


def test_an_unreachable_remote_is_a_temporary_error_after_bounded_retries(
    fleet_remote: Path, clone: Clone
) -> None:
    checkout = clone(fleet_remote, "nas")
    with GitStatusTransport(checkout, node="nas", retry=FAST) as nas:
        nas.publish(status("nas", 1))
        assert [s.controller_version for s in nas.read_all()] == ["seq-1"]

        moved = fleet_remote.with_name("moved.git")
        fleet_remote.rename(moved)
        with pytest.raises(UnreachableError, match=r"gave up after 3 attempts") as failed:
            nas.publish(status("nas", 2))
        assert isinstance(failed.value, TemporaryError)
        with pytest.raises(UnreachableError, match=r"gave up after 3 attempts"):
            nas.read_all()
        # The status is kept locally, and the last fetched view stays readable offline.
        assert "seq-2" in git(checkout, "show", "refs/tva/status/nas:status.json")
        assert [s.controller_version for s in nas.read_fetched()] == ["seq-1"]

        moved.rename(fleet_remote)
        nas.publish(status("nas", 3))

    with GitStatusTransport(clone(fleet_remote, "tv")) as reader:
        assert [s.controller_version for s in reader.read_all()] == ["seq-3"]
    assert len(chain(fleet_remote, "refs/tva/status/nas")) == 3


def test_a_busy_ref_lock_on_the_remote_is_retried(fleet_remote: Path, clone: Clone) -> None:
    lock = fleet_remote / "refs" / "tva" / "status" / "nas.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("held by another receive-pack\n")
    retries: list[str] = []

    class ReleaseOnRetry(logging.Handler):
        """The other git process finishes as soon as tva backs off for the first time."""

        def emit(self, record: logging.LogRecord) -> None:
            retries.append(record.getMessage())
            lock.unlink(missing_ok=True)

    handler = ReleaseOnRetry(level=logging.WARNING)
    logging.getLogger("tva.git").addHandler(handler)
    try:
        with GitStatusTransport(clone(fleet_remote, "nas"), node="nas", retry=FAST) as nas:
            nas.publish(status("nas", 1))
    finally:
        logging.getLogger("tva.git").removeHandler(handler)

    assert len(retries) == 1 and "locked" in retries[0]
    assert "seq-1" in git(fleet_remote, "show", "refs/tva/status/nas:status.json")


def test_corrupt_or_impostor_statuses_are_skipped_and_the_others_read(
    nodes: dict[str, GitStatusTransport], fleet_remote: Path
) -> None:
    nodes["nas"].publish(status("nas", 1))
    nodes["laptop"].publish(status("laptop", 1))
    write_raw_status(fleet_remote, "refs/tva/status/tv", b'{"format": "tva.status/v1", "node": ')
    impostor = status("nas", 99).model_dump_json().encode()
    write_raw_status(fleet_remote, "refs/tva/status/seedbox", impostor)
    write_raw_status(fleet_remote, "refs/tva/status/phone", b"{}", name="other.json")

    reader = nodes["tv"]
    got = reader.read_all()

    assert [(s.node, s.controller_version) for s in got] == [("laptop", "seq-1"), ("nas", "seq-1")]
    reasons = {s.source.split(" ")[0]: s.reason for s in reader.skipped}
    assert set(reasons) == {
        "refs/tva/status/tv",
        "refs/tva/status/seedbox",
        "refs/tva/status/phone",
    }
    assert "not a valid tva.status/v1 document" in reasons["refs/tva/status/tv"]
    assert "claims to be node 'nas'" in reasons["refs/tva/status/seedbox"]
    assert "no status.json" in reasons["refs/tva/status/phone"]


def test_a_chain_not_written_by_tva_restarts_from_a_root(fleet_remote: Path, clone: Clone) -> None:
    checkout = clone(fleet_remote, "nas")
    git(checkout, "update-ref", "refs/tva/status/nas", "HEAD")  # a commit with no depth trailer
    with GitStatusTransport(checkout, node="nas", retry=FAST) as nas:
        first = nas.record(status("nas", 1))
        second = nas.record(status("nas", 2))
    assert git(checkout, "rev-list", "--parents", "-n1", first) == first  # a root commit
    assert chain(checkout, "refs/tva/status/nas") == [second, first]


def test_a_remote_refusing_the_push_is_a_permanent_error(fleet_remote: Path, clone: Clone) -> None:
    hook = fleet_remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'status refs are read-only here' >&2\nexit 1\n")
    hook.chmod(0o755)
    attempts: list[str] = []
    handler = _Collect(attempts)
    logging.getLogger("tva.git").addHandler(handler)
    try:
        with (
            GitStatusTransport(clone(fleet_remote, "nas"), node="nas", retry=FAST) as nas,
            pytest.raises(PermanentError, match="accept forced pushes") as refused,
        ):
            nas.publish(status("nas", 1))
    finally:
        logging.getLogger("tva.git").removeHandler(handler)
    assert not isinstance(refused.value, TemporaryError)
    assert attempts == []  # not retried
    assert git(fleet_remote, "for-each-ref", "refs/tva") == ""


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


def test_a_node_publishes_only_its_own_status(fleet_remote: Path, clone: Clone) -> None:
    checkout = clone(fleet_remote, "nas")
    with (
        GitStatusTransport(checkout, node="nas", retry=FAST) as nas,
        pytest.raises(PermanentError, match="cannot publish the status of tv"),
    ):
        nas.publish(status("tv", 1))
    with (
        GitStatusTransport(checkout, retry=FAST) as reader,
        pytest.raises(PermanentError, match="reads only"),
    ):
        reader.publish(status("nas", 1))
    assert git(checkout, "for-each-ref", "refs/tva") == ""


def test_the_fleets_status_policy_sets_prefix_and_history(fleet_remote: Path, clone: Clone) -> None:
    policy = StatusPolicy(ref="refs/fleet/heartbeat", history=2)
    checkout = clone(fleet_remote, "nas")
    with GitStatusTransport.for_fleet(checkout, policy, node="nas", retry=FAST) as nas:
        for seq in range(1, 6):
            nas.publish(status("nas", seq))
        assert [s.controller_version for s in nas.read_all()] == ["seq-5"]
    assert len(chain(fleet_remote, "refs/fleet/heartbeat/nas")) == 1  # 5 = 2 + 2 + 1
    assert git(fleet_remote, "for-each-ref", "refs/tva") == ""


@pytest.mark.parametrize("prefix", ["refs/heads/status", "refs/remotes", "refs/tva-fetched/x"])
def test_a_status_prefix_among_branches_or_fetched_refs_is_refused(
    tmp_path: Path, prefix: str
) -> None:
    with pytest.raises(PermanentError, match="prefix of its own"):
        GitStatusTransport(tmp_path, node="nas", ref=prefix)


def test_a_checkout_without_the_remote_is_a_permanent_error(tmp_path: Path, git_env: None) -> None:
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    git(lonely, "init", "--quiet")
    with GitStatusTransport(lonely, node="nas", retry=FAST) as nas:
        nas.record(status("nas", 1))
        with pytest.raises(PermanentError, match="no remote 'origin'"):
            nas.push()
        with pytest.raises(PermanentError, match="no remote 'origin'"):
            nas.read_all()
