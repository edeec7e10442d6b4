"""The demo's fallback when namespaces are refused: the single-node part still runs for real."""

from __future__ import annotations

import pytest

from controller.lab import demo


def test_single_node_part_adds_the_torrent(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.run_single_node() == 0
    out = capsys.readouterr().out
    assert "nas add film-1.bin" in out
    assert "added the torrent to Transmission" in out
