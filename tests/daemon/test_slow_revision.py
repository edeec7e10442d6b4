"""A revision that takes long to validate does not stall a real daemon: its passes go on with
the last good revision, its status says so (Synced=False, Validating) and keeps being published,
and the new revision is applied once its validation ends."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import controller.source.git as source_git
from tests.daemon.conftest import SoloFleet, wait_for


def synced(d: Any) -> tuple[str, str] | None:
    last = d.last
    if last is None:
        return None
    found = [(c.status.value, c.reason) for c in last.status.conditions if c.type == "Synced"]
    return found[0] if found else None


def test_passes_and_status_go_on_while_a_revision_is_validated(
    solo_fleet: SoloFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real = source_git.load_revision
    d = solo_fleet.controller()
    d.source.wait = 0.2
    d.start()
    try:
        wait_for(lambda: synced(d) == ("True", "RevisionApplied"), what="the first revision")
        good = d.last.desired.revision

        def slow(*args: Any, **kwargs: Any) -> Any:
            if not release.wait(120):
                raise AssertionError("never released")
            return real(*args, **kwargs)

        monkeypatch.setattr(source_git, "load_revision", slow)
        new = solo_fleet.commit({"README": "slow to validate\n"}, "a revision slow to validate")
        wait_for(lambda: synced(d) == ("False", "Validating"), what="Synced=False, Validating")
        passes = d.passes
        d.wakeup.notify("test")
        wait_for(lambda: d.passes > passes, what="another pass during the validation")
        assert d.last.desired.revision == good
        assert '"Validating"' in (solo_fleet.status_dir / "solo.json").read_text()
        release.set()
        wait_for(lambda: d.last.desired.revision == new and synced(d) == ("True", "RevisionApplied"),
                 what="the new revision applied")
    finally:
        release.set()
        d.stop()
