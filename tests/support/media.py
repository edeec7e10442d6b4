"""Real media for tests: clips made by ffmpeg and a headless mpv hosted by tva's own PlayerHost.

Clips come from ffmpeg's lavfi test sources (see ``../shared/LAB.md``), so no media file is
committed. The player is the real libmpv with null video and audio outputs, hosted exactly as
the daemon hosts it; tests observe it over its IPC socket like any other process would. Unix
socket paths are limited to 107 bytes, so the socket goes in a short temporary directory when
pytest's ``tmp_path`` is too deep.

The helpers are plain functions usable outside pytest; the fixtures add cleanup.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from controller import waiting
from controller.player.host import PlayerHost

T = TypeVar("T")

CLIP_SECONDS = 5


def make_clip(path: Path, seconds: int = CLIP_SECONDS) -> Path:
    """A small video+audio clip (160x120, 10 fps, sine tone) of ``seconds`` at ``path``."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg)")
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc=duration={seconds}:size=160x120:rate=10",
            "-f",
            "lavfi",
            "-i",
            f"sine=duration={seconds}",
            "-shortest",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path


def poll(
    fetch: Callable[[], T],
    until: Callable[[T], bool],
    *,
    timeout: float = 15.0,
    interval: float = 0.05,
) -> T:
    """Call ``fetch`` until ``until`` holds for its result; return the last result either way.

    Tests assert on the returned value, so a timeout fails with the state that was seen.
    """
    return waiting.poll(fetch, until, timeout=timeout, interval=interval)


def socket_dir(base: Path) -> tuple[Path, bool]:
    """A directory for a unix socket: ``base`` when short enough, else a new one in /tmp.

    Returns the directory and whether the caller must remove it.
    """
    if len(str(base / "player.sock")) <= 100:
        return base, False
    return Path(tempfile.mkdtemp(prefix="tva-mpv-")), True


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 5-second clip made once per session."""
    return make_clip(tmp_path_factory.mktemp("media") / "clip.mkv")


@pytest.fixture
def player(tmp_path: Path) -> Iterator[PlayerHost]:
    """A started headless player (null outputs) serving IPC on a socket of its own."""
    where, remove = socket_dir(tmp_path)
    host = PlayerHost(where / "player.sock", headless=True)
    host.start()
    try:
        yield host
    finally:
        host.close()
        if remove:
            shutil.rmtree(where, ignore_errors=True)
