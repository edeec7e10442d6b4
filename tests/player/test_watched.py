"""Watch progress survives a restart of the controller."""

from __future__ import annotations

from pathlib import Path

from controller.player.watched import WatchedStore


def test_watched_items_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / "tv.watched.json"
    store = WatchedStore(str(path))
    store.add("bb" * 20)
    store.add("aa" * 20)
    store.add("bb" * 20)
    assert WatchedStore(str(path)).keys() == ["aa" * 20, "bb" * 20]


def test_a_corrupt_file_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "tv.watched.json"
    path.write_text("{not json")
    store = WatchedStore(str(path))
    assert store.keys() == []
    store.add("cc" * 20)
    assert WatchedStore(str(path)).keys() == ["cc" * 20]
