"""The player host and the player observer, against real libmpv playing a clip made by ffmpeg.

The player runs headless (null outputs) in this process, hosted by ``PlayerHost``; every
observation goes through its JSON IPC socket, as ``tva status`` in another process would.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from controller.errors import UnreachableError
from controller.observe.player import MpvIpc, PlayerProtocolError, observe_player
from controller.player.host import PlayerError, PlayerHost, RefusedOption
from schemas.observed import PlayerStatus
from tests.support.media import CLIP_SECONDS, poll

REPO_ROOT = Path(__file__).resolve().parents[2]


def look(host: PlayerHost, *options: str) -> PlayerStatus:
    return observe_player(host.socket_path, options)


def playing(host: PlayerHost, clip: Path) -> PlayerStatus:
    host.load(clip)
    st = poll(lambda: look(host), lambda s: s.path == str(clip) and s.position is not None)
    assert st.path == str(clip), st
    return st


# ---------------------------------------------------------------------- observing playback


def test_open_clip_reports_path_position_duration(player: PlayerHost, clip: Path) -> None:
    st = playing(player, clip)
    assert st.reachable and not st.idle
    assert st.paused is False
    assert st.position is not None and 0.0 <= st.position <= CLIP_SECONDS
    assert st.duration == pytest.approx(CLIP_SECONDS, abs=0.5)


def test_pause_is_observed(player: PlayerHost, clip: Path) -> None:
    playing(player, clip)
    player.pause()
    st = poll(lambda: look(player), lambda s: s.paused is True)
    assert st.paused is True
    assert st.path == str(clip)
    player.pause(False)
    assert poll(lambda: look(player), lambda s: s.paused is False).paused is False


def test_seek_moves_the_position(player: PlayerHost, clip: Path) -> None:
    playing(player, clip)
    player.pause()
    player.seek(1.0)
    before = poll(lambda: look(player), lambda s: s.position == pytest.approx(1.0, abs=0.15))
    player.seek(3.5)
    after = poll(lambda: look(player), lambda s: s.position == pytest.approx(3.5, abs=0.15))
    assert before.position == pytest.approx(1.0, abs=0.15)
    assert after.position == pytest.approx(3.5, abs=0.15)


def test_stopped_player_is_idle_with_no_path(player: PlayerHost, clip: Path) -> None:
    playing(player, clip)
    player.stop()
    st = poll(lambda: look(player), lambda s: s.path is None)
    assert st.reachable
    assert st.path is None and st.idle
    assert st.position is None and st.duration is None


def test_fresh_player_is_idle(player: PlayerHost) -> None:
    st = look(player)
    assert st.reachable and st.idle and st.path is None


def test_events_on_the_connection_are_skipped(player: PlayerHost, clip: Path) -> None:
    """Property-change events carry ``data`` too; only answers with our request_id count."""
    playing(player, clip)
    with MpvIpc(player.socket_path) as ipc:
        [sub] = ipc.request([["observe_property", 1, "pause"]])
        assert sub.ok
        answers = []
        for i in range(10):
            player.pause(i % 2 == 0)  # each change sends an event on this connection
            answers.append(ipc.request([["get_property", "pause"], ["get_property", "path"]]))
    assert [a[0].data for a in answers] == [i % 2 == 0 for i in range(10)]
    assert all(a[1].data == str(clip) for a in answers)


# ---------------------------------------------------------------------- options


def test_observed_options_follow_the_settings(short_dir: Path, clip: Path) -> None:
    with PlayerHost(short_dir / "p.sock", {"volume": 40, "mute": True}, headless=True) as host:
        st = look(host, "volume", "mute", "af", "loop-file", "sub-auto")
        assert st.options["volume"] == 40
        assert st.options["mute"] is True
        assert st.options["af"] == ""  # a list option, compared by mpv's text form
        assert st.options["loop-file"] is False
        assert st.options["sub-auto"] == "exact"
        host.set_option("volume", 55)
        assert look(host, "volume").options == {"volume": 55}


def test_unknown_option_names_are_left_out(player: PlayerHost) -> None:
    st = look(player, "volume", "no-such-option")
    assert "volume" in st.options and "no-such-option" not in st.options


@pytest.mark.parametrize(
    "name", ["script", "input-conf", "include", "config-dir", "input-ipc-server", "not-an-option"]
)
def test_refused_options_raise(player: PlayerHost, short_dir: Path, name: str) -> None:
    with pytest.raises(RefusedOption, match=name):
        player.set_option(name, "x")
    with pytest.raises(RefusedOption, match=name):
        PlayerHost(short_dir / "q.sock", {name: "x"})
    assert player.running


def test_idle_is_owned_by_the_host(short_dir: Path) -> None:
    with pytest.raises(RefusedOption, match="idle"):
        PlayerHost(short_dir / "i.sock").set_option("idle", False)
    with pytest.raises(RefusedOption, match="idle"):
        PlayerHost(short_dir / "i.sock", {"idle": False}, headless=True)
    with PlayerHost(short_dir / "i.sock", headless=True) as host:
        st = look(host, "idle")
        assert st.reachable and st.idle
        assert st.options["idle"] is True


def test_another_process_observes_the_hosted_player(player: PlayerHost, clip: Path) -> None:
    """What ``tva status --node`` does: observe the daemon's player from a separate process."""
    playing(player, clip)
    code = (
        "import sys; from controller.observe.player import observe_player; "
        "print(observe_player(sys.argv[1], ['volume']).model_dump_json())"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, player.socket_path],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert r.returncode == 0, r.stderr
    st = PlayerStatus.model_validate_json(r.stdout)
    assert st.reachable and st.path == str(clip) and st.options == {"volume": 100}


def test_bad_option_value_is_a_player_error(player: PlayerHost, short_dir: Path) -> None:
    with pytest.raises(PlayerError, match="volume='loud'"):
        player.set_option("volume", "loud")
    with pytest.raises(PlayerError, match="volume='loud'"):
        PlayerHost(short_dir / "v.sock", {"volume": "loud"}, headless=True).start()
    assert not (short_dir / "v.sock").exists()


def test_only_local_files_are_opened(player: PlayerHost, tmp_path: Path) -> None:
    with pytest.raises(PlayerError, match="absolute"):
        player.load("clip.mkv")
    with pytest.raises(PlayerError, match="no such file"):
        player.load(tmp_path / "missing.mkv")


# ---------------------------------------------------------------------- watch progress


def test_playing_to_the_end_records_watched(player: PlayerHost, clip: Path) -> None:
    seen: list[str] = []
    player.on_watched = seen.append
    playing(player, clip)
    assert player.watched == []
    player.seek(CLIP_SECONDS - 0.5)
    watched = poll(lambda: player.watched, lambda w: bool(w))
    assert watched == [str(clip)]
    assert seen == [str(clip)]
    st = look(player)
    assert st.path == str(clip)  # keep-open: still open at its end, so never removable


def test_end_of_file_with_keep_open_off(short_dir: Path, clip: Path) -> None:
    with PlayerHost(short_dir / "k.sock", {"keep-open": False}, headless=True) as host:
        playing(host, clip)
        host.seek(CLIP_SECONDS - 0.5)
        assert poll(lambda: host.watched, lambda w: bool(w)) == [str(clip)]
        assert poll(lambda: look(host), lambda s: s.path is None).idle


# ---------------------------------------------------------------------- unreachable


def test_no_socket_is_unreachable(tmp_path: Path) -> None:
    st = observe_player(str(tmp_path / "none.sock"), ["volume"])
    assert st.reachable is False
    assert "none.sock" in st.error
    assert st.path is None


def test_closed_player_is_unreachable_and_its_socket_is_gone(short_dir: Path) -> None:
    host = PlayerHost(short_dir / "c.sock", headless=True)
    host.start()
    assert look(host).reachable
    host.close()
    assert not (short_dir / "c.sock").exists()
    assert look(host).reachable is False
    with pytest.raises(UnreachableError):
        host.stop()


def test_second_host_on_a_live_socket_is_refused(player: PlayerHost) -> None:
    with pytest.raises(PlayerError, match="already serves"):
        PlayerHost(player.socket_path, headless=True).start()
    assert look(player).reachable


def test_stale_socket_is_replaced(short_dir: Path) -> None:
    path = short_dir / "s.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens
    with PlayerHost(path, headless=True) as host:
        assert look(host).reachable


def _serve_once(path: Path, reply: bytes | None) -> threading.Thread:
    """A peer that is not mpv: accepts one connection, sends ``reply`` (or nothing), waits."""
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    srv.listen(1)

    def run() -> None:
        conn, _ = srv.accept()
        with conn, srv:
            conn.settimeout(5)
            try:  # the client may hang up first: that is what these tests expect
                if reply is not None:
                    conn.sendall(reply)
                while conn.recv(65536):
                    pass
            except OSError:
                pass

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_silent_peer_times_out(short_dir: Path) -> None:
    path = short_dir / "silent.sock"
    _serve_once(path, None)
    st = observe_player(str(path), timeout=0.3)
    assert st.reachable is False and "did not answer" in st.error


def test_peer_speaking_garbage_is_a_protocol_error(short_dir: Path) -> None:
    path = short_dir / "junk.sock"
    _serve_once(path, b"not json at all\n")
    with pytest.raises(PlayerProtocolError), MpvIpc(str(path), timeout=2) as ipc:
        ipc.request([["get_property", "path"]])


def test_endless_line_is_bounded(short_dir: Path) -> None:
    path = short_dir / "long.sock"
    _serve_once(path, b"x" * (1 << 21))
    st = observe_player(str(path), timeout=5)
    assert st.reachable is False and "longer than" in st.error


def test_current_path_is_what_is_open_now(player: PlayerHost, clip: Path) -> None:
    assert player.current_path() is None
    playing(player, clip)
    assert player.current_path() == str(clip)
    player.stop()
    assert poll(player.current_path, lambda p: p is None) is None
